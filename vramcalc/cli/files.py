"""Models from the user's files on the command line: the file branch of `check` (``estimate_file``),
and `vramcalc import`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vramcalc import runtimes
from vramcalc.cli.options import JsonOpt
from vramcalc.cli.output import print_json
from vramcalc.errors import InputError

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.estimate import Estimate, Workload
    from vramcalc.schema import GpuSpec

IMPORT_EPILOG = "Examples: vramcalc import ./model.Q4_K_M.gguf | vramcalc import ./Llama-2-7b-hf --write"


def estimate_file(path: str, mmproj: str | None, gpu: GpuSpec | list[GpuSpec], work: Workload, catalog: Catalog) -> Estimate:
    """The estimate for a model file/folder: exact weights where the files fix them."""
    from vramcalc.estimate import estimate
    from vramcalc.readers import load_model_files
    from vramcalc.results import FixedWeights

    fm = load_model_files(path, mmproj, runtime=work.runtime, catalog=catalog)
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
    path: Annotated[Path, typer.Argument(help="A .gguf file, a config.json, or a model folder (config.json + *.safetensors).")],
    mmproj: Annotated[
        Path | None, typer.Option("--mmproj", help="llama.cpp vision projector GGUF (makes a VLM of a GGUF language model).")
    ] = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="Catalog id to give the entry (default: from the model's name).")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Store the entries in the user catalog, so 'check ID' works from then on.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --write: replace an existing entry with the same id.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the catalog YAML entry (or entries, for a VLM) for a model file or folder."""
    from vramcalc.catalog import load_catalog, user_catalog_dir
    from vramcalc.readers import entry_data, load_model_files, renamed
    from vramcalc.render.imports import entry_yaml, render_import

    fm = load_model_files(path, mmproj, catalog=load_catalog())
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
