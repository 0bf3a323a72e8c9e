"""llama.cpp tensor overrides: ``--n-cpu-moe N``, ``--cpu-moe`` and ``-ot PATTERN=BUFFER``.

A rule is a regular expression over GGUF tensor names (``blk.12.ffn_up_exps.weight``, the names
``params.llm_tensors`` gives) and a buffer type. llama.cpp (vendored at commit 0c1e57098, the
oracle's build; ``src/llama-model-loader.cpp``, the "check overrides" loop) tries the rules in the
order given and the first one whose pattern ``std::regex_search``-es the name decides; other tensors
follow their layer (``-ngl``). ``--cpu-moe`` and ``--n-cpu-moe N`` are rules too
(``common/common.h``: ``LLM_FFN_EXPS_REGEX = "\\.ffn_(up|down|gate|gate_up)_(ch|)exps"``;
``--n-cpu-moe N`` adds ``blk\\.{i}`` + that pattern for i = 0 .. N-1, the *first* N layers).

Python's ``re.search`` stands in for ECMAScript ``std::regex_search``: the patterns people write
(literal dots, alternations, classes, ``\\d``, ``.*``) mean the same in both.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vramcalc.errors import InputError

if TYPE_CHECKING:
    from vramcalc.params import Tensor

#: common/common.h LLM_FFN_EXPS_REGEX (llama.cpp 0c1e57098): every expert tensor of a layer.
FFN_EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
#: A pattern longer than this is refused (hostile input: a regex is compiled per rule).
MAX_PATTERN = 512
#: Buffer types a rule may name: system RAM, or a GPU of the run (CUDA0, ROCm1, Vulkan0, Metal, ...).
_GPU_BUFFER = re.compile(r"(?i)(cuda|rocm|vulkan|sycl|metal|gpu)(\d*)")

Rule = tuple[str, str]


def n_cpu_moe_rules(n: int) -> list[Rule]:
    """``--n-cpu-moe N``: the experts of layers 0 .. N-1 to the CPU (common.h llm_add_n_cpu_ffn_overrides)."""
    return [(rf"blk\.{i}{FFN_EXPS_REGEX}", "CPU") for i in range(n)]


def cpu_moe_rules() -> list[Rule]:
    """``--cpu-moe``: every expert tensor to the CPU (common.h llm_ffn_exps_cpu_override)."""
    return [(FFN_EXPS_REGEX, "CPU")]


def parse_override(value: str) -> list[Rule]:
    """``-ot`` value: ``PATTERN=BUFFER[,PATTERN=BUFFER...]`` (common/arg.cpp parse_tensor_buffer_overrides
    splits on ',' and each item on its first '=')."""
    out: list[Rule] = []
    for item in value.split(","):
        pattern, sep, buf = item.partition("=")
        if not sep or not pattern or not buf.strip():
            raise InputError(f"-ot expects PATTERN=BUFFER (e.g. 'exps=CPU'), got '{item}'.")
        device(buf.strip(), 16)  # a known buffer type
        compile_pattern(pattern)
        out.append((pattern, buf.strip()))
    return out


def compile_pattern(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN:
        raise InputError(f"-ot pattern longer than {MAX_PATTERN} characters.")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InputError(f"-ot pattern '{pattern}' is not a regular expression: {e}.") from None


def device(buffer: str, n_gpus: int) -> int:
    """Device index of a buffer type: -1 for CPU (and CPU-side buffers such as CUDA_Host), k for GPU k."""
    b = buffer.strip()
    if b.upper().startswith("CPU") or b.lower().endswith("_host"):
        return -1
    m = _GPU_BUFFER.fullmatch(b)
    if not m:
        raise InputError(f"Unknown buffer type '{buffer}' in -ot: use CPU or a GPU buffer such as CUDA0.")
    k = int(m.group(2) or 0)
    if k >= n_gpus:
        raise InputError(f"-ot names {buffer}, but only {n_gpus} GPU(s) are given (CUDA0 .. CUDA{n_gpus - 1}).")
    return k


def rules(n_cpu_moe: int | None, cpu_moe: bool, override: tuple[Rule, ...]) -> list[Rule]:
    """The rules in llama.cpp's order: the options push them as they are parsed; vramcalc takes
    -ot first, then --cpu-moe, then --n-cpu-moe (the order matters only when rules overlap)."""
    out = list(override)
    if cpu_moe:
        out += cpu_moe_rules()
    if n_cpu_moe:
        out += n_cpu_moe_rules(n_cpu_moe)
    return out


def assign(tensors: tuple[Tensor, ...], rule_list: list[Rule], n_gpus: int) -> tuple[int | None, ...]:
    """Per tensor: the device a rule sends it to (-1 = CPU, k = GPU k), or None (its layer decides)."""
    if not rule_list:
        return (None,) * len(tensors)
    compiled = [(compile_pattern(p), device(b, n_gpus)) for p, b in rule_list]
    out: list[int | None] = []
    for t in tensors:
        out.append(next((d for rx, d in compiled if rx.search(t.name)), None))
    return tuple(out)
