"""`vramcalc check`: will MODEL (a catalog id, or a model file/folder) run on the given GPU(s)?

No ``from __future__ import annotations`` in the command modules: typer reads every option's
annotation, and string annotations cost an ``eval`` each (check has about 60: ~15 ms a start).
"""

from typing import TYPE_CHECKING, Annotated

import typer

import vramcalc.cli.serving_options as so
from vramcalc.cli.options import (
    MAX_BATCH,
    MAX_CTX,
    MAX_GPU_LAYERS,
    MAX_IMAGES,
    MAX_UBATCH,
    OUTPUT,
    PLACEMENT,
    BackendOption,
    DepthOption,
    FitOpt,
    JsonOpt,
    KvOpt,
    OfflineOpt,
    OffloadOpt,
    RuntimeOpt,
    SourceOpt,
    SplitModeOpt,
    complete_gpu,
    complete_model,
    dtype_quant,
    mib,
    parallel_batch,
    parse_overrides,
    parse_ram,
    parse_ram_bandwidth,
    parse_size,
    parse_tensor_split,
    resolve_gpus_free,
)
from vramcalc.cli.output import console, print_json

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.names import TypedName

EPILOG = "Examples: vramcalc check llava-7b --gpu rtx3060 | vramcalc check llama-3.1-8b --gpu 'RTX 4090' --ctx 32768 --kv-cache q8_0"


