"""Models from the user's files on the command line: the file branch of `check` (``estimate_file``),
and `vramcalc import`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vramcalc import runtimes
from vramcalc.cli.options import JsonOpt, OfflineOpt, SourceOpt
from vramcalc.cli.output import print_json
from vramcalc.errors import InputError

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.estimate import Estimate, Workload
    from vramcalc.readers.load import FileModel
    from vramcalc.readers.remote import ModelSource
    from vramcalc.schema import GpuSpec

IMPORT_EPILOG = "Examples: vramcalc import ./model.Q4_K_M.gguf | vramcalc import ./Llama-2-7b-hf --write"


def estimate_file(path: str, mmproj: str | None, gpu: GpuSpec | list[GpuSpec], work: Workload, catalog: Catalog) -> Estimate:
    """The estimate for a model file/folder: exact weights where the files fix them."""
    from vramcalc.readers import load_model_files

    fm = load_model_files(path, mmproj, runtime=work.runtime, catalog=catalog)
    return estimate_file_model(fm, gpu, work, catalog)


def estimate_file_model(fm: FileModel, gpu: GpuSpec | list[GpuSpec], work: Workload, catalog: Catalog) -> Estimate:
    """The estimate for a model read from files (local, the Hub, Ollama): exact weights where they fix them."""
    from vramcalc.estimate import estimate
    from vramcalc.results import FixedWeights

    weights = fm.weights
    notes = list(fm.notes)
    if weights is not None and weights.llm is not None:
        gguf = fm.kind == "gguf"
        rt = runtimes.get(work.runtime)
        if gguf and rt.weights_format != "gguf":
            weights = FixedWeights(llm=None, vision=None, projector=None)
            notes.append(f"{rt.name} dequantizes a GGUF file on load: weights estimated at the model's dtype, not the file's types.")
        elif work.quant and not _same_precision(work.quant, fm.quant, work.runtime):
            weights = FixedWeights(llm=None, vision=weights.vision, projector=weights.projector)
            notes.append(f"--quant {work.quant}: the weights are estimated at that precision, not read from the file ({fm.quant}).")
    if fm.kind == "gguf" and weights is fm.weights:
        notes.insert(0, f"Weights read from the GGUF header of {fm.path.name}: every tensor's exact type and size.")
    return estimate(fm.model, gpu, work, fm.catalog(catalog), weights, notes=notes)


def _same_precision(asked: str, file_quant: str | None, runtime: str) -> bool:
    if file_quant is None:
        return False
    try:
        rt = runtimes.get(runtime)
        return rt.normalize_precision(asked) == rt.normalize_precision(file_quant)
    except InputError:
        return False


def import_(
    path: Annotated[
        str,
        typer.Argument(
            help=(
                "A .gguf file, a config.json, a model folder (config.json + *.safetensors), a Hub repo (org/name[:QUANT]) or an Ollama tag."
            )
        ),
    ],
    mmproj: Annotated[
        Path | None, typer.Option("--mmproj", help="llama.cpp vision projector GGUF (makes a VLM of a GGUF language model).")
    ] = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="Catalog id to give the entry (default: from the model's name).")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Store the entries in the user catalog, so 'check ID' works from then on.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --write: replace an existing entry with the same id.")] = False,
    as_json: JsonOpt = False,
    source: SourceOpt = None,
    offline: OfflineOpt = False,
) -> None:
    """Print the catalog YAML entry (or entries, for a VLM) for a model file or folder, a Hugging
    Face repo or an Ollama tag (read by their headers; the entry's source names the repo and commit)."""
    from vramcalc.catalog import load_catalog, user_catalog_dir
    from vramcalc.readers import entry_data, load_model_files, looks_like_path, renamed
    from vramcalc.render.imports import entry_yaml, render_import

    if source == "catalog":
        raise InputError("import reads a model's files: --source file, ollama or hf.")
    if source in (None, "file") and ((looks_like_path(path) and not _is_url(path)) or mmproj is not None):
        fm = load_model_files(path, mmproj, catalog=load_catalog())
    else:
        found = resolve_name(path, load_catalog(), source=source or "remote", offline=offline)
        assert found.fm is not None and found.source is not None
        fm = _sourced(found.fm, found.source)
    if entry_id:
        fm = renamed(fm, entry_id)
    entries = fm.entries()
    docs: list[dict[str, Any]] = []
    root = user_catalog_dir()
    cat = load_catalog(include_user=False) if write else None
    for folder, spec in entries:
        data = entry_data(spec)
        target = root / folder / f"{spec.id}.yaml"
        if write:
            assert cat is not None
            if spec.id in cat.raw[folder] and not force:
                raise InputError(
                    f"'{spec.id}' is already a built-in {folder[:-1]} id; pass --id NAME to store it "
                    f"under another id, or --force to shadow it."
                )
            if target.exists() and not force:
                raise InputError(f"{target} exists; pass --force to replace it, or --id NAME.")
        docs.append({"kind": folder, "id": spec.id, "path": str(target), "entry": data})
    if write:
        for d in docs:
            target = Path(d["path"])
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(entry_yaml(d["entry"]), encoding="utf-8")
            except OSError as e:
                raise InputError(f"cannot write {target}: {e.strerror}") from None
        load_catalog.cache_clear()
    if as_json:
        print_json({"written": write, "entries": docs, "notes": fm.notes})
        return
    typer.echo(render_import(docs, write))
    for note in fm.notes:
        typer.echo(f"Note: {note}", err=True)
    if write:
        model_id = docs[-1]["id"]
        typer.echo(f"Stored in {root}. Try: vramcalc check {model_id} --gpu rtx3060", err=True)


# ---------------------------------------------------------------------------------------------
# Names: catalog id -> local path -> Ollama store -> Hugging Face Hub / Ollama registry

#: ``--source`` values: force one step of the resolution order.
SOURCES = ("catalog", "file", "ollama", "hf")


@dataclass
class Resolved:
    """What a MODEL argument named: a catalog spec, a local path, or a model read remotely."""

    spec: Any = None
    path: str | None = None
    fm: FileModel | None = None
    source: ModelSource | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def resolve_name(
    name: str,
    cat: Catalog,
    *,
    source: str | None = None,
    offline: bool = False,
    runtime: str = "llama.cpp",
    quant: str | None = None,
    vision_quant: str | None = None,
) -> Resolved:
    """Resolve MODEL in the order: catalog id/alias (offline, instant) -> an existing local path ->
    the local Ollama store -> the Hugging Face Hub (a name with '/') / the Ollama registry (a name
    with ':tag'). ``source`` forces one step; ``offline`` (or HF_HUB_OFFLINE=1) answers remote names
    from vramcalc's cache only."""
    from vramcalc.errors import UnknownEntryError
    from vramcalc.readers import looks_like_path

    if source is not None and source not in (*SOURCES, "remote"):
        raise InputError(f"--source must be one of {', '.join(SOURCES)}, got '{source}'.")
    remote = source == "remote"  # import: the Ollama store, the Hub, the registry (not the catalog)
    if remote:
        source = None
    if source in (None, "file") and not _is_url(name) and looks_like_path(name):
        return Resolved(path=name)
    if source == "file":
        raise InputError(f"{name}: no such file or folder.")
    order: list[str] = []
    catalog_error: UnknownEntryError | None = None
    if source in (None, "catalog") and not remote:
        try:
            return Resolved(spec=cat.resolve_model(name))
        except UnknownEntryError as e:
            if source == "catalog":
                raise
            catalog_error = e
            order.append("catalog: no such id or alias")
        order.append("local path: none")
    from vramcalc.readers.hub import parse_hub_ref
    from vramcalc.readers.ollama import parse_ollama_ref
    from vramcalc.readers.remote import RemoteNotFound, offline_env

    offline = offline or offline_env()
    href = parse_hub_ref(name) if source in (None, "hf") else None
    oref = parse_ollama_ref(name) if source in (None, "ollama") and not (href and href.explicit) else None
    if oref is not None:
        from vramcalc.readers.ollama import find_in_store, load_from_store

        found = find_in_store(oref)
        if found:
            fm, src, params = load_from_store(oref, *found)
            order.append(f"Ollama store: {oref.label} found")
            return _remote(fm, src, order, params)
        order.append(f"Ollama store: no {oref.label}")
    misses: list[str] = []
    if href is not None and (source == "hf" or "/" in name):
        from vramcalc.readers.hub import load_hub_model

        try:
            fm, src = load_hub_model(href, quant=quant, vision_quant=vision_quant, runtime=runtime, catalog=cat, offline=offline)
            order.append("Hugging Face Hub: found")
            return _remote(fm, src, order, {})
        except RemoteNotFound as e:
            if source == "hf" or oref is None or ":" not in name:
                if catalog_error is None:
                    raise
                misses.append(str(e))
            order.append("Hugging Face Hub: not found")
            misses.append(str(e))
    if oref is not None and (source == "ollama" or ":" in name):
        from vramcalc.readers.ollama import load_from_registry

        try:
            fm, src, params = load_from_registry(oref, offline)
            order.append("Ollama registry: found")
            return _remote(fm, src, order, params)
        except RemoteNotFound as e:
            if source == "ollama" or catalog_error is None:
                raise
            misses.append(str(e))
    if source == "ollama" and oref is not None:
        raise InputError(f"{name}: not in the Ollama store.")
    if catalog_error is not None:
        if misses:
            raise InputError(f"{catalog_error} {' '.join(dict.fromkeys(misses))}")
        raise catalog_error
    shown = name if len(name) <= 80 else name[:38] + "..." + name[-38:]
    if source == "hf":
        raise InputError(f"'{shown}' is not a Hugging Face repo id (org/name[:QUANT]).")
    if source == "ollama":
        raise InputError(f"'{shown}' is not an Ollama model name (name:tag).")
    raise InputError(f"'{shown}': no such file, and not a Hugging Face repo id (org/name) or an Ollama tag (name:tag).")


def _remote(fm: FileModel, src: ModelSource, order: list[str], params: dict[str, Any]) -> Resolved:
    import dataclasses

    settings: dict[str, Any] = {}
    if src.kind == "ollama":
        from vramcalc.readers.ollama import ollama_settings

        settings = ollama_settings(params)
    src = dataclasses.replace(src, order=order, settings=settings)
    return Resolved(fm=fm, source=src, settings=settings)


def _sourced(fm: FileModel, src: ModelSource) -> FileModel:
    """The model's catalog entries with ``source:`` naming where its headers were read (repo and commit)."""
    import dataclasses

    from vramcalc.readers.load import FileModel

    if src.kind == "hf":
        text = f"Hugging Face {src.repo} at commit {src.commit}, {', '.join(src.files)} (headers read by vramcalc)"
    else:
        text = f"Ollama {src.repo}, manifest {src.commit}, {', '.join(src.files)} (GGUF headers read by vramcalc)"
    llm = dataclasses.replace(fm.llm, source=text)
    enc = dataclasses.replace(fm.encoder, source=text) if fm.encoder is not None else None
    model = dataclasses.replace(fm.model, source=text) if fm.model is not fm.llm else llm
    return FileModel(fm.path, fm.kind, model, llm, enc, fm.weights, fm.quant, fm.safetensors, [*fm.notes, src.line()])


def _is_url(name: str) -> bool:
    """A URL or ``hf.co/...`` name (never a local path; checked without importing the Hub reader)."""
    return name.strip().lower().startswith(("http://", "https://", "hf.co/", "huggingface.co/", "www.huggingface.co/"))
