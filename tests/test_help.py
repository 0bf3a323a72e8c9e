"""Snapshot of every command's --help at 80 columns: a changed option, default or help text shows up
as a diff here, and no line may be wider than an 80-column terminal.

Regenerate after an intended change (then review the diff of tests/fixtures/help/):

    VRAMCALC_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_help.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from vramcalc.cli import app

SNAPSHOTS = Path(__file__).parent / "fixtures" / "help"
#: read at import: the autouse fixture in conftest.py clears VRAMCALC_* before each test
UPDATE = os.environ.get("VRAMCALC_UPDATE_SNAPSHOTS") == "1"
ENV = {"COLUMNS": "80", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb"}
#: the console script as a user runs it, in a terminal of 80 columns (click wraps help to the terminal)
RUN = "import sys; sys.argv[0] = 'vramcalc'; from vramcalc.cli import main; main()"
COMMANDS = ["vramcalc", "check", "list", "show", "fit", "compare", "gpus", "validate", "import", "probe"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_snapshot(cmd):
    args = ["--help"] if cmd == "vramcalc" else [cmd, "--help"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VRAMCALC_", "FORCE_COLOR"))} | ENV
    r = subprocess.run([sys.executable, "-c", RUN, *args], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    text = r.stdout
    wide = [line for line in text.splitlines() if cell_len(line) > 80]
    assert not wide, f"vramcalc {' '.join(args)}: lines wider than 80 columns: {wide}"
    path = SNAPSHOTS / f"{cmd}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}; create it with: VRAMCALC_UPDATE_SNAPSHOTS=1 pytest tests/test_help.py"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"vramcalc {' '.join(args)} changed; if intended: VRAMCALC_UPDATE_SNAPSHOTS=1 pytest tests/test_help.py"


def test_every_command_has_a_snapshot():
    """A new command gets a snapshot too."""
    names = [c.name for c in app.registered_commands]
    assert sorted(names) == sorted(COMMANDS[1:])
