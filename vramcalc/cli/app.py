"""The Typer app: its error mapping and the one place that registers every command.

The command modules import only ``options`` and ``output`` (and the core, inside the command
functions); this module imports them, never the other way round.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup

from vramcalc.cli import catalog, check, compare, files, fit, gpus, probe
from vramcalc.errors import VramcalcError

# pydantic scans every installed distribution's entry points for plugins the first time it builds
# a validator (~20 ms); this CLI uses none. (Set before any command runs: the core is imported inside them.)
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


class _Group(TyperGroup):
    """Maps the core's known errors to 'Error: ...' on stderr and an exit code, for every command
    (also under typer.testing.CliRunner); anything else keeps its traceback."""

    def invoke(self, ctx: Any) -> Any:  # ctx: typer's click Context
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
    add_completion=True,
    rich_markup_mode=None,
)

# the order of `vramcalc --help`
app.command("check", epilog=check.EPILOG)(check.check)
app.command("list", epilog=catalog.LIST_EPILOG)(catalog.list_)
app.command("show", epilog=catalog.SHOW_EPILOG)(catalog.show)
app.command("validate", epilog=catalog.VALIDATE_EPILOG)(catalog.validate)
app.command("fit", epilog=fit.EPILOG)(fit.fit)
app.command("compare", epilog=compare.EPILOG)(compare.compare)
app.command("gpus", epilog=gpus.EPILOG)(gpus.gpus)
app.command("import", epilog=files.IMPORT_EPILOG)(files.import_)
app.command("probe", epilog=probe.EPILOG, context_settings=probe.CONTEXT)(probe.probe)


@app.callback()
def _root() -> None:
    # a callback keeps the app a group of commands when main() leaves only one registered
    pass


def main() -> None:
    """Console-script entry point.

    typer builds the click parameters of every registered command from its signature before it
    runs one (about 15% of `vramcalc check`'s start-up): when the first argument names a command,
    only that one stays registered. Anything else (``--help``, a typo, no argument) gets them all.
    """
    import sys

    first = sys.argv[1] if len(sys.argv) > 1 else None
    only = [c for c in app.registered_commands if c.name == first]
    if only:
        app.registered_commands = only
    app()
