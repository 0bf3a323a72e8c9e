"""Catalog commands: `vramcalc list`, `show` and `validate`."""

from pathlib import Path
from typing import Annotated

import typer

from vramcalc.cli.options import MAX_MEMORY_GIB, JsonOpt, Kind, complete_any, finite_float
from vramcalc.cli.output import console, print_json

LIST_EPILOG = "Examples: vramcalc list gpus -q 4090 | vramcalc list vlms --json | vramcalc list gpus --vendor apple --min-memory 64"
SHOW_EPILOG = "Examples: vramcalc show llava-7b | vramcalc show rtx3060 --json"
VALIDATE_EPILOG = "Examples: vramcalc validate | vramcalc validate ~/my-catalog"


def list_(
    kind: Annotated[Kind, typer.Argument(help="What to list.")],
    query: Annotated[str | None, typer.Option("--query", "-q", help="Substring of the id, name or an alias.")] = None,
    vendor: Annotated[str | None, typer.Option("--vendor", help="GPUs: nvidia, amd, intel, apple.")] = None,
    min_memory: Annotated[
        float | None,
        typer.Option("--min-memory", callback=finite_float("--min-memory", 0, MAX_MEMORY_GIB), help="GPUs: at least this many GiB."),
    ] = None,
    family: Annotated[str | None, typer.Option("--family", help="Models/encoders: architecture family (llama, qwen2, clip ...).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List catalog entries, with filters."""
    from vramcalc.catalog import load_catalog
    from vramcalc.listing import list_entries

    result = list_entries(load_catalog(), kind.value, query=query, vendor=vendor, min_memory_gib=min_memory, family=family)
    if as_json:
        print_json(result)
        return
    from vramcalc.render.catalog import render_list

    console().print(render_list(kind.value, result["items"], result["catalog_counts"]))


def show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Any catalog id or alias.", autocompletion=complete_any)],
    as_json: JsonOpt = False,
) -> None:
    """Show one catalog entry with its derived parameter count."""
    from vramcalc.catalog import load_catalog
    from vramcalc.listing import describe

    data = describe(load_catalog(), entry_id)
    if as_json:
        print_json(data)
        return
    from vramcalc.render.catalog import render_entry

    console().print(render_entry(data))


def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Catalog directories (holding gpus/, encoders/, llms/, vlms/); default: the built-in catalog."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every catalog file: schema, references, unique ids, parameter counts, consistency."""
    from vramcalc.validate import validate_paths

    report = validate_paths(paths)
    if as_json:
        print_json(report)
    else:
        from vramcalc.render.catalog import render_validation

        console(soft_wrap=True).print(render_validation(report))
    if not report.ok:
        raise typer.Exit(1)
