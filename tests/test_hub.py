"""Models on the Hugging Face Hub, read by their headers, against a fake Hub on loopback.

The fake Hub (tests/hub_fakes.py) is a real HTTP server on 127.0.0.1 serving the routes
huggingface_hub calls, pointed at by HF_ENDPOINT; the repos hold files written here with the gguf
package (headers + sparse data holes) and safetensors headers, and real config.json files from
tests/fixtures/reference/hf_configs (copied from shared/reference; SOURCES.csv there). Every answer
is compared with the answer for the same files on disk, which is the reference: a Hub lookup must
not change a number.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hub_fakes import FakeHub
from test_hub_quick_hostile import servers, vocab  # noqa: F401  (the loopback Hub and registry with faults)

from gguf_fixtures import llama_tensors, write_gguf, write_safetensors
from tiny_llama import TINY
from tiny_llama import TINY_META as TINY_LLAMA_META
from vramcalc.cli import app

REF = Path(__file__).resolve().parent / "fixtures" / "reference" / "hf_configs"

# Qwen3-8B's hyper-parameters (its config.json: tests/fixtures/reference/hf_configs/llm/Qwen3-8B.json)
QWEN3_8B = dict(n_layers=36, hidden=4096, heads=32, kv_heads=8, ff=12288, vocab=151936, head_dim=128)
QWEN3_8B_META = {
    "context_length": 40960,
    "block_count": 36,
    "embedding_length": 4096,
    "feed_forward_length": 12288,
    "attention.head_count": 32,
    "attention.head_count_kv": 8,
    "attention.key_length": 128,
    "attention.value_length": 128,
    "general.name": "Qwen3 8B",
}
#: Q4_K_M's usual tensor types (llama.cpp: Q6_K for attn_v / ffn_down of some layers and the output)
Q4_K_M = {"attn_v": "Q6_K", "ffn_down": "Q6_K", "output": "Q6_K", "token_embd": "Q4_K"}
Q8_0 = dict.fromkeys(("token_embd", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "output"), "Q8_0")


def qwen3_tensors(types: dict) -> list:
    t = llama_tensors(**QWEN3_8B, types=types)
    for i in range(QWEN3_8B["n_layers"]):
        t += [(f"blk.{i}.attn_q_norm.weight", (128,), "F32"), (f"blk.{i}.attn_k_norm.weight", (128,), "F32")]
    return t


def write_qwen3_with_tokenizer(path: Path, types: dict, file_type: int) -> Path:
    """A Qwen3-8B-shaped GGUF whose header holds a 151,936-token vocabulary and 151,387 merges, as
    Qwen2/Qwen3 GGUFs do (their tokenizer.json: 151,643 BPE tokens + special tokens; 151,387 merges),
    with generated BPE-like strings (tests/gguf_tokenizer.py) and llama.cpp's key order."""
    from gguf_tokenizer import bpe_vocab, tokenizer_kvs, write_gguf_fast

    tokens, merges = bpe_vocab(151936, 151387)
    return write_gguf_fast(path, tokenizer_kvs("qwen3", QWEN3_8B_META, file_type, tokens, merges), qwen3_tensors(types))


TINY_META = {**TINY_LLAMA_META, "general.name": "Tiny Llava"}


def clip_tensors(h: int = 64, ff: int = 128) -> list:
    t = [("v.patch_embd.weight", (14, 14, 3, h), "F16"), ("v.class_embd", (h,), "F32"), ("v.position_embd.weight", (h, 577), "F32")]
    for i in range(2):
        b = f"v.blk.{i}"
        t += [(f"{b}.ln1.weight", (h,), "F32"), (f"{b}.ln2.weight", (h,), "F32")]
        t += [(f"{b}.{n}.weight", (h, h), "F16") for n in ("attn_q", "attn_k", "attn_v", "attn_out")]
        t += [(f"{b}.ffn_up.weight", (h, ff), "F16"), (f"{b}.ffn_down.weight", (ff, h), "F16")]
    return [*t, ("mm.0.weight", (h, 256), "F16"), ("mm.2.weight", (256, 256), "F16")]


