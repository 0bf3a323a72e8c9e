"""The vramcalc command line: parse, resolve ids, call the core, render. No arithmetic here."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

# pydantic scans every installed distribution's entry points for plugins the first time it builds
# a validator (~20 ms); this CLI uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from vramcalc.errors import VramcalcError  # noqa: E402


class _Group(TyperGroup):
    """Maps the core's known errors to 'Error: ...' on stderr and an exit code, for every command
    (also under typer.testing.CliRunner); anything else keeps its traceback."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        try:
            return super().invoke(ctx)
        except VramcalcError as e:
            if os.environ.get("VRAMCALC_DEBUG"):
                raise
            typer.echo(f"Error: {e}", err=True)
            if e.exit_code == 1:
                typer.echo("(set VRAMCALC_DEBUG=1 for a traceback)", err=True)
            raise typer.Exit(e.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="vramcalc",
    help="Will it run? VRAM, context and speed of LLMs and vision-language models on your GPU.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)

OUTPUT = "Output"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (the object the table shows).", rich_help_panel=OUTPUT)]


class RuntimeOpt(str, Enum):
    llama_cpp = "llama.cpp"
    transformers = "transformers"


class KvOpt(str, Enum):
    f16 = "f16"
    q8_0 = "q8_0"
    q4_0 = "q4_0"


class Kind(str, Enum):
    gpus = "gpus"
    encoders = "encoders"
    llms = "llms"
    vlms = "vlms"


def _parse_size(value: Optional[str]) -> Optional[tuple[int, int]]:
    if value is None:
        return None
    try:
        w, h = (int(x) for x in value.lower().replace("×", "x").split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT in pixels, e.g. 1024x768, got '{value}'") from None
    if w <= 0 or h <= 0:
        raise typer.BadParameter("width and height must be positive")
    return w, h


class OffloadOpt(str, Enum):
    auto = "auto"
    none = "none"


def _resolve_gpus(cat, values: list[str]) -> list:  # noqa: ANN001
    """--gpu rtx3090 --gpu rtx3090, or --gpu 2xrtx3090: the GPUs of a layer split, main GPU first."""
    import re

    out = []
    for v in values:
        m = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(.+)", v)
        n, name = (int(m.group(1)), m.group(2)) if m else (1, v)
        if n < 1 or n > 16:
            raise typer.BadParameter(f"GPU count must be 1-16, got {n} in '{v}'")
        if name.strip().lower() == "local":
            from vramcalc.cli_fit import local_gpu

            out += [local_gpu(cat)] * n
        else:
            out += [cat.resolve_gpu(name)] * n
    return out


def _parse_ram(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    from vramcalc.units import GiB, parse_bytes

    try:
        return int(float(value) * GiB)
    except ValueError:
        pass
    try:
        return parse_bytes(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _parse_ram_bandwidth(value: Optional[str]) -> Optional[Any]:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("ddr4", "ddr5"):
        return v
    try:
        x = float(v.removesuffix("gb/s").strip())
    except ValueError:
        raise typer.BadParameter(f"expected GB/s or ddr4/ddr5, got '{value}'") from None
    if x <= 0:
        raise typer.BadParameter("RAM bandwidth must be positive")
    return x


def _dtype_quant(quant: Optional[str], dtype: Optional[str], runtime: str) -> Optional[str]:
    """--dtype is --quant under another name; llama.cpp spells the float types f16/f32/bf16."""
    if dtype is None:
        return quant
    if quant is not None and quant.lower() != dtype.lower():
        raise typer.BadParameter("give --quant or --dtype, not both")
    if runtime == "llama.cpp":
        return {"fp16": "f16", "float16": "f16", "fp32": "f32", "float32": "f32", "bfloat16": "bf16"}.get(dtype.lower(), dtype)
    return dtype


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _console():  # noqa: ANN202
    from rich.console import Console

    return Console(highlight=False)


@app.command(epilog="Examples: vramcalc check llava-7b --gpu rtx3060 | vramcalc check llama-3.1-8b --gpu 'RTX 4090' --ctx 32768 --kv-cache q8_0")
def check(
    model: Annotated[str, typer.Argument(help="Model id or alias (llava-7b, llama3.1:8b, Qwen/Qwen2-VL-7B-Instruct ...).")],
    gpu: Annotated[list[str], typer.Option("--gpu", "-g", help="GPU id, alias or NVML name (rtx3060, 'NVIDIA GeForce RTX 3060'). Repeat it, or write 2xrtx3090, for a llama.cpp layer split over several GPUs.")],
    quant: Annotated[Optional[str], typer.Option("--quant", "-q", help="LLM weights: GGUF type (Q4_K_M, Q8_0, F16 ...) or, for transformers, bf16/fp16/fp8/int8/nf4/gptq-int4/awq-int4. Default: Q4_K_M / the model's dtype.")] = None,
    ctx: Annotated[Optional[int], typer.Option("--ctx", "-c", min=1, help="Text tokens per sequence (default 4096); image tokens are added.")] = None,
    images: Annotated[Optional[int], typer.Option("--images", min=0, help="Images per sequence (default 1 for a VLM).")] = None,
    image_size: Annotated[Optional[str], typer.Option("--image-size", help="Image size WIDTHxHEIGHT (dynamic-resolution and tiling VLMs depend on it).")] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Parallel sequences (llama.cpp -np) or batch size.")] = 1,
    kv_cache: Annotated[KvOpt, typer.Option("--kv-cache", help="KV cache type (llama.cpp -ctk/-ctv).")] = KvOpt.f16,
    flash_attn: Annotated[bool, typer.Option("--flash-attn/--no-flash-attn", help="Flash attention (llama.cpp -fa; on by default where supported).")] = True,
    vision_quant: Annotated[Optional[str], typer.Option("--vision-quant", help="Vision encoder + projector: f16 (default), f32, bf16, q8_0; transformers: fp16/bf16/int8/nf4.")] = None,
    runtime: Annotated[RuntimeOpt, typer.Option("--runtime", "-r", help="Memory accounting of this runtime.")] = RuntimeOpt.llama_cpp,
    ubatch: Annotated[int, typer.Option("--ubatch", min=1, help="llama.cpp micro-batch (-ub).")] = 512,
    headless: Annotated[bool, typer.Option("--headless", help="This GPU drives no display: do not keep memory back for the desktop.")] = False,
    gpu_layers: Annotated[Optional[int], typer.Option("--gpu-layers", "-ngl", min=0, help="llama.cpp -ngl: layers on the GPU (repeating layers + 1 for the output layer). Default: all that fit.", rich_help_panel="Offload")] = None,
    offload: Annotated[OffloadOpt, typer.Option("--offload", help="auto: when the model does not fit, keep the layers that do not fit in system RAM (slower); none: GPU only.", rich_help_panel="Offload")] = OffloadOpt.auto,
    ram: Annotated[Optional[str], typer.Option("--ram", help="System RAM, e.g. 64 or 64GiB (a bare number is GiB): checks that the offloaded part fits.", rich_help_panel="Offload")] = None,
    ram_bandwidth: Annotated[Optional[str], typer.Option("--ram-bandwidth", help="System RAM bandwidth in GB/s, or ddr4 (dual channel DDR4-3200, 51.2) / ddr5 (dual channel DDR5-5600, 89.6, the default).", rich_help_panel="Offload")] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="Alias of --quant for encoder workloads and transformers (fp16, bf16, fp32).")] = None,
    mmproj: Annotated[Optional[str], typer.Option("--mmproj", help="With a .gguf MODEL: the llama.cpp vision projector file (a VLM).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Will MODEL run on GPU? Memory breakdown, verdict, largest context and the change that makes it fit.

    MODEL may also be a file or folder: a .gguf (exact weights from its header), a config.json,
    or a Hugging Face model folder (config.json + *.safetensors headers).
    """
    from vramcalc.catalog import load_catalog
    from vramcalc.estimate import Workload, estimate

    cat = load_catalog()
    from vramcalc.readers import looks_like_path

    is_file = looks_like_path(model)
    if mmproj and not is_file:
        raise typer.BadParameter("--mmproj goes with a .gguf MODEL file, not a catalog id", param_hint="--mmproj")
    spec = None if is_file else cat.resolve_model(model)
    cards = _resolve_gpus(cat, gpu)
    work = Workload(
        runtime=runtime.value, quant=_dtype_quant(quant, dtype, runtime.value), vision_quant=vision_quant, context_tokens=ctx, images=images,
        image_size=_parse_size(image_size), batch=batch, kv_cache=kv_cache.value, flash_attention=flash_attn,
        n_ubatch=ubatch, headless=headless, gpu_layers=gpu_layers, offload=offload.value, ram_bytes=_parse_ram(ram),
        ram_bandwidth_gbs=_parse_ram_bandwidth(ram_bandwidth),
    )
    if is_file:  # a model file or folder (cli_files.py)
        from vramcalc.cli_files import check_file

        check_file(model, mmproj, cards, work, as_json, cat)
        return
    est = estimate(spec, cards, work, cat)
    if as_json:
        _print_json(est.to_json())
        return
    from vramcalc.render import render_estimate

    _console().print(render_estimate(est))


@app.command("list", epilog="Examples: vramcalc list gpus -q 4090 | vramcalc list vlms --json | vramcalc list gpus --vendor apple --min-memory 64")
def list_(
    kind: Annotated[Kind, typer.Argument(help="What to list.")],
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="Substring of the id, name or an alias.")] = None,
    vendor: Annotated[Optional[str], typer.Option("--vendor", help="GPUs: nvidia, amd, intel, apple.")] = None,
    min_memory: Annotated[Optional[float], typer.Option("--min-memory", help="GPUs: at least this many GiB.")] = None,
    family: Annotated[Optional[str], typer.Option("--family", help="Models/encoders: architecture family (llama, qwen2, clip ...).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List catalog entries, with filters."""
    from vramcalc.listing import list_entries

    result = list_entries(kind.value, query=query, vendor=vendor, min_memory_gib=min_memory, family=family)
    if as_json:
        _print_json(result)
        return
    from vramcalc.render import render_list

    _console().print(render_list(kind.value, result["items"], result["catalog_counts"]))


@app.command(epilog="Examples: vramcalc show llava-7b | vramcalc show rtx3060 --json")
def show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Any catalog id or alias.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one catalog entry with its derived parameter count."""
    from vramcalc.listing import describe

    data = describe(entry_id)
    if as_json:
        _print_json(data)
        return
    from vramcalc.render import render_entry

    _console().print(render_entry(data))


@app.command(epilog="Examples: vramcalc validate | vramcalc validate ~/my-catalog")
def validate(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Catalog directories (holding gpus/, encoders/, llms/, vlms/); default: the built-in catalog.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every catalog file: schema, references, unique ids, parameter counts, consistency."""
    from vramcalc.validate import validate_paths

    report = validate_paths(paths)
    if as_json:
        _print_json(report.model_dump(mode="json"))
    else:
        from rich.console import Console

        from vramcalc.render import render_validation

        Console(highlight=False, soft_wrap=True).print(render_validation(report))
    if not report.ok:
        raise typer.Exit(1)


from vramcalc.cli_files import import_ as _import_cmd  # noqa: E402  (registered here; the modules import this one)
from vramcalc.cli_fit import FIT_EPILOG, fit as _fit_cmd  # noqa: E402

app.command("fit", epilog=FIT_EPILOG)(_fit_cmd)
app.command("import", epilog="Examples: vramcalc import ./model.Q4_K_M.gguf | vramcalc import ./Llama-2-7b-hf --write")(_import_cmd)
from vramcalc.cli_probe import PROBE_CONTEXT, PROBE_EPILOG, probe as _probe_cmd  # noqa: E402  (imports no torch)

app.command("probe", epilog=PROBE_EPILOG, context_settings=PROBE_CONTEXT)(_probe_cmd)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
