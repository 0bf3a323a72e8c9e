"""Ollama models by tag: the local store (a temp OLLAMA_MODELS) and a fake Ollama registry on
loopback (tests/hub_fakes.py), with GGUF blobs written here with the gguf package (headers + sparse
data). The answers equal the answers for the same GGUF files on disk."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hub_fakes import FakeHub, FakeOllama, ollama_model

from gguf_fixtures import llama_tensors, write_gguf
from gguf_tokenizer import bpe_vocab, tokenizer_kvs, write_gguf_fast
from vramcalc.cli import app

# Qwen3-30B-A3B's hyper-parameters (tests/fixtures/reference/hf_configs/llm/Qwen3-30B-A3B.json):
# 48 layers, hidden 2048, 32 query heads and 4 KV heads of 128, 128 experts (8 used) of 768, vocab 151,936
Q3MOE = dict(layers=48, hidden=2048, heads=32, kv=4, hd=128, experts=128, used=8, eff=768, vocab=151936)
Q3MOE_META = {
    "context_length": 40960,
    "block_count": 48,
    "embedding_length": 2048,
    "feed_forward_length": 6144,
    "attention.head_count": 32,
    "attention.head_count_kv": 4,
    "attention.key_length": 128,
    "attention.value_length": 128,
    "expert_count": 128,
    "expert_used_count": 8,
    "expert_feed_forward_length": 768,
    "general.name": "Qwen3 30B A3B",
}


def qwen3moe_tensors() -> list:
    c = Q3MOE
    t = [("token_embd.weight", (c["hidden"], c["vocab"]), "Q4_K")]
    for i in range(c["layers"]):
        b = f"blk.{i}"
        t += [
            (f"{b}.attn_norm.weight", (c["hidden"],), "F32"),
            (f"{b}.attn_q.weight", (c["hidden"], c["heads"] * c["hd"]), "Q4_K"),
            (f"{b}.attn_k.weight", (c["hidden"], c["kv"] * c["hd"]), "Q4_K"),
            (f"{b}.attn_v.weight", (c["hidden"], c["kv"] * c["hd"]), "Q6_K"),
            (f"{b}.attn_output.weight", (c["heads"] * c["hd"], c["hidden"]), "Q4_K"),
            (f"{b}.attn_q_norm.weight", (c["hd"],), "F32"),
            (f"{b}.attn_k_norm.weight", (c["hd"],), "F32"),
            (f"{b}.ffn_norm.weight", (c["hidden"],), "F32"),
            (f"{b}.ffn_gate_inp.weight", (c["hidden"], c["experts"]), "F32"),
            (f"{b}.ffn_gate_exps.weight", (c["hidden"], c["eff"], c["experts"]), "Q4_K"),
            (f"{b}.ffn_up_exps.weight", (c["hidden"], c["eff"], c["experts"]), "Q4_K"),
            (f"{b}.ffn_down_exps.weight", (c["eff"], c["hidden"], c["experts"]), "Q6_K"),
        ]
    return [*t, ("output_norm.weight", (c["hidden"],), "F32"), ("output.weight", (c["hidden"], c["vocab"]), "Q6_K")]


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    from test_hub import CLIP_META, TINY, TINY_META, clip_tensors

    d = tmp_path_factory.mktemp("ollama-files")
    # with Qwen3's tokenizer in the header (151,936 tokens, 151,387 merges: generated BPE-like strings)
    tokens, merges = bpe_vocab(151936, 151387)
    kvs = tokenizer_kvs("qwen3moe", Q3MOE_META, 15, tokens, merges)
    q3 = write_gguf_fast(d / "qwen3-30b-a3b-q4_K_M.gguf", kvs, qwen3moe_tensors())
    llm = write_gguf(d / "tinyllava.gguf", "llama", TINY_META, llama_tensors(**TINY, types={}), file_type=15)
    proj = write_gguf(d / "tinyllava-mmproj.gguf", "clip", CLIP_META, clip_tensors())
    return {
        "dir": d,
        "q3": q3,
        "llm": llm,
        "proj": proj,
        "qwen3": ollama_model(q3, params={"num_ctx": 8192, "temperature": 0.6}, work=d),
        "tinyllava": ollama_model(llm, proj),
    }


def _store(root: Path, ns: str, model: str, tag: str, m) -> None:
    mf = root / "manifests" / "registry.ollama.ai" / ns / model / tag
    mf.parent.mkdir(parents=True, exist_ok=True)
    mf.write_bytes(m.manifest)
    (root / "blobs").mkdir(exist_ok=True)
    for digest, p in m.blobs.items():
        (root / "blobs" / digest.replace(":", "-")).symlink_to(p)


@pytest.fixture()
def store(blobs, tmp_path, monkeypatch):
    root = tmp_path / "ollama-models"
    _store(root, "library", "qwen3", "30b-a3b", blobs["qwen3"])
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    for k in ("OLLAMA_CONTEXT_LENGTH", "OLLAMA_NUM_PARALLEL", "OLLAMA_FLASH_ATTENTION", "OLLAMA_KV_CACHE_TYPE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    return root


@pytest.fixture()
def registry(blobs, store, monkeypatch):
    with FakeOllama() as server:
        for (ns, model, tag), m in {
            ("library", "qwen3", "30b-a3b"): blobs["qwen3"],
            ("library", "tinyllava", "7b"): blobs["tinyllava"],
        }.items():
            server.manifests[(ns, model, tag)] = m.manifest
            server.blobs.update(m.blobs)
        monkeypatch.setenv("VRAMCALC_OLLAMA_REGISTRY", server.url)
        monkeypatch.setenv("VRAMCALC_HTTP_TIMEOUT", "2")
        monkeypatch.setenv("OLLAMA_MODELS", str(store.parent / "empty-store"))
        yield server


def _check(runner, *args):
    r = runner.invoke(app, ["check", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _same_numbers(a: dict, b: dict) -> None:
    """Same numbers (the notes name the file, a blob here, so they differ)."""
    for k in ("params", "memory", "verdict", "headroom_bytes", "max_context_tokens", "offload", "throughput"):
        assert a[k] == b[k], k
    ia, ib = dict(a["inputs"]), dict(b["inputs"])
    assert ia == ib


def test_qwen3_from_the_local_store_equals_the_file(store, blobs, runner):
    """`check qwen3:30b-a3b --gpu rtx4090`: 'qwen3:30b-a3b' is also a catalog alias, which comes first
    in the order; --source ollama reads the store: the model layer's GGUF header and the params
    (num_ctx 8192 becomes the context, as Ollama would run it)."""
    cat = _check(runner, "qwen3:30b-a3b", "--gpu", "rtx4090")
    assert "source" not in cat and cat["inputs"]["model"] == "qwen3-30b-a3b"
    d = _check(runner, "qwen3:30b-a3b", "--source", "ollama", "--gpu", "rtx4090")
    local = _check(runner, str(blobs["q3"]), "--gpu", "rtx4090", "--ctx", "8192")
    src = d.pop("source")
    _same_numbers(d, local)
    assert d["inputs"]["text_tokens"] == 8192
    assert src["kind"] == "ollama" and src["store"] == str(store) and src["requests"] == 0
    assert src["settings"]["from"] == {"context_tokens": "the model's num_ctx parameter"}


def test_ollama_environment_settings_apply_where_the_command_line_is_silent(store, blobs, runner, monkeypatch):
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "2")
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q8_0")
    monkeypatch.setenv("OLLAMA_FLASH_ATTENTION", "1")
    d = _check(runner, "qwen3:30b-a3b", "--source", "ollama", "--gpu", "rtx4090")
    assert (d["inputs"]["batch"], d["inputs"]["kv_cache"], d["inputs"]["flash_attention"]) == (2, "q8_0", True)
    local = _check(runner, str(blobs["q3"]), "--gpu", "rtx4090", "--ctx", "8192", "--batch", "2", "--kv-cache", "q8_0")
    d.pop("source")
    _same_numbers(d, local)
    explicit = _check(runner, "qwen3:30b-a3b", "--source", "ollama", "--gpu", "rtx4090", "--ctx", "4096", "--batch", "1")
    assert (explicit["inputs"]["text_tokens"], explicit["inputs"]["batch"]) == (4096, 1)


def test_qwen3_from_the_registry_by_range_reads_then_from_the_cache(registry, blobs, runner):
    d = _check(runner, "qwen3:30b-a3b", "--source", "ollama", "--gpu", "rtx4090")
    log = list(registry.log)
    local = _check(runner, str(blobs["q3"]), "--gpu", "rtx4090", "--ctx", "8192")
    src = d.pop("source")
    _same_numbers(d, local)
    assert (src["requests"], src["bytes_read"]) == registry.stats()
    blob_reads = [e for e in log if "/blobs/" in e.path and e.range]
    assert blob_reads and all(e.sent <= 4 * 2**20 for e in blob_reads)
    assert blobs["q3"].stat().st_size > 10e9  # a real-sized blob, of which only the header was read
    # the tokenizer's ~5.4 MB of strings are located by small range reads, not fetched; the first read
    # is redirected to the CDN, the later ones go there directly
    assert src["header_read"] == "quick" and src["bytes_read"] < 2_000_000 and src["requests"] <= 22
    assert sum(1 for e in log if e.path.startswith("/v2/") and "/blobs/" in e.path and e.range) == 1
    from vramcalc.readers.remote import ModelSource

    print(f"\nqwen3:30b-a3b from the registry: {ModelSource(**src).line()}")
    registry.reset()
    again = _check(runner, "qwen3:30b-a3b", "--source", "ollama", "--gpu", "rtx4090", "--offline")
    assert registry.log == [] and again["source"]["cached"]


def test_a_tag_not_in_the_catalog_goes_store_then_registry_with_its_projector(registry, blobs, runner):
    r = runner.invoke(app, ["check", "tinyllava:7b", "--gpu", "rtx3060"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "catalog: no such id or alias -> local path: none -> Ollama store: no tinyllava:7b" in out
    assert "Ollama registry: found" in out and "Model from Ollama tinyllava:7b" in out
    d = _check(runner, "tinyllava:7b", "--gpu", "rtx3060")
    local = _check(runner, str(blobs["llm"]), "--mmproj", str(blobs["proj"]), "--gpu", "rtx3060")
    d.pop("source")
    _same_numbers(d, local)
    assert d["inputs"]["model_kind"] == "vlm"


def test_user_model_tag_tries_the_hub_then_the_registry(registry, blobs, runner, monkeypatch):
    """`user/model:tag` could be a Hub repo with a precision or an Ollama user's model: the Hub says
    404, the registry has it."""
    import huggingface_hub.utils._detect_agent as detect

    monkeypatch.setattr(detect, "_registry", {"standardEnvVars": [], "harnesses": {}})
    registry.manifests[("someone", "tinyllava", "q4")] = registry.manifests[("library", "tinyllava", "7b")]
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        r = runner.invoke(app, ["check", "someone/tinyllava:q4", "--gpu", "rtx3060"])
        assert r.exit_code == 0, r.output
        out = " ".join(r.output.split())
        assert "Hugging Face Hub: not found -> Ollama registry: found" in out
        assert len(hub.log) == 1


def test_unknown_tag_keeps_the_catalogs_did_you_mean(registry, runner):
    r = runner.invoke(app, ["check", "qwen3:31b", "--gpu", "rtx4090"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "Unknown model 'qwen3:31b'" in r.output and "not in the Ollama registry" in r.output


def test_registry_errors_are_clean(registry, runner, monkeypatch):
    registry.behaviour.html = True
    r = runner.invoke(app, ["check", "tinyllava:7b", "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "HTML" in r.output
    registry.behaviour.html = False
    registry.behaviour.stall_s = 4
    t = time.monotonic()
    r = runner.invoke(app, ["check", "tinyllava:7b", "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "did not answer within 2 s" in r.output and time.monotonic() - t < 10
    registry.behaviour.stall_s = 0
    monkeypatch.setenv("VRAMCALC_OLLAMA_REGISTRY", "http://127.0.0.1:9")
    r = runner.invoke(app, ["check", "tinyllava:7b", "--gpu", "rtx3060"])
    assert r.exit_code == 2 and "cannot reach the Ollama registry" in r.output
    r = runner.invoke(app, ["check", "tinyllava:7b", "--gpu", "rtx3060", "--offline"])
    assert r.exit_code == 2 and "nothing is cached" in r.output


def test_parse_ollama_ref():
    from vramcalc.readers.ollama import OllamaRef, parse_ollama_ref

    assert parse_ollama_ref("qwen3:30b-a3b") == OllamaRef("library", "qwen3", "30b-a3b")
    assert parse_ollama_ref("llava") == OllamaRef("library", "llava", "latest")
    assert parse_ollama_ref("user/model:tag") == OllamaRef("user", "model", "tag")
    assert parse_ollama_ref("gemma3:27b-it-qat").label == "gemma3:27b-it-qat"
    assert parse_ollama_ref("a/b/c") is None and parse_ollama_ref("x y") is None


def test_settings_refuse_a_bool_or_absurd_num_ctx(monkeypatch):
    """num_ctx true is not a 1-token context, 10^40 is not a context at all (review of the merged readers)."""
    from vramcalc.cli.options import MAX_BATCH
    from vramcalc.readers.ollama import MAX_PARALLEL, ollama_settings

    monkeypatch.delenv("OLLAMA_CONTEXT_LENGTH", raising=False)
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    assert "context_tokens" not in ollama_settings({"num_ctx": True})
    assert "context_tokens" not in ollama_settings({"num_ctx": 10**40})
    assert ollama_settings({"num_ctx": 8192})["context_tokens"] == 8192
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", str(10**12))
    assert "batch" not in ollama_settings({})
    assert MAX_PARALLEL == MAX_BATCH


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        (b"[1, 2]", "not an Ollama manifest"),
        (b'{"schemaVersion": 2, "layers": [], "layers": []}', "appears twice"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (b'{"layers": ' + b"1" * 5000 + b"}", "not a plausible Ollama manifest"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"layers": []}' + b" " * (2 << 20), "too large"),
    ],
    ids=["not-an-object", "repeated-key", "deep", "huge-int", "not-utf8", "huge"],
)
def test_hostile_manifests_are_one_line_errors(manifest, says, blobs, tmp_path, runner, monkeypatch):
    """The manifest goes through the checked JSON loader (readers.load.parse_json) after a size bound."""
    from hub_fakes import OllamaModel

    root = tmp_path / "models"
    _store(root, "library", "hostile", "x", OllamaModel(manifest))
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    r = runner.invoke(app, ["check", "hostile:x", "--source", "ollama", "--gpu", "rtx4090"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert says in r.output and len(r.output.strip().splitlines()) <= 3, r.output


def test_hostile_params_are_refused_or_ignored(blobs, tmp_path, runner, monkeypatch):
    """A params layer that is not an object is an error; a NaN num_ctx is not a context size (ignored)."""
    from hub_fakes import ollama_model

    work = tmp_path / "w"
    (work / "list").mkdir(parents=True)
    _store(tmp_path / "a", "library", "nan", "x", ollama_model(blobs["llm"], params={"num_ctx": float("nan")}, work=work))
    _store(tmp_path / "b", "library", "list", "x", ollama_model(blobs["llm"], params=[1, 2], work=work / "list"))  # type: ignore[arg-type]
    monkeypatch.delenv("OLLAMA_CONTEXT_LENGTH", raising=False)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "a"))
    d = _check(runner, "nan:x", "--source", "ollama", "--gpu", "rtx4090")
    assert (
        d["source"]["settings"] == {}
        and d["inputs"]["text_tokens"] == _check(runner, str(blobs["llm"]), "--gpu", "rtx4090")["inputs"]["text_tokens"]
    )
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "b"))
    r = runner.invoke(app, ["check", "list:x", "--source", "ollama", "--gpu", "rtx4090"])
    assert r.exit_code == 2 and "the params layer is not a JSON object" in r.output and len(r.output.strip().splitlines()) <= 3, r.output