def check(
    model: Annotated[
        str, typer.Argument(help="Model id or alias (llava-7b, llama3.1:8b, Qwen/Qwen2-VL-7B-Instruct ...).", autocompletion=complete_model)
    ],
    gpu: Annotated[
        list[str],
        typer.Option(
            "--gpu",
            "-g",
            autocompletion=complete_gpu,
            help=(
                "GPU id, alias or NVML name (rtx3060, 'NVIDIA GeForce RTX 3060'). Repeat it, or write "
                "2xrtx3090, for a llama.cpp layer split over several GPUs."
            ),
        ),
    ],
    quant: Annotated[
        str | None,
        typer.Option(
            "--quant",
            "-q",
            help=(
                "LLM weights: GGUF type (Q4_K_M, Q8_0, F16 ...) or, for transformers, "
                "bf16/fp16/fp8/int8/nf4/gptq-int4/awq-int4. Default: Q4_K_M / the model's dtype."
            ),
        ),
    ] = None,
    ctx: Annotated[
        int | None, typer.Option("--ctx", "-c", min=1, max=MAX_CTX, help="Text tokens per sequence (default 4096); image tokens are added.")
    ] = None,
    images: Annotated[
        int | None, typer.Option("--images", min=0, max=MAX_IMAGES, help="Images per sequence (default 1 for a VLM).")
    ] = None,
    image_size: Annotated[
        str | None, typer.Option("--image-size", help="Image size WIDTHxHEIGHT (dynamic-resolution and tiling VLMs depend on it).")
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", "-b", min=1, max=MAX_BATCH, help="Parallel sequences (llama.cpp -np) or batch size.")
    ] = 1,
    kv_cache: Annotated[KvOpt, typer.Option("--kv-cache", help="KV cache type (llama.cpp -ctk/-ctv).")] = KvOpt.f16,
    flash_attn: Annotated[
        bool, typer.Option("--flash-attn/--no-flash-attn", help="Flash attention (llama.cpp -fa; on by default where supported).")
    ] = True,
    vision_quant: Annotated[
        str | None,
        typer.Option(
            "--vision-quant", help="Vision encoder + projector: f16 (default), f32, bf16, q8_0; transformers: fp16/bf16/int8/nf4."
        ),
    ] = None,
    runtime: RuntimeOpt = "llama.cpp",
    ubatch: Annotated[int, typer.Option("--ubatch", min=1, max=MAX_UBATCH, help="llama.cpp micro-batch (-ub).")] = 512,
    headless: Annotated[
        bool, typer.Option("--headless", help="This GPU drives no display: do not keep memory back for the desktop.")
    ] = False,
    gpu_layers: Annotated[
        int | None,
        typer.Option(
            "--gpu-layers",
            "-ngl",
            min=0,
            max=MAX_GPU_LAYERS,
            help="llama.cpp -ngl: layers on the GPU (repeating layers + 1 for the output layer). Default: all that fit.",
            rich_help_panel="Offload",
        ),
    ] = None,
    offload: Annotated[
        OffloadOpt,
        typer.Option(
            "--offload",
            help="auto: when the model does not fit, keep the layers that do not fit in system RAM (slower); none: GPU only.",
            rich_help_panel="Offload",
        ),
    ] = OffloadOpt.auto,
    ram: Annotated[
        str | None,
        typer.Option(
            "--ram",
            help="System RAM, e.g. 64 or 64GiB (a bare number is GiB): checks that the offloaded part fits.",
            rich_help_panel="Offload",
        ),
    ] = None,
    ram_bandwidth: Annotated[
        str | None,
        typer.Option(
            "--ram-bandwidth",
            help="System RAM bandwidth in GB/s, or ddr4 (dual channel DDR4-3200, 51.2) / ddr5 (dual channel DDR5-5600, 89.6, the default).",
            rich_help_panel="Offload",
        ),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="Alias of --quant for encoder workloads and transformers (fp16, bf16, fp32).")
    ] = None,
    mmproj: Annotated[str | None, typer.Option("--mmproj", help="With a .gguf MODEL: the llama.cpp vision projector file (a VLM).")] = None,
    backend: BackendOption = None,
    depth: DepthOption = None,
    as_json: JsonOpt = False,
    source: SourceOpt = None,
    offline: OfflineOpt = False,
    click_ctx: typer.Context = None,  # type: ignore[assignment]  # typer passes the command's context
    gpu_memory_utilization: so.FractionOpt = None,
    max_model_len: so.MaxLenOpt = None,
    max_num_seqs: so.SeqsOpt = None,
    max_num_batched_tokens: so.BatchedOpt = None,
    kv_cache_dtype: so.KvDtype = so.KvDtypeOpt.auto,
    tensor_parallel_size: so.TpOpt = None,
    pipeline_parallel_size: so.PpOpt = None,
    nodes: so.NodesOpt = 1,
    enforce_eager: so.EagerOpt = False,
    limit_mm_per_prompt: so.MmOpt = None,
    wired_limit_mb: so.WiredOpt = None,
    concurrency: so.ConcOpt = None,
    gen_tokens: so.GenOpt = None,
    n_cpu_moe: Annotated[
        int | None,
        typer.Option("--n-cpu-moe", "-ncmoe", min=0, help="Expert tensors of the first N layers in system RAM.", rich_help_panel=PLACEMENT),
    ] = None,
    cpu_moe: Annotated[
        bool, typer.Option("--cpu-moe", "-cmoe", help="Every expert tensor in system RAM.", rich_help_panel=PLACEMENT)
    ] = False,
    override_tensor: Annotated[
        list[str] | None,
        typer.Option(
            "--override-tensor",
            "-ot",
            metavar="PATTERN=BUF",
            help="Regex over GGUF tensor names = CPU or CUDAn, e.g. 'exps=CPU' (first match wins; repeatable).",
            rich_help_panel=PLACEMENT,
        ),
    ] = None,
    tensor_split: Annotated[
        str | None,
        typer.Option(
            "--tensor-split", "-ts", help="Share of the layers per GPU, e.g. 3,1 (default: by free memory).", rich_help_panel=PLACEMENT
        ),
    ] = None,
    split_mode: Annotated[
        SplitModeOpt, typer.Option("--split-mode", "-sm", help="layer (default) or none (main GPU only).", rich_help_panel=PLACEMENT)
    ] = SplitModeOpt.layer,
    main_gpu: Annotated[
        int, typer.Option("--main-gpu", "-mg", min=0, help="GPU index for --split-mode none.", rich_help_panel=PLACEMENT)
    ] = 0,
    cache_type_k: Annotated[
        KvOpt | None, typer.Option("--cache-type-k", "-ctk", help="K cache type (default: --kv-cache).", rich_help_panel=PLACEMENT)
    ] = None,
    cache_type_v: Annotated[
        KvOpt | None, typer.Option("--cache-type-v", "-ctv", help="V cache type (default: --kv-cache).", rich_help_panel=PLACEMENT)
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", "-np", min=1, help="llama.cpp slots: parallel sequences (= --batch).", rich_help_panel=PLACEMENT),
    ] = None,
    kv_unified: Annotated[
        bool, typer.Option("--kv-unified", "-kvu", help="One KV buffer shared by all sequences.", rich_help_panel=PLACEMENT)
    ] = False,
    no_mmproj_offload: Annotated[
        bool, typer.Option("--no-mmproj-offload", help="Vision projector in system RAM, run on the CPU.", rich_help_panel=PLACEMENT)
    ] = False,
    no_warmup: Annotated[
        bool, typer.Option("--no-warmup", help="No warm-up run (vision buffer sized for your image).", rich_help_panel=PLACEMENT)
    ] = False,
    fit: Annotated[
        FitOpt,
        typer.Option("--fit", help="on: place as llama.cpp's --fit would when it does not fit (default).", rich_help_panel=PLACEMENT),
    ] = FitOpt.on,
    fit_target: Annotated[
        int, typer.Option("--fit-target", min=0, metavar="MiB", help="Memory --fit keeps free per GPU.", rich_help_panel=PLACEMENT)
    ] = 1024,
    reserve: Annotated[
        int | None,
        typer.Option("--reserve", min=0, metavar="MiB", help="Memory other programs hold on each GPU.", rich_help_panel=PLACEMENT),
    ] = None,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot", help="Also draw memory against context, with the usable memory as a line (text plot).", rich_help_panel=OUTPUT
        ),
    ] = False,
) -> None:
    """Will MODEL run on GPU? Memory breakdown, verdict, largest context and the change that makes it fit.

    MODEL may also be a file or folder: a .gguf (exact weights from its header), a config.json,
    or a Hugging Face model folder (config.json + *.safetensors headers); a Hugging Face repo
    (org/name, org/name:Q4_K_M, hf.co/org/name:QUANT, a huggingface.co URL, each with @REV) or an
    Ollama tag (qwen3:30b-a3b), read by their headers only. Order: catalog id/alias, local path,
    Ollama store, then the Hub / the Ollama registry.
    """
    from vramcalc.catalog import load_catalog
    from vramcalc.estimate import Workload, estimate

    cat = load_catalog()
    from vramcalc.cli.files import Resolved, resolve_name
    from vramcalc.readers import looks_like_path

    cards, in_use = resolve_gpus_free(cat, gpu)
    if mmproj and not looks_like_path(model):
        raise typer.BadParameter("--mmproj goes with a .gguf MODEL file, not a catalog id", param_hint="--mmproj")
    typed = typed_name(model, cat, source, dtype_quant(quant, dtype))  # qwen2.5:7b-instruct-q8_0: catalog + Q8_0
    found = (
        Resolved(spec=typed.spec)
        if typed is not None
        else resolve_name(
            model,
            cat,
            source=source,
            offline=offline,
            runtime=runtime,
            quant=dtype_quant(quant, dtype),
            vision_quant=vision_quant,
        )
    )
    if mmproj and found.path is None:
        raise typer.BadParameter(
            "--mmproj goes with a .gguf MODEL file; a Hub repo or Ollama model brings its own projector", param_hint="--mmproj"
        )
    spec = found.spec
    if found.settings:  # Ollama's settings where the command line left the default
        params = click_ctx.get_parameter_source
        names = {"context_tokens": "ctx", "batch": "batch", "flash_attention": "flash_attn", "kv_cache": "kv_cache"}
        picked = {k: v for k, v in found.settings.items() if k in names and getattr(params(names[k]), "name", "DEFAULT") == "DEFAULT"}
        if picked:
            ctx = picked.get("context_tokens", ctx)
            batch = picked.get("batch", batch)
            flash_attn = picked.get("flash_attention", flash_attn)
            kv_cache = KvOpt(picked.get("kv_cache", kv_cache.value))
    batch, n_parallel = parallel_batch(batch, parallel)
    work = Workload(
        runtime=runtime,
        quant=(typed.quant if typed is not None and typed.quant else None) or dtype_quant(quant, dtype),
        vision_quant=vision_quant,
        context_tokens=ctx,
        images=images,
        image_size=parse_size(image_size),
        batch=batch,
        kv_cache=kv_cache.value,
        flash_attention=flash_attn,
        n_ubatch=ubatch,
        headless=headless,
        gpu_layers=gpu_layers,
        offload=offload.value,
        ram_bytes=parse_ram(ram),
        ram_bandwidth_gbs=parse_ram_bandwidth(ram_bandwidth),
        backend=backend.value if backend is not None else None,
        depth=depth,
        serving=so.serving_options(
            gpu_memory_utilization,
            max_model_len,
            max_num_seqs,
            max_num_batched_tokens,
            kv_cache_dtype,
            tensor_parallel_size,
            pipeline_parallel_size,
            nodes,
            enforce_eager,
            limit_mm_per_prompt,
            wired_limit_mb,
            concurrency,
            gen_tokens,
        ),
        n_cpu_moe=n_cpu_moe,
        cpu_moe=cpu_moe,
        override_tensor=parse_overrides(override_tensor),
        tensor_split=parse_tensor_split(tensor_split),
        split_mode=split_mode.value,
        main_gpu=main_gpu,
        cache_type_k=cache_type_k.value if cache_type_k else None,
        cache_type_v=cache_type_v.value if cache_type_v else None,
        n_parallel=n_parallel,
        kv_unified=kv_unified,
        mmproj_offload=not no_mmproj_offload,
        warmup=not no_warmup,
        fit=fit == FitOpt.on,
        fit_target_bytes=mib(fit_target),
        reserve_bytes=mib(reserve),
    )
    if in_use is not None:  # --gpu local: NVML's free memory is what there is (no display guess on top)
        work = work.with_(headless=True, reserve_bytes=work.reserve_bytes + in_use)
        typer.echo(f"Note: --gpu local: {in_use / 2**30:.2f} GiB of the card in use (NVML); counting free memory only.", err=True)
    if found.path is not None:  # a model file or folder (cli/files.py)
        from vramcalc.cli.files import estimate_file

        est = estimate_file(found.path, mmproj, cards, work, cat)
        if est.llama_server is not None:  # the command names the user's files
            import dataclasses

            from vramcalc.cmdline import with_files

            est = dataclasses.replace(est, llama_server=with_files(est.llama_server, str(found.path), mmproj))
    elif found.fm is not None:  # read from the Hub or Ollama (cli/files.py)
        from vramcalc.cli.files import estimate_file_model

        est = estimate_file_model(found.fm, cards, work, cat)
        src = found.source
        if est.llama_server is not None and src is not None and src.kind == "hf" and src.repo:
            import dataclasses

            from vramcalc.cmdline import with_hub_repo

            est = dataclasses.replace(est, llama_server=with_hub_repo(est.llama_server, src.repo, est.inputs.quant))
    else:
        assert spec is not None
        est = estimate(spec, cards, work, cat, notes=[typed.note] if typed is not None and typed.note else None)
    curve = None
    if plot:
        if spec is None:
            raise typer.BadParameter(
                "--plot works with catalog models (a file's exact weights are not re-read per context)", param_hint="--plot"
            )
        from vramcalc.views import context_curve

        curve = context_curve(spec, cards, work, cat, est)
    if as_json:
        out = est.to_json() if found.source is None else {**est.to_json(), "source": found.source.to_json()}
        print_json(est if found.source is None and curve is None else {**out, **({"context_curve": curve.to_json()} if curve else {})})
        return
    if found.source is not None:
        typer.echo(f"Resolved {model}: {' -> '.join(found.source.order)}", err=True)
        console().print(found.source.line(), markup=False)
    if est.serving is not None:  # a serving runtime's answer (runtimes/serving.py)
        from vramcalc.render.serving import render_serving

        console().print(render_serving(est))
        return
    from vramcalc.render.estimate import render_estimate

    console().print(render_estimate(est))
    if curve is not None:
        from rich.text import Text

        from vramcalc.render.views import ContextPlot

        console().print(Text(""), ContextPlot(curve))


