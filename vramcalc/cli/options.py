"""Option types, enums and parsers shared by the commands. Imports only typer (and, lazily, the core
module a parser needs), so every command module can use it without pulling in the core."""

from __future__ import annotations

import math
import re
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.schema import GpuSpec

OUTPUT = "Output"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (the object the table shows).", rich_help_panel=OUTPUT)]


def runtime_name(value: str) -> str:
    """--runtime: the name of a registered runtime plugin (vramcalc.runtimes)."""
    from vramcalc import runtimes
    from vramcalc.errors import InputError

    try:
        return runtimes.get(value).name
    except InputError as e:
        raise typer.BadParameter(str(e)) from None


RUNTIME_HELP = (
    "Memory accounting of this runtime: llama.cpp (GGUF; also ollama, LM Studio), transformers (PyTorch), "
    "vllm, sglang (servers: KV pool, TP/PP) or mlx (Apple silicon)."
)
RuntimeOpt = Annotated[str, typer.Option("--runtime", "-r", metavar="NAME", callback=runtime_name, help=RUNTIME_HELP)]


class KvOpt(str, Enum):
    f16 = "f16"
    q8_0 = "q8_0"
    q4_0 = "q4_0"


class OffloadOpt(str, Enum):
    auto = "auto"
    none = "none"


class Kind(str, Enum):
    gpus = "gpus"
    encoders = "encoders"
    llms = "llms"
    vlms = "vlms"


class FitKind(str, Enum):
    all = "all"
    llm = "llm"
    vlm = "vlm"
    encoder = "encoder"


class FitSort(str, Enum):
    quality = "quality"
    speed = "speed"
    context = "context"


class ProbeDtype(str, Enum):
    fp16 = "fp16"
    bf16 = "bf16"


