"""The command line's layout rules (issue 17): no module imports another module's private names, the
renderers never import the CLI, and the command modules never import the app (one place registers
the commands, so there is no import loop)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "vramcalc"
FILES = sorted([*(PKG / "cli").glob("*.py"), *(PKG / "render").glob("*.py"), PKG / "localgpu.py"])


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, [names]) of every ``from vramcalc... import`` and ``import vramcalc...`` in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vramcalc"):
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("vramcalc")]
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PKG).as_posix())
def test_no_private_imports_and_no_loops(path):
    rel = path.relative_to(PKG).as_posix()
    for module, names in _imports(path):
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{rel} imports private names {private} from {module}"
        if rel.startswith("render/"):
            assert not module.startswith("vramcalc.cli"), f"{rel}: a renderer imports the CLI ({module})"
        if rel.startswith("cli/") and rel not in ("cli/__init__.py", "cli/__main__.py"):
            assert module != "vramcalc.cli.app" and not (module == "vramcalc.cli" and "app" in names), f"{rel} imports the app"
            if rel != "cli/app.py":
                assert module != "vramcalc.cli" or not names, f"{rel}: command modules import cli.options / cli.output, not the package"


def test_print_json_takes_result_objects(capsys):
    """The one JSON printer: result dataclasses (``to_json()``, computed totals included) and plain dicts."""
    import json

    from vramcalc.cli.output import print_json
    from vramcalc.jsonable import Jsonable, result

    @result
    class Result(Jsonable):
        a: int
        b: tuple[str, ...]
        __json_computed__ = ("twice",)

        @property
        def twice(self) -> int:
            return 2 * self.a

    for obj, want in ((Result(1, ("x",)), {"a": 1, "b": ["x"], "twice": 2}), ({"a": 3}, {"a": 3})):
        print_json(obj)
        assert json.loads(capsys.readouterr().out) == want
