"""The ``llama-server`` command line that reproduces a llama.cpp answer.

Every setting the estimate depends on is written out (llama.cpp flag names at commit 0c1e57098,
``common/arg.cpp``): ``-c`` is the *total* context over the parallel sequences (llama.cpp splits it
between the ``-np`` slots), ``-ngl`` the GPU layers vramcalc placed (given explicitly, llama.cpp's own
``--fit`` leaves it alone: fit.cpp aborts when n_gpu_layers, a tensor split or tensor overrides are
set by the user), ``--n-cpu-moe`` / ``--cpu-moe`` / ``-ot`` the tensor rules, ``-ts`` / ``-sm`` /
``-mg`` the multi-GPU split. ``-np`` is always written: llama-server's default (-1) means 4 slots
with a unified KV cache (tools/server/server.cpp), not one sequence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramcalc.schema import VlmSpec

if TYPE_CHECKING:
    from vramcalc.results import Inputs, Offload, Workload


def _num(x: float) -> str:
    return f"{x:g}"


def server_command(model: object, i: Inputs, w: Workload, off: Offload | None, n_gpus: int) -> list[str]:
    """``llama-server`` argument list (argv[0] included) for the resolved inputs and placement."""
    slots = max(i.batch, w.n_parallel)
    args = ["llama-server", "-m", f"{i.llm if i.model_kind == 'vlm' else i.model}-{i.quant}.gguf"]
    if isinstance(model, VlmSpec) and i.vision_quant:
        args += ["--mmproj", f"mmproj-{i.model}-{i.vision_quant}.gguf"]
    args += ["-c", str(i.context_tokens * slots)]
    if off is not None:
        args += ["-ngl", str(off.gpu_layers)]
        if off.tensor_overrides:
            args += ["-ot", ",".join(off.tensor_overrides)]
        if w.cpu_moe:
            args += ["--cpu-moe"]
        if w.n_cpu_moe:
            args += ["--n-cpu-moe", str(w.n_cpu_moe)]
        elif off.n_cpu_moe and not w.cpu_moe:  # chosen by --fit
            args += ["--n-cpu-moe", str(off.n_cpu_moe)]
    if n_gpus > 1 and w.tensor_split is not None:
        args += ["-ts", ",".join(_num(x) for x in w.tensor_split)]
    elif n_gpus > 1 and off is not None:  # the layer counts placed (llama.cpp's default split follows free memory at run time)
        args += ["-ts", ",".join(str(d.layers + (1 if d.output_layer else 0)) for d in off.gpus)]
    if w.split_mode != "layer":
        args += ["-sm", w.split_mode]
    if w.main_gpu:
        args += ["-mg", str(w.main_gpu)]
    args += ["-fa", "on" if i.flash_attention else "off"]
    if w.k_type != "f16":
        args += ["-ctk", w.k_type]
    if w.v_type != "f16":
        args += ["-ctv", w.v_type]
    args += ["-np", str(slots)]
    if w.kv_unified:
        args += ["-kvu"]
    if i.n_ubatch != 512:
        args += ["-ub", str(i.n_ubatch)]
    if isinstance(model, VlmSpec):
        if not w.mmproj_offload:
            args += ["--no-mmproj-offload"]
        if not w.warmup:
            args += ["--no-warmup"]
    return args


def shell_line(args: list[str]) -> str:
    """The argument list as one shell line (quoted where needed)."""
    import shlex

    return " ".join(shlex.quote(a) for a in args)


def with_files(args: list[str] | None, model_path: str, mmproj: str | None) -> list[str] | None:
    """The command line for the user's own files: ``-m`` (and ``--mmproj``) name them. A folder or
    config.json is not a GGUF file: the placeholder name stays."""
    if args is None or not model_path.lower().endswith(".gguf"):
        return args
    out = list(args)
    out[out.index("-m") + 1] = model_path
    if mmproj and "--mmproj" in out:
        out[out.index("--mmproj") + 1] = mmproj
    return out


def with_hub_repo(args: list[str] | None, repo: str, quant: str) -> list[str] | None:
    """The command line for a model on the Hugging Face Hub: ``-hf REPO:QUANT`` (llama.cpp's
    common/arg.cpp ``-hf, --hf-repo <user>/<model>[:quant]``, which also fetches the repo's mmproj)
    instead of ``-m FILE`` and ``--mmproj FILE``."""
    if args is None or "-m" not in args:
        return args
    out: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("-m", "--mmproj") and i + 1 < len(args):
            skip = True
            if a == "-m":
                out += ["-hf", f"{repo}:{quant}"]
            continue
        out.append(a)
    return out