class ProbeDevice(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


def parse_size(value: str | None) -> tuple[int, int] | None:
    """--image-size WIDTHxHEIGHT (also 'W×H') as pixels."""
    if value is None:
        return None
    try:
        w, h = (int(x) for x in value.lower().replace("×", "x").split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT in pixels, e.g. 1024x768, got '{value[:40]}'") from None
    if not (1 <= w <= MAX_IMAGE_SIDE and 1 <= h <= MAX_IMAGE_SIDE):
        raise typer.BadParameter(f"width and height must be 1..{MAX_IMAGE_SIDE:,} pixels", param_hint="--image-size")
    return w, h


def is_local(name: str) -> bool:
    """--gpu local: the card in this machine."""
    return name.strip().lower() == "local"


def resolve_gpus(cat: Catalog, values: list[str], local: GpuSpec | None = None) -> list[GpuSpec]:
    """--gpu rtx3090 --gpu rtx3090, or --gpu 2xrtx3090 / '2x 3090' / 3090x2: the GPUs of a layer
    split, main GPU first. A name that is itself a GPU (7900xtx, 9070xt) is never read as a count.
    ``local``: the detected card for 'local' (detected here when not given)."""
    out: list[GpuSpec] = []
    for v in values:
        n, name = split_gpu_count(cat, v)
        if n < 1 or n > MAX_GPUS:
            raise typer.BadParameter(f"GPU count must be 1-{MAX_GPUS}, got {n} in '{v}'")
        if is_local(name):
            out += [local or local_gpu_spec()] * n
        else:
            out += [cat.resolve_gpu(name)] * n
    return out


#: Most GPUs of one kind in --gpu NxNAME: a chosen bound (a node has at most 8-16).
MAX_GPUS = 16


def split_gpu_count(cat: Catalog, value: str) -> tuple[int, str]:
    """(count, GPU name) of '2xrtx3090', '2 x 3090', '3090x2', '3090 x2'; (1, value) when the whole
    value names a GPU or carries no count."""

    v = value.strip()
    if is_local(v) or cat.find_gpu(v) is not None:
        return 1, v
    for pat, ni, gi in ((r"(\d{1,6})\s*[x×*]\s*(.+)", 1, 2), (r"(.+?)\s*[x×*]\s*(\d{1,6})", 2, 1)):
        m = re.fullmatch(pat, v, flags=re.IGNORECASE)
        if m and (is_local(m.group(gi)) or cat.find_gpu(m.group(gi)) is not None):
            return int(m.group(ni)), m.group(gi)
    return 1, v


def local_gpu_spec() -> GpuSpec:
    """--gpu local for any command: the detected card (vramcalc.localgpu); the CLI only prints its notice."""
    from vramcalc.localgpu import detect_local_gpu

    found = detect_local_gpu()
    if found.notice:
        typer.echo(f"Note: {found.notice}", err=True)
    return found.spec


def parse_ram(value: str | None) -> int | None:
    """--ram 64 (GiB) or 64GiB / 48GB as bytes."""
    if value is None:
        return None
    from vramcalc.units import GiB, parse_bytes

    try:
        x = float(value)
    except ValueError:
        try:
            n = parse_bytes(value)
        except (ValueError, OverflowError) as e:
            raise typer.BadParameter(str(e)[:120], param_hint="--ram") from None
    else:
        if not math.isfinite(x):
            raise typer.BadParameter(f"expected a size in GiB, got '{value[:40]}'", param_hint="--ram")
        if not 0 < x <= MAX_RAM_GIB:
            raise typer.BadParameter(f"system RAM must be more than 0 and at most {MAX_RAM_GIB:,} GiB", param_hint="--ram")
        n = int(x * GiB)
    if n <= 0:
        raise typer.BadParameter("system RAM must be positive", param_hint="--ram")
    if n > MAX_RAM_GIB * GiB:
        raise typer.BadParameter(f"system RAM must be at most {MAX_RAM_GIB:,} GiB", param_hint="--ram")
    return n


def parse_ram_bandwidth(value: str | None) -> Any | None:
    """--ram-bandwidth in GB/s, or the names ddr4 / ddr5 (kept as strings for the core)."""
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("ddr4", "ddr5"):
        return v
    try:
        x = float(v.removesuffix("gb/s").strip())
    except ValueError:
        raise typer.BadParameter(f"expected GB/s or ddr4/ddr5, got '{value}'", param_hint="--ram-bandwidth") from None
    if not math.isfinite(x) or not 0 < x <= MAX_RAM_BANDWIDTH:
        raise typer.BadParameter(
            f"RAM bandwidth must be a positive number of GB/s up to {MAX_RAM_BANDWIDTH:,.0f}, got '{value[:40]}'",
            param_hint="--ram-bandwidth",
        )
    return x


def dtype_quant(quant: str | None, dtype: str | None) -> str | None:
    """--dtype is --quant under another name (each runtime knows the spellings of its precisions)."""
    if dtype is None:
        return quant
    if quant is not None and quant.lower() != dtype.lower():
        raise typer.BadParameter("give --quant or --dtype, not both")
    return dtype


SOURCE_HELP = (
    "Where MODEL is looked up (default: in this order): catalog (ids, aliases), file (a local path), "
    "ollama (the local store, then the registry), hf (the Hugging Face Hub)."
)
SourceOpt = Annotated[
    str | None, typer.Option("--source", metavar="catalog|file|ollama|hf", help=SOURCE_HELP, rich_help_panel="Model source")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Make no network request: Hub and Ollama-registry models come from vramcalc's cache (also HF_HUB_OFFLINE=1).",
        rich_help_panel="Model source",
    ),
]


class BackendOpt(str, Enum):
    """llama.cpp backends (--backend)."""

    cuda = "cuda"
    rocm = "rocm"
    vulkan = "vulkan"
    metal = "metal"
    sycl = "sycl"
    cpu = "cpu"


BackendOption = Annotated[
    BackendOpt | None,
    typer.Option(
        "--backend",
        help="llama.cpp backend for the speeds. Default: the GPU vendor's usual one (CUDA, ROCm, Metal, SYCL).",
        rich_help_panel="Speed",
    ),
]
DepthOption = Annotated[
    int | None,
    typer.Option(
        "--depth",
        min=0,
        help="Speeds with N tokens already in the KV cache (llama-bench -d): decode at N, prefill of 512 tokens after N.",
        rich_help_panel="Speed",
    ),
]


# --- llama.cpp placements (issue 9)

PLACEMENT = "llama.cpp placement"


class FitOpt(str, Enum):
    on = "on"
    off = "off"


class SplitModeOpt(str, Enum):
    layer = "layer"
    row = "row"
    none = "none"


def parse_tensor_split(value: str | None) -> tuple[float, ...] | None:
    """--tensor-split 3,1 (llama.cpp -ts: shares split on ',' or '/')."""
    if value is None:
        return None

    try:
        parts = tuple(float(x) for x in re.split(r"[,/]+", value.strip()) if x.strip())
    except ValueError:
        raise typer.BadParameter(f"expected shares such as 3,1, got '{value}'", param_hint="--tensor-split") from None
    if not parts or any(not math.isfinite(x) or x < 0 for x in parts) or sum(parts) <= 0:
        raise typer.BadParameter(f"expected non-negative shares with a positive sum, got '{value}'", param_hint="--tensor-split")
    return parts


def parse_overrides(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    """-ot PATTERN=BUFFER[,...] (repeatable), checked here so a bad regex is a usage error."""
    if not values:
        return ()
    from vramcalc.errors import InputError
    from vramcalc.overrides import parse_override

    out: list[tuple[str, str]] = []
    for v in values:
        try:
            out += parse_override(v)
        except InputError as e:
            raise typer.BadParameter(str(e), param_hint="--override-tensor") from None
    return tuple(out)


def parallel_batch(batch: int, parallel: int | None) -> tuple[int, int]:
    """(batch, n_parallel): -np N is llama.cpp's name for N parallel sequences (= --batch N)."""
    if parallel is None:
        return batch, 1
    if batch != 1 and batch != parallel:
        raise typer.BadParameter("give --batch or --parallel (-np), not both", param_hint="--parallel")
    return parallel, parallel


def mib(value: int | None) -> int:
    return 0 if value is None else value * 1024 * 1024


def resolve_gpus_free(cat: Catalog, values: list[str]) -> tuple[list[GpuSpec], int | None]:
    """resolve_gpus, plus for --gpu local the memory NVML reports in use on that card (None when no
    local GPU is named): llama.cpp can only use the free memory."""
    if not any(is_local(split_gpu_count(cat, v)[1]) for v in values):
        return resolve_gpus(cat, values), None
    from vramcalc.localgpu import detect_local_gpu

    found = detect_local_gpu()
    if found.notice:
        typer.echo(f"Note: {found.notice}", err=True)
    return resolve_gpus(cat, values, local=found.spec), found.in_use_bytes


# -- value bounds (issue 14): an absurd value is a usage error that states the accepted range ----
# Each bound is a choice far above any real use, so that no option can reach the core with a value
# that overflows a float, hangs a search or prints a figure in the 1e12 TiB.

#: --ctx: tokens per sequence (Llama 4 Scout's 10,485,760-token context fits under it)
MAX_CTX = 2**24
#: --images: images per sequence
MAX_IMAGES = 1024
#: --batch: parallel sequences (vLLM's default max_num_seqs is 256 to 1,024)
MAX_BATCH = 4096
#: --ubatch: llama.cpp micro-batch tokens
MAX_UBATCH = 2**16
#: --gpu-layers: llama.cpp -ngl (users write -ngl 999 for "all"; anything above the model's layers means all)
MAX_GPU_LAYERS = 100_000
#: --image-size: pixels per side (the largest JPEG side is 65,535; VLM processors resize far below)
MAX_IMAGE_SIDE = 65_535
#: --ram: GiB of system RAM (1 PiB)
MAX_RAM_GIB = 2**20
#: --ram-bandwidth: GB/s (HBM3e GPUs reach about 8,000)
MAX_RAM_BANDWIDTH = 100_000.0
#: fit --limit / --min-speed, list --min-memory
MAX_ROWS = 100_000
MAX_SPEED = 1e6
MAX_MEMORY_GIB = float(2**20)


def finite_float(option: str, lo: float, hi: float) -> Any:
    """A typer callback: a float option that must be finite and in lo..hi (click's FloatRange lets nan through)."""

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and lo <= value <= hi):
            raise typer.BadParameter(f"{value} is not in the range {lo:,.10g}..{hi:,.10g}", param_hint=option)
        return value

    return check


def check_output_path(path: str | None, option: str) -> None:
    """An output file named by an option can be written: its folder exists and is writable and its
    name is not too long. Checked before any long work (probe measures for minutes)."""
    import os
    from pathlib import Path

    if path is None:
        return
    p = Path(path)
    try:
        if len(os.fsencode(p.name)) > 255:
            raise typer.BadParameter(f"the file name is longer than 255 bytes: '{str(path)[:60]}...'", param_hint=option)
        folder = p.expanduser().resolve().parent
        if not folder.is_dir():
            raise typer.BadParameter(f"no folder for '{path}'", param_hint=option)
        if not os.access(folder, os.W_OK) or p.is_dir():
            raise typer.BadParameter(f"cannot write '{path}'", param_hint=option)
    except (OSError, ValueError) as e:
        raise typer.BadParameter(f"cannot write '{str(path)[:80]}': {e}", param_hint=option) from None


WideOpt = Annotated[
    bool,
    typer.Option("--wide", help="Print tables at their natural width (no columns dropped), e.g. for a pipe.", rich_help_panel=OUTPUT),
]


def _names(kinds: list[str], incomplete: str) -> list[str]:
    """Ids and aliases of ``kinds`` that start with what was typed (case-insensitive), for shell completion."""
    try:
        from vramcalc.catalog import load_catalog

        cat = load_catalog()
    except Exception:  # completion must never print a traceback into the shell
        return []
    low = incomplete.lower()
    out: list[str] = []
    for kind in kinds:
        for eid, raw in cat.raw[kind].items():
            for name in [eid, *raw.aliases]:
                if name.lower().startswith(low) and name not in out:
                    out.append(name)
    return sorted(out, key=lambda n: (n != n.lower(), n))[:200]


def complete_model(incomplete: str) -> list[str]:
    """Shell completion of MODEL: catalog model ids and aliases."""
    return _names(["vlms", "llms", "encoders"], incomplete)


def complete_gpu(incomplete: str) -> list[str]:
    """Shell completion of --gpu: GPU ids and aliases, and 'local'."""
    return (["local"] if "local".startswith(incomplete.lower()) else []) + _names(["gpus"], incomplete)


def complete_any(incomplete: str) -> list[str]:
    """Shell completion of `show ID`: every id and alias."""
    return _names(["gpus", "encoders", "llms", "vlms"], incomplete)