CLIP_META = {
    "clip.projector_type": "mlp",
    "clip.has_vision_encoder": True,
    "clip.vision.image_size": 336,
    "clip.vision.patch_size": 14,
    "clip.vision.embedding_length": 64,
    "clip.vision.feed_forward_length": 128,
    "clip.vision.block_count": 2,
    "clip.vision.attention.head_count": 4,
    "general.name": "tiny clip",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The model files, written once: the folders are also the 'same files on disk'."""
    root = tmp_path_factory.mktemp("hubfiles")
    out = {}
    # unsloth/Qwen3-8B-GGUF: two precisions, one with a 150k-token tokenizer header
    q = root / "Qwen3-8B-GGUF"
    q.mkdir()
    out["q4"] = write_qwen3_with_tokenizer(q / "Qwen3-8B-Q4_K_M.gguf", Q4_K_M, 15)
    out["q8"] = write_gguf(q / "Qwen3-8B-Q8_0.gguf", "qwen3", QWEN3_8B_META, qwen3_tensors(Q8_0), file_type=7)
    (q / "README.md").write_text("# Qwen3-8B-GGUF\n")
    # a bartowski-style GGUF repo of a VLM: precisions + mmproj files
    b = root / "tiny-llava-GGUF"
    b.mkdir()
    # the Q4_K_M carries a LLaVA-1.5 (Llama 2) tokenizer: 32,000 SentencePiece tokens with scores, no merges
    from gguf_tokenizer import bpe_vocab, tokenizer_kvs, write_gguf_fast

    spm = tokenizer_kvs("llama", TINY_META, 15, bpe_vocab(32000, 0, seed=2)[0], [], spm=True)
    out["llava_q4"] = write_gguf_fast(b / "tiny-llava-Q4_K_M.gguf", spm, llama_tensors(**dict(TINY, vocab=32000), types={}))
    out["llava_q8"] = write_gguf(b / "tiny-llava-Q8_0.gguf", "llama", TINY_META, llama_tensors(**TINY, types=Q8_0), file_type=7)
    out["mmproj_f16"] = write_gguf(b / "mmproj-tiny-llava-f16.gguf", "clip", CLIP_META, clip_tensors())
    out["mmproj_f32"] = write_gguf(
        b / "mmproj-tiny-llava-f32.gguf", "clip", CLIP_META, [(n, s, "F32" if t == "F16" else t) for n, s, t in clip_tensors()]
    )
    # a split GGUF
    s = root / "tiny-split-GGUF"
    s.mkdir()
    tensors = llama_tensors(**TINY, types={})
    half = len(tensors) // 2
    meta = dict(TINY_META, **{"general.name": "Tiny Split", "split.count": 2})
    write_gguf(s / "tiny-split-Q4_K_M-00001-of-00002.gguf", "llama", meta, tensors[:half], file_type=15)
    write_gguf(s / "tiny-split-Q4_K_M-00002-of-00002.gguf", "llama", {"split.count": 2}, tensors[half:])
    # a text model's safetensors repo: the real Qwen3-8B config.json, one safetensors file (sparse data)
    t = root / "Qwen3-8B-Base-Copy"
    t.mkdir()
    shutil.copy(REF / "llm" / "Qwen3-8B.json", t / "config.json")
    write_safetensors(
        t / "model.safetensors",
        {"model.embed_tokens.weight": ("BF16", (151936, 4096)), "model.layers.0.mlp.up_proj.weight": ("BF16", (12288, 4096))},
    )
    out["text"] = t
    # Qwen/Qwen2.5-VL-7B-Instruct: the real config.json, sharded safetensors headers (sparse data)
    v = root / "Qwen2.5-VL-7B-Instruct"
    v.mkdir()
    shutil.copy(REF / "vlm" / "Qwen2.5-VL-7B-Instruct.json", v / "config.json")
    write_safetensors(
        v / "model-00001-of-00002.safetensors",
        {"model.embed_tokens.weight": ("BF16", (152064, 3584)), "model.layers.0.self_attn.q_proj.weight": ("BF16", (3584, 3584))},
    )
    write_safetensors(
        v / "model-00002-of-00002.safetensors",
        {"visual.patch_embed.proj.weight": ("BF16", (1280, 3, 2, 14, 14)), "lm_head.weight": ("BF16", (152064, 3584))},
    )
    index = {"metadata": {}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}
    index["weight_map"]["lm_head.weight"] = "model-00002-of-00002.safetensors"
    (v / "model.safetensors.index.json").write_text(json.dumps(index))
    (v / "preprocessor_config.json").write_text(json.dumps({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14}))
    out.update(qwen3=q, llava=b, split=s, vl=v)
    return out


def _repo_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file()}


@pytest.fixture()
def hub(files, tmp_path, monkeypatch):
    """A fake Hub with the repos, HF_ENDPOINT pointing at it, huggingface_hub's cache in tmp_path."""
    import huggingface_hub.constants
    import huggingface_hub.utils._detect_agent as detect

    # huggingface_hub fetches an agent-harness registry from the import-time endpoint on the first
    # request it builds headers for; an empty one keeps the tests off the internet
    monkeypatch.setattr(detect, "_registry", {"standardEnvVars": [], "harnesses": {}})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("VRAMCALC_HTTP_TIMEOUT", "2")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.add("unsloth/Qwen3-8B-GGUF", _repo_files(files["qwen3"]))
        server.add("bartowski/tiny-llava-GGUF", _repo_files(files["llava"]))
        server.add("someone/tiny-split-GGUF", _repo_files(files["split"]))
        server.add("Qwen/Qwen2.5-VL-7B-Instruct", _repo_files(files["vl"]))
        server.add("someone/Qwen3-8B-Base-Copy", _repo_files(files["text"]))
        server.add("meta-llama/Gated-Model", _repo_files(files["llava"]), gated=True)
        yield server


def _check(runner, *args):
    r = runner.invoke(app, ["check", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _same(remote: dict, local: dict) -> None:
    """The remote answer equals the local-file answer, field by field (the source aside)."""
    src = remote.pop("source")
    # the llama-server line names the model as its source has it: -hf REPO:QUANT, -m FILE (cmdline.py)
    r_cmd, l_cmd = remote.pop("llama_server", None), local.pop("llama_server", None)
    assert (r_cmd is None) == (l_cmd is None)
    if r_cmd is not None and src["kind"] == "hf":
        assert r_cmd[r_cmd.index("-hf") + 1] == f"{src['repo']}:{remote['inputs']['quant']}"
        assert "-m" not in r_cmd and "--mmproj" not in r_cmd
        assert [a for a in r_cmd if a not in ("-hf", r_cmd[r_cmd.index("-hf") + 1])] == [
            a for a in l_cmd if a not in ("-m", l_cmd[l_cmd.index("-m") + 1], "--mmproj") and not a.endswith(".gguf")
        ]
    assert remote == local
    return src


# ---------------------------------------------------------------------------------------------
# Done-when examples


def test_qwen3_gguf_repo_with_quant_equals_the_local_file(hub, files, runner):
    """`check unsloth/Qwen3-8B-GGUF:Q4_K_M --gpu rtx3060`: the same answer as the file on disk; the
    header read costs the header's bytes plus at most one read block, in a few range requests."""
    from vramcalc.readers import read_gguf_header

    remote = _check(runner, "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--gpu", "rtx3060")
    local = _check(runner, str(files["q4"]), "--gpu", "rtx3060")
    log = list(hub.log)
    src = _same(remote, local)
    assert src["kind"] == "hf" and src["repo"] == "unsloth/Qwen3-8B-GGUF" and src["files"] == ["Qwen3-8B-Q4_K_M.gguf"]
    assert src["commit"] == hub.repos["unsloth/Qwen3-8B-GGUF"].commit
    header_end = read_gguf_header(files["q4"]).data_offset
    assert header_end > 5_000_000  # the tokenizer's strings: ~2.1 MB of tokens, ~3.2 MB of merges
    # the first range read goes to resolve/, which redirects to the CDN; the later ones go to the CDN
    gguf_bytes = sum(e.sent for e in log if e.path.endswith(".gguf"))
    range_reads = [e for e in log if e.path.endswith(".gguf") and e.path.startswith("/cdn/")]
    assert sum(1 for e in log if "/resolve/" in e.path) == 1
    # the quick read: the tokenizer's strings are located by small range reads, not fetched
    assert src["header_read"] == "quick"
    assert gguf_bytes < 2_000_000
    assert len(range_reads) <= 20 and len(log) <= 22
    assert files["q4"].stat().st_size > 4e9  # a real-sized file, of which only the header was read
    # the client's count is the server's: the model_info request and the range reads
    assert (src["requests"], src["bytes_read"]) == (len(log), sum(e.sent for e in log))
    print(
        f"\nQwen3-8B Q4_K_M: header {header_end:,} bytes; read {gguf_bytes:,} bytes in {len(range_reads)} range reads; "
        f"total {hub.stats()}\n{_line(src)}"
    )


def _line(src: dict) -> str:
    """The source line the table shows above it, from the JSON's source object."""
    from vramcalc.readers.remote import ModelSource

    return ModelSource(**src).line()


def test_second_check_makes_no_request_and_offline_answers_from_the_cache(hub, runner, monkeypatch):
    first = _check(runner, "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--gpu", "rtx3060")
    hub.reset()
    second = _check(runner, "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--gpu", "rtx3060")
    assert hub.log == []
    assert second["source"]["cached"] and second["source"]["requests"] == 0
    first.pop("source"), second.pop("source")
    assert first == second
    cache = Path(os.environ["VRAMCALC_HOME"]) / "cache" / "hub"  # the user cache dir; VRAMCALC_HOME/cache when set
    assert any(p.name.startswith("Qwen3-8B-Q4_K_M.gguf") for p in cache.rglob("*"))
    offline = _check(runner, "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--gpu", "rtx3060", "--offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env_offline = _check(runner, "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--gpu", "rtx3060")
    assert hub.log == []
    offline.pop("source"), env_offline.pop("source")
    assert offline == first == env_offline
    r = runner.invoke(app, ["check", "unsloth/Qwen3-8B-GGUF:Q8_0", "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "offline" in r.output and "not cached" in r.output
    r = runner.invoke(app, ["check", "someone/never-seen", "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "nothing is cached" in r.output
    assert hub.log == []


def test_default_precision_and_other_quants(hub, files, runner):
    """No precision asked: Q4_K_M (llama.cpp's usual default); --quant or :Q8_0 picks that file."""
    d = _check(runner, "unsloth/Qwen3-8B-GGUF", "--gpu", "rtx4090")
    assert d["source"]["files"] == ["Qwen3-8B-Q4_K_M.gguf"] and d["inputs"]["quant"] == "Q4_K_M"
    q8 = _check(runner, "hf.co/unsloth/Qwen3-8B-GGUF:Q8_0", "--gpu", "rtx4090")
    assert q8["source"]["files"] == ["Qwen3-8B-Q8_0.gguf"]
    q8b = _check(runner, "https://huggingface.co/unsloth/Qwen3-8B-GGUF", "--quant", "Q8_0", "--gpu", "rtx4090")
    local = _check(runner, str(files["q8"]), "--gpu", "rtx4090")
    assert q8 == q8b | {"source": q8["source"]}
    _same(q8b, local)


def test_safetensors_vlm_repo_with_transformers_equals_the_local_folder(hub, files, runner):
    """`check Qwen/Qwen2.5-VL-7B-Instruct --gpu rtx4090 --runtime transformers`: the name is a catalog
    alias, so the Hub is asked with --source hf; config.json + both shards' headers, as the folder."""
    remote = _check(runner, "Qwen/Qwen2.5-VL-7B-Instruct", "--source", "hf", "--gpu", "rtx4090", "--runtime", "transformers")
    local = _check(runner, str(files["vl"]), "--gpu", "rtx4090", "--runtime", "transformers")
    log = list(hub.log)
    remote_notes = remote["notes"]
    assert any("preprocessor_config.json is not read" in n for n in remote_notes)
    remote["notes"] = [n for n in remote_notes if "preprocessor_config" not in n]
    src = _same(remote, local)
    assert src["files"] == ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert remote["params"]["total"] > 0 and remote["inputs"]["model_kind"] == "vlm"
    # the safetensors data is never fetched: every shard request is a header range
    shard_gets = [e for e in log if e.path.endswith(".safetensors") and e.method == "GET"]
    assert shard_gets and all(e.range and e.sent <= 100_001 for e in shard_gets)
    print(f"\nQwen2.5-VL-7B: {_line(src)}")


@pytest.mark.parametrize("runtime", ["transformers", "llama.cpp"])
def test_safetensors_text_repo_equals_the_local_folder(hub, files, runner, runtime):
    """transformers: the checkpoint's exact bytes from the headers; llama.cpp: the GGUF mixture modelled
    from the architecture, as for a catalog model."""
    remote = _check(runner, "someone/Qwen3-8B-Base-Copy", "--gpu", "rtx4090", "--runtime", runtime)
    local = _check(runner, str(files["text"]), "--gpu", "rtx4090", "--runtime", runtime)
    src = _same(remote, local)
    assert src["files"] == ["config.json", "model.safetensors"]
    assert remote["inputs"]["quant"] == ("bf16" if runtime == "transformers" else "Q4_K_M")


def test_bartowski_style_repo_with_mmproj_equals_the_local_files(hub, files, runner):
    remote = _check(runner, "bartowski/tiny-llava-GGUF", "--gpu", "rtx3060")
    local = _check(runner, str(files["llava_q4"]), "--mmproj", str(files["mmproj_f16"]), "--gpu", "rtx3060")
    src = _same(remote, local)
    assert src["files"] == ["tiny-llava-Q4_K_M.gguf", "mmproj-tiny-llava-f16.gguf"]
    assert remote["inputs"]["model_kind"] == "vlm"
    f32 = _check(runner, "bartowski/tiny-llava-GGUF:Q8_0", "--vision-quant", "f32", "--gpu", "rtx3060")
    assert f32["source"]["files"] == ["tiny-llava-Q8_0.gguf", "mmproj-tiny-llava-f32.gguf"]
    print(f"\nbartowski-style VLM: {_line(src)}")


def test_split_gguf_reads_every_part(hub, files, runner):
    remote = _check(runner, "someone/tiny-split-GGUF", "--gpu", "rtx3060")
    local = _check(runner, str(files["split"] / "tiny-split-Q4_K_M-00001-of-00002.gguf"), "--gpu", "rtx3060")
    src = _same(remote, local)
    assert src["files"] == ["tiny-split-Q4_K_M-00001-of-00002.gguf", "tiny-split-Q4_K_M-00002-of-00002.gguf"]


def test_revision_forms(hub, runner):
    commit = hub.repos["unsloth/Qwen3-8B-GGUF"].commit
    for name in (
        f"unsloth/Qwen3-8B-GGUF@{commit}:Q4_K_M",
        f"unsloth/Qwen3-8B-GGUF:Q4_K_M@{commit}",
        f"https://huggingface.co/unsloth/Qwen3-8B-GGUF/blob/{commit}/Qwen3-8B-Q4_K_M.gguf",
    ):
        d = _check(runner, name, "--gpu", "rtx3060")
        assert d["source"]["commit"] == commit and d["source"]["files"] == ["Qwen3-8B-Q4_K_M.gguf"], name
    r = runner.invoke(app, ["check", "unsloth/Qwen3-8B-GGUF@v9", "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "no revision v9" in r.output


def test_table_shows_the_source_line_and_the_resolution_order(hub, runner):
    r = runner.invoke(app, ["check", "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--gpu", "rtx3060"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # the table wraps at 80 columns
    assert "Model from Hugging Face unsloth/Qwen3-8B-GGUF (commit" in out
    assert "file Qwen3-8B-Q4_K_M.gguf, header read:" in out and " requests" in out
    assert "catalog: no such id or alias -> local path: none -> Ollama store: no" in out
    assert "Hugging Face Hub: found" in out


def test_parse_hub_ref_forms():
    from vramcalc.readers.hub import HubRef, parse_hub_ref

    assert parse_hub_ref("org/name") == HubRef("org/name")
    assert parse_hub_ref("org/name:Q4_K_M") == HubRef("org/name", "Q4_K_M")
    assert parse_hub_ref("hf.co/org/name:Q5_K_M") == HubRef("org/name", "Q5_K_M", explicit=True)
    assert parse_hub_ref("https://huggingface.co/org/name") == HubRef("org/name", explicit=True)
    assert parse_hub_ref("https://huggingface.co/org/name/tree/dev") == HubRef("org/name", revision="dev", explicit=True)
    assert parse_hub_ref("org/name@v1.0:IQ4_XS") == HubRef("org/name", "IQ4_XS", "v1.0")
    assert parse_hub_ref("llava-7b") is None and parse_hub_ref("a/b/c") is None and parse_hub_ref("org/na me") is None


def test_gguf_file_choice():
    from vramcalc.readers.hub import gguf_choices, gguf_quant_of, pick_gguf, pick_mmproj

    files = dict.fromkeys(
        [
            "Qwen3-30B-A3B-Q4_K_M.gguf",
            "Qwen3-30B-A3B-UD-Q4_K_XL.gguf",
            "Q8_0/Qwen3-30B-A3B-Q8_0-00001-of-00002.gguf",
            "Q8_0/Qwen3-30B-A3B-Q8_0-00002-of-00002.gguf",
            "mmproj-F16.gguf",
            "mmproj-BF16.gguf",
            "README.md",
        ],
        1,
    )
    choices, mm = gguf_choices(files)
    assert sorted(c.quant for c in choices) == ["Q4_K_M", "Q4_K_XL", "Q8_0"]
    assert pick_gguf("r", choices, None, None).quant == "Q4_K_M"
    assert pick_gguf("r", choices, "q8_0", None).parts == (
        "Q8_0/Qwen3-30B-A3B-Q8_0-00001-of-00002.gguf",
        "Q8_0/Qwen3-30B-A3B-Q8_0-00002-of-00002.gguf",
    )
    assert pick_mmproj(mm, None) == "mmproj-F16.gguf" and pick_mmproj(mm, "bf16") == "mmproj-BF16.gguf"
    assert gguf_quant_of("gemma-3-27b-it-IQ4_XS.gguf") == "IQ4_XS" and gguf_quant_of("model.gguf") is None


# ---------------------------------------------------------------------------------------------
# Errors: one line, exit 2, never a traceback or a hang


def _fails(runner, *args) -> str:
    r = runner.invoke(app, ["check", *args, "--gpu", "rtx3060"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.count("\n") <= 2, r.output
    return r.output


def test_missing_precision_lists_what_the_repo_has(hub, runner):
    out = _fails(runner, "unsloth/Qwen3-8B-GGUF:Q5_K_M")
    assert "has no Q5_K_M GGUF file; it has: Q4_K_M, Q8_0" in out


def test_no_such_repo_or_file(hub, runner):
    out = _fails(runner, "unsloth/Qwen3-9B-GGUF")
    assert "no such model repo" in out
    commit = hub.repos["unsloth/Qwen3-8B-GGUF"].commit
    out = _fails(runner, f"https://huggingface.co/unsloth/Qwen3-8B-GGUF/blob/{commit}/Qwen3-8B-Q4_K_S.gguf")
    assert "no file Qwen3-8B-Q4_K_S.gguf" in out and "Did you mean 'Qwen3-8B-Q4_K_M.gguf'" in out


def test_gated_repo_says_how_to_log_in(hub, runner):
    out = _fails(runner, "meta-llama/Gated-Model")
    assert "gated" in out and "HF_TOKEN" in out and "hf auth login" in out


def test_no_network_is_a_clean_error_within_a_bounded_time(hub, runner, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    t = time.monotonic()
    out = _fails(runner, "unsloth/Qwen3-8B-GGUF")
    assert "cannot reach the Hub" in out and time.monotonic() - t < 10


def test_a_stalled_server_times_out(hub, runner):
    hub.behaviour.stall_s = 4  # VRAMCALC_HTTP_TIMEOUT is 2 s here
    t = time.monotonic()
    out = _fails(runner, "unsloth/Qwen3-8B-GGUF")
    assert "did not answer within 2 s" in out and time.monotonic() - t < 10


def test_html_and_truncated_answers(hub, runner, files):
    """A proxy's HTML page instead of the API's JSON or the file's bytes, and a body cut short."""
    hub.behaviour.html = True
    out = _fails(runner, "unsloth/Qwen3-8B-GGUF")
    assert "unsloth/Qwen3-8B-GGUF: the Hub's answer for revision main is not JSON (an HTML page" in out
    hub.behaviour.html = False
    _check(runner, "bartowski/tiny-llava-GGUF:Q8_0", "--vision-quant", "f32", "--gpu", "rtx3060")  # caches the file list
    hub.behaviour.html = True
    out = _fails(runner, "bartowski/tiny-llava-GGUF")
    assert "bartowski/tiny-llava-GGUF/tiny-llava-Q4_K_M.gguf: the server answered an HTML page, not the file" in out
    hub.behaviour.html = False
    hub.behaviour.truncate = True
    out = _fails(runner, "bartowski/tiny-llava-GGUF")
    assert "bartowski/tiny-llava-GGUF: the Hub's answer for tiny-llava-Q4_K_M.gguf was cut short (a truncated body" in out


def test_catalog_ids_never_import_huggingface_hub():
    """Start-up is benchmarked: a catalog id resolves before any Hub code is imported."""
    code = (
        "import sys; from vramcalc.cli import app; "
        "sys.argv=['vramcalc','check','llava-7b','--gpu','rtx3060','--json']\n"
        "try: app()\nexcept SystemExit: pass\n"
        "print([m for m in sys.modules if m.startswith(('huggingface_hub', 'httpx', 'vramcalc.readers.hub', 'vramcalc.readers.ollama'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------
# import


def test_import_writes_source_with_repo_and_commit(hub, runner):
    r = runner.invoke(app, ["import", "unsloth/Qwen3-8B-GGUF:Q4_K_M", "--id", "qwen3-8b-unsloth", "--write", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    commit = hub.repos["unsloth/Qwen3-8B-GGUF"].commit
    (entry,) = d["entries"]
    assert entry["entry"]["source"].startswith(f"Hugging Face unsloth/Qwen3-8B-GGUF at commit {commit}")
    assert "Qwen3-8B-Q4_K_M.gguf" in entry["entry"]["source"]
    # the stored entry answers by id
    check = _check(runner, entry["id"], "--gpu", "rtx3060", "--quant", "Q4_K_M")
    assert check["inputs"]["model"] == entry["id"]


def test_import_ollama_tag_writes_its_manifest_as_source(files, tmp_path, runner, monkeypatch):
    """`import` takes Ollama names too (the local store here)."""
    from hub_fakes import ollama_model

    root = tmp_path / "models"
    m = ollama_model(files["llava_q4"], files["mmproj_f16"])
    mf = root / "manifests" / "registry.ollama.ai" / "library" / "tinyllava" / "7b"
    mf.parent.mkdir(parents=True)
    mf.write_bytes(m.manifest)
    (root / "blobs").mkdir()
    for digest, p in m.blobs.items():
        (root / "blobs" / digest.replace(":", "-")).symlink_to(p)
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    r = runner.invoke(app, ["import", "tinyllava:7b", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [e["kind"] for e in d["entries"]] == ["llms", "encoders", "vlms"]
    assert all(e["entry"]["source"].startswith("Ollama tinyllava:7b, manifest sha256:") for e in d["entries"])


@pytest.mark.parametrize("junk", ["[1]", '{"files": {}}', '{"commit": 3, "files": {}}'])
def test_a_cached_file_list_of_another_shape_is_a_miss(junk, monkeypatch, runner):
    """A damaged cache entry for a repo is not used (it was an AttributeError / KeyError traceback)."""
    from vramcalc.readers.remote import Cache

    Cache("hub").put_json({"commit": "0" * 40, "files": {}}, "org/name", "refs", "main")
    hits = list(Path(os.environ["VRAMCALC_HOME"]).rglob("main"))
    assert hits
    hits[0].write_text(junk, encoding="utf-8")
    r = runner.invoke(app, ["check", "org/name", "--gpu", "rtx3060", "--offline"])
    assert r.exit_code == 2 and "nothing is cached" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("model", [("someone/small-GGUF", "--source", "hf"), ("tiny:small", "--source", "ollama")])
def test_a_server_that_ignores_ranges_is_counted_by_the_bytes_read(request, model):
    """A server that answers a range with 200 and the whole file (a Content-Length of 7.85 MB): the
    bytes read are those taken from the body (the first 64 KiB read), not the size it declared; the
    Hub reader counted the declared size."""
    from test_hub_quick_hostile import _run

    request.getfixturevalue("servers")(model[-1]).mode = "ignore_range"
    code, out, _ = _run(*model)
    assert code == 0, out
    assert json.loads(out)["source"]["bytes_read"] < 200_000, out