def typed_gguf_name(model: str) -> bool:
    """A bare '*.gguf' name (no folder) that is not a file here: a model name with its quantization."""
    from pathlib import Path

    return model.lower().endswith(".gguf") and "/" not in model and "\\" not in model and not Path(model).exists()


def typed_name(model: str, cat: "Catalog", source: str | None, quant: str | None) -> "TypedName | None":
    """A catalog model with the quantization typed into its name ('qwen2.5:7b-instruct-q8_0',
    'gemma3:27b-it-qat', 'Qwen2.5-7B-Instruct-Q4_K_M.gguf' that is no file), as vramcalc.names reads
    it; None when MODEL is a plain catalog name (resolve_name takes it), a path, a Hub id (org/name)
    or names no catalog model. A conflicting --quant is an InputError."""
    from vramcalc.errors import UnknownEntryError
    from vramcalc.names import resolve_typed, split_quant
    from vramcalc.readers import looks_like_path

    if source not in (None, "catalog") or "/" in model or "\\" in model:
        return None
    if looks_like_path(model) and not typed_gguf_name(model):
        return None
    if split_quant(model)[1] is None:
        return None
    try:
        typed = resolve_typed(cat, model, quant)
    except UnknownEntryError:
        return None
    return typed if typed.quant is not None else None
