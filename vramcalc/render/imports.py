"""``vramcalc import``: the catalog YAML it prints (the same text it writes with --write)."""

from __future__ import annotations

from typing import Any


def entry_yaml(entry: dict[str, Any]) -> str:
    """A catalog entry as the YAML ``import`` prints and writes (key order kept)."""
    import yaml

    return yaml.safe_dump(entry, sort_keys=False, allow_unicode=True, width=120)


def render_import(docs: list[dict[str, Any]], written: bool) -> str:
    """Each entry as a '# <kind>/<id>.yaml' comment and its YAML, the entries separated by '---'.

    ``docs``: ``{"kind", "id", "path", "entry"}`` per entry (the ``entries`` of ``import --json``).
    """
    out = []
    for d in docs:
        head = f"# {d['kind']}/{d['id']}.yaml" + (f"  (written to {d['path']})" if written else "")
        out.append(head + "\n" + entry_yaml(d["entry"]).rstrip())
    return "\n---\n".join(out)
