"""Make random-weight GGUF models from real config.json files (no model download).

For each architecture in ARCHS: copy the published config (shared/reference/hf_configs), keep a few
decoder layers (KV and compute per layer do not depend on depth; vision towers keep full depth),
build the transformers model with uninitialised weights, fill every tensor from one small random block
(memory does not depend on values), save it as safetensors, convert it with llama.cpp's own
convert_hf_to_gguf.py (through convert.py: a synthetic vocabulary of the config's size) to F16, and
quantize it with llama-quantize. The reduced config is copied to tests/fixtures/llamacpp_oracle/configs/
so that the tests build the same model spec from it.

Run with the converter's venv (transformers 4.57.6, the version llama.cpp's requirements pin):
    python generate.py --llama-cpp /work/llamacpp/llama.cpp --out /work/llamacpp/models [NAMES...]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "llamacpp_oracle" / "configs"
HF = Path("/work/shared/reference/hf_configs")

#: real files per LLM (the other file types are recorded with llama-quantize --dry-run, see run.py)
LLM_QUANTS: list[str] = []  # under load, quantizing a 2-layer 8B-wide model takes minutes: F16 + --dry-run

#: name -> (source config, overrides of the text config, quants, kind)
ARCHS: dict[str, dict] = {
    "llama-3.1-8b": dict(src="llm/Llama-3.1-8B.json", layers=2),
    "llama-2-7b": dict(src="llm/Llama-2-7b.json", layers=2),
    "mistral-7b-v0.1": dict(src="llm/Mistral-7B-v0.1.json", layers=2),
    "llama-3.2-1b": dict(src="llm/Llama-3.2-1B.json", layers=4),
    "qwen2.5-0.5b": dict(src="llm/Qwen2.5-0.5B.json", layers=4),
    "qwen3-0.6b": dict(src="llm/Qwen3-0.6B.json", layers=4),
    "qwen3-8b": dict(src="llm/Qwen3-8B.json", layers=2),
    "gemma-3-1b": dict(src="llm/gemma-3-1b-it.json", layers=6),
    "gemma-2-2b": dict(src="llm/gemma-2-2b.json", layers=4),
    "phi-3-mini": dict(src="llm/Phi-3-mini-4k-instruct.json", layers=4),
    "qwen3-30b-a3b": dict(src="llm/Qwen3-30B-A3B.json", layers=2, quants=[]),
    # Mixtral's MoE rules (8 experts, top-2, no shared expert) at a quarter of the width: the full 4096 x
    # 14336 experts made a 2.8 GB layer, too slow to generate here; per-layer memory rules do not depend on
    # the width's value, and the tests read the spec from this reduced config
    "mixtral-8x7b-narrow": dict(
        src="llm/Mixtral-8x7B-v0.1.json",
        layers=2,
        quants=[],
        overrides=dict(hidden_size=1024, intermediate_size=3584, num_attention_heads=8, num_key_value_heads=2),
    ),
    # A hybrid (Gated DeltaNet + full attention, 3:1) MoE model: Qwen3-Next-80B-A3B, whose published
    # configuration is transformers 4.57.6's Qwen3NextConfig defaults (no config.json is in
    # shared/reference; Qwen3.5 has no transformers class at 4.57). 4 layers = one 3:1 group; 16 of the
    # 512 routed experts keep the file small (top-10 and the shared expert unchanged)
    "qwen3-next-80b-a3b": dict(
        src="transformers:Qwen3NextConfig",
        layers=4,
        quants=[],
        overrides=dict(num_experts=16, architectures=["Qwen3NextForCausalLM"], model_type="qwen3_next"),
        convert_args=["--no-mtp"],  # the transformers model has no MTP block (the converter would look for one)
    ),
    # llama.cpp recognises the Lite variant (no q_lora) by its 26/27 layers (src/models/deepseek2.cpp
    # is_lite), so the depth stays; 4 routed experts instead of 64 keep the file small (MLA unchanged)
    "deepseek-v2-lite": dict(
        src="llm/DeepSeek-V2-Lite.json", layers=27, quants=[], overrides=dict(n_routed_experts=4, num_experts_per_tok=2)
    ),
    # DeepSeek-V3's attention (MLA with q_lora, 128 heads, kv_lora_rank 512) at a narrower width (2048) and
    # 8 routed experts: a second MLA point where n_head x kv_lora_rank (65,536) differs from 4 hidden states
    # (DeepSeek-V2-Lite has both at 8,192); the real 129,280-token vocabulary; no MTP layer
    "deepseek-v3-narrow": dict(
        src="llm/DeepSeek-V3.json",
        layers=2,
        quants=[],
        overrides=dict(
            hidden_size=2048,
            intermediate_size=4096,
            moe_intermediate_size=512,
            n_routed_experts=8,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=1,
            num_nextn_predict_layers=0,
        ),
        drop=["auto_map"],
    ),
    "gpt-oss-20b": dict(src="llm/gpt-oss-20b.json", layers=2, quants=[]),
    # VLMs: the language model keeps 2 layers, the vision tower keeps its full depth
    "qwen2-vl-7b": dict(src="vlm/Qwen2-VL-7B-Instruct.json", layers=2, quants=[], vlm=True),
    "qwen2.5-vl-7b": dict(src="vlm/Qwen2.5-VL-7B-Instruct.json", layers=2, quants=[], vlm=True),
    "gemma-3-4b": dict(src="vlm/gemma-3-4b-it.json", layers=2, quants=[], vlm=True),
    "qwen3-vl-2b": dict(src="vlm/Qwen3-VL-2B-Instruct.json", layers=2, quants=[], vlm=True),
    # the same with 6 decoder layers: Qwen3-VL-2B injects its 3 DeepStack slices into decoder layers 0-2
    # (src/models/qwen3vl.cpp: il < n_deepstack_layers), so with 2 layers the (1 + 3) x hidden input
    # embedding stays alive to the last layer; here it is dead before the last three. LLM runs only: the
    # mmproj does not depend on the language model's depth (mmproj=False)
    "qwen3-vl-2b-deep": dict(src="vlm/Qwen3-VL-2B-Instruct.json", layers=6, quants=[], vlm=True, mmproj=False),
    # LLaVA-1.5: convert_hf_to_gguf.py --mmproj handles only Pixtral-type LLaVA; the legacy
    # tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py makes its mmproj (as llama.cpp's docs say)
    "llava-1.5-7b": dict(src="vlm/llava-1.5-7b-hf.json", layers=2, quants=[], vlm=True, legacy=True),
}


def reduced_config(spec: dict) -> dict:
    if spec["src"].startswith("transformers:"):  # the class defaults are the published model's configuration
        import transformers

        cfg = getattr(transformers, spec["src"].split(":", 1)[1])().to_dict()
        cfg["layer_types"] = cfg.get("layer_types") or []
    else:
        cfg = json.loads((HF / spec["src"]).read_text())
    cfg = copy.deepcopy(cfg)
    for k in spec.get("drop", []):  # remote-code pointers: the converter and transformers use their own class
        cfg.pop(k, None)
    cfg.pop("quantization_config", None)  # gpt-oss: mxfp4 needs GPU kernels in transformers; llama-quantize makes MXFP4
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    n = spec["layers"]
    text["num_hidden_layers"] = n
    if isinstance(text.get("layer_types"), list):
        text["layer_types"] = text["layer_types"][:n]
    if text.get("model_type") == "gemma3_text" or cfg.get("model_type") == "gemma3":
        # llama.cpp's converter trims token_embd to the tokenizer's 262,144 entries (gemma3 configs say 262,208)
        text["vocab_size"] = 262144
    text.update(spec.get("overrides", {}))
    if "max_window_layers" in text:
        text["max_window_layers"] = min(int(text["max_window_layers"]), n)
    cfg["torch_dtype"] = "float16"
    return cfg


def build_model(cfg_dir: Path, vlm: bool) -> None:
    import torch
    import transformers
    from transformers import AutoConfig
    from transformers.modeling_utils import no_init_weights

    config = AutoConfig.from_pretrained(cfg_dir)
    cls = transformers.AutoModelForImageTextToText if vlm else transformers.AutoModelForCausalLM
    with no_init_weights():
        model = cls.from_config(config, torch_dtype=torch.float16)
    model.tie_weights()  # no_init_weights skips it; tied configs must not save an lm_head copy
    gen = torch.Generator().manual_seed(0)
    block = (torch.randn(1 << 16, generator=gen) * 0.02).to(torch.float16)
    with torch.no_grad():
        for p in list(model.parameters()) + list(model.buffers()):
            if not p.is_floating_point():
                continue
            flat = p.data.view(-1)
            n = flat.numel()
            reps = -(-n // block.numel())
            flat.copy_(block.repeat(reps)[:n].to(p.dtype))
    model.save_pretrained(cfg_dir, safe_serialization=True)


def image_processor(cfg: dict, cfg_dir: Path) -> None:
    """preprocessor_config.json from the transformers image processor class defaults."""
    import transformers

    mt = cfg["model_type"]
    classes = {
        "qwen2_vl": "Qwen2VLImageProcessor",
        "qwen2_5_vl": "Qwen2VLImageProcessor",
        "qwen3_vl": "Qwen2VLImageProcessor",
        "gemma3": "Gemma3ImageProcessor",
        "llava": "CLIPImageProcessor",
    }
    kw: dict = {}
    if mt == "gemma3":
        size = cfg["vision_config"]["image_size"]
        kw = dict(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    if mt == "qwen3_vl":
        kw = dict(patch_size=16)
    proc = getattr(transformers, classes[mt])(**kw)
    proc.save_pretrained(cfg_dir)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", type=Path, default=Path("/work/llamacpp/llama.cpp"))
    ap.add_argument("--out", type=Path, default=Path("/work/llamacpp/models"))
    ap.add_argument("--keep-hf", action="store_true")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    quantize = a.llama_cpp / "build" / "bin" / "llama-quantize"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in a.names or list(ARCHS):
        try:
            one(a, name, quantize)
        except Exception as e:
            print(f"{name}: FAILED {e}", flush=True)


def llava_legacy(a: argparse.Namespace, name: str, spec: dict, d: Path) -> None:
    """LLaVA-1.5: the language model through convert_hf_to_gguf.py, the CLIP tower + MLP projector
    through the legacy convert_image_encoder_to_gguf.py (CLIPVisionModel dir + llava.projector)."""
    import torch
    import transformers

    cfg = reduced_config(spec)
    (FIXTURES / f"{name}.json").write_text(json.dumps(cfg, indent=1) + "\n")
    tc = transformers.LlamaConfig(**cfg["text_config"]).to_dict()
    tc["architectures"] = ["LlamaForCausalLM"]
    lm = d / "hf-lm"
    lm.mkdir(parents=True, exist_ok=True)
    (lm / "config.json").write_text(json.dumps(tc, indent=1))
    stub = {"model": {"vocab": {f"t{i}": i for i in range(int(tc["vocab_size"]))}}, "added_tokens": []}
    (lm / "tokenizer.json").write_text(json.dumps(stub))
    f16 = d / f"{name}-F16.gguf"
    if not f16.exists():
        build_model(lm, False)
        subprocess.run([sys.executable, str(HERE / "convert.py"), str(a.llama_cpp), str(lm), str(f16)], check=True)
    mm = d / f"mmproj-{name}-F16.gguf"
    if not mm.exists():
        vis = d / "hf-clip"
        vis.mkdir(parents=True, exist_ok=True)
        vc = transformers.CLIPVisionConfig(**cfg["vision_config"])
        vc.architectures = ["CLIPVisionModel"]
        from transformers.modeling_utils import no_init_weights

        with no_init_weights():
            model = transformers.CLIPVisionModel(vc)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for prm in model.parameters():
                prm.copy_(torch.randn(prm.shape, generator=gen) * 0.02)
        model.save_pretrained(vis, safe_serialization=True)
        h_vis, h_txt = vc.hidden_size, int(tc["hidden_size"])
        proj = {
            "model.mm_projector.0.weight": torch.randn(h_txt, h_vis) * 0.02,
            "model.mm_projector.0.bias": torch.zeros(h_txt),
            "model.mm_projector.2.weight": torch.randn(h_txt, h_txt) * 0.02,
            "model.mm_projector.2.bias": torch.zeros(h_txt),
        }
        torch.save(proj, vis / "llava.projector")
        legacy = a.llama_cpp / "tools" / "mtmd" / "legacy-models" / "convert_image_encoder_to_gguf.py"
        env = dict(os.environ, PYTHONPATH=str(a.llama_cpp / "gguf-py"))
        subprocess.run(
            [sys.executable, str(legacy), "-m", str(vis), "--clip-model-is-vision", "--llava-projector", str(vis / "llava.projector"),
             "-o", str(d / "legacy")],
            check=True, env=env,
        )  # fmt: skip
        (d / "legacy" / "mmproj-model-f16.gguf").rename(mm)


def one(a: argparse.Namespace, name: str, quantize: Path) -> None:
    if ARCHS[name].get("legacy"):
        d = a.out / name
        llava_legacy(a, name, ARCHS[name], d)
        for q in ARCHS[name]["quants"]:
            if quantize.exists() and not (d / f"{name}-{q}.gguf").exists():
                subprocess.run(
                    [str(quantize), str(d / f"{name}-F16.gguf"), str(d / f"{name}-{q}.gguf"), q, "1"], check=True, capture_output=True
                )
        return
    if True:
        spec = ARCHS[name]
        vlm = bool(spec.get("vlm"))
        want_mm = vlm and spec.get("mmproj", True)
        d = a.out / name
        hf = d / "hf"
        f16 = d / f"{name}-F16.gguf"
        quants = spec.get("quants", LLM_QUANTS)
        todo = [q for q in quants if not (d / f"{name}-{q}.gguf").exists()]
        if f16.exists() and not todo and (not want_mm or (d / f"mmproj-{name}-F16.gguf").exists()):
            print(f"{name}: done")
            return
        hf.mkdir(parents=True, exist_ok=True)
        cfg = reduced_config(spec)
        (hf / "config.json").write_text(json.dumps(cfg, indent=1))
        (FIXTURES / f"{name}.json").write_text(json.dumps(cfg, indent=1) + "\n")
        text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
        # Gemma's converter trims token_embd to the tokenizer.json's entries: a stub with vocab_size of them
        stub = {"model": {"vocab": {f"t{i}": i for i in range(int(text["vocab_size"]))}}, "added_tokens": []}
        (hf / "tokenizer.json").write_text(json.dumps(stub))
        if not f16.exists() or (want_mm and not (d / f"mmproj-{name}-F16.gguf").exists()):
            if vlm:
                image_processor(cfg, hf)
            if not (hf / "model.safetensors").exists() and not (hf / "model.safetensors.index.json").exists():
                print(f"{name}: building random weights", flush=True)
                build_model(hf, vlm)
            conv = [sys.executable, str(HERE / "convert.py"), str(a.llama_cpp), str(hf)]
            if not f16.exists():
                subprocess.run([*conv, str(f16), *spec.get("convert_args", [])], check=True)
            if want_mm and not (d / f"mmproj-{name}-F16.gguf").exists():
                subprocess.run([*conv, str(d / f"mmproj-{name}-F16.gguf"), "--mmproj"], check=True)
        if not quantize.exists():
            print(f"{name}: llama-quantize not built yet, F16 only")
            if not a.keep_hf and not vlm:
                shutil.rmtree(hf, ignore_errors=True)
            return
        for q in todo:
            subprocess.run([str(quantize), str(f16), str(d / f"{name}-{q}.gguf"), q, "2"], check=True, capture_output=True)
            print(f"{name}: {q}", flush=True)
        if not a.keep_hf:
            shutil.rmtree(hf, ignore_errors=True)


if __name__ == "__main__":
    main()
