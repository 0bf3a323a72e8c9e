"""The vramcalc command line: parse, resolve ids, call the core, render. No arithmetic here.

``app`` (the Typer app) and ``main`` (the console script ``vramcalc.cli:main``) live in ``app.py``;
shared options and parsers in ``options.py``; JSON and console output in ``output.py``; one module
per command group (``check``, ``catalog``: list/show/validate, ``fit``, ``files``: import and model
files, ``probe``). Tables and pictures are in ``vramcalc.render``.
"""

from vramcalc.cli.app import app, main

__all__ = ["app", "main"]
