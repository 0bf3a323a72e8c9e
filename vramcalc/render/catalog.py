"""Catalog commands: the ``list`` table, one ``show`` entry, the ``validate`` report."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vramcalc.render.table import Col, DroppedNote, FitTable
from vramcalc.units import GiB, fmt_bytes, fmt_count


def render_list(kind: str, rows: list[dict[str, Any]], counts: dict[str, int]) -> Group:
    if not rows:
        return Group(Text("No results found."))
    cols = LIST_COLUMNS[kind]
    spec = [
        Col(
            header,
            "right" if header in RIGHT else "left",
            drop=LIST_DROP.get(header, 0),
            flexible=24 if header == "Name" else 0,
        )
        for header, _ in cols
    ]
    t = FitTable(spec, [[fmt(r) for _, fmt in cols] for r in rows])
    summary = Text(f"{len(rows)} shown · catalog: " + ", ".join(f"{n} {k}" for k, n in counts.items()), style="dim")
    return Group(t, DroppedNote(t, "widen the terminal, --json, or vramcalc show ID"), summary)


#: List columns dropped first when the width is short (higher goes first); ids and 0 are never dropped.
LIST_DROP = {
    "Kind": 6,
    "Family": 6,
    "Notes": 6,
    "Image tokens": 5,
    "Patch": 5,
    "Layers": 5,
    "Encoder": 4,
    "LLM": 3,
    "Image": 3,
    "FP16 TFLOPS": 4,
    "Bandwidth": 2,
    "Context": 2,
}


RIGHT = {"Memory", "Bandwidth", "FP16 TFLOPS", "Params", "Layers", "Context", "Image", "Patch"}


def _gb(r: dict[str, Any]) -> str:
    n = r["memory_bytes"]
    return f"{n / GiB:.0f} GiB" if n % GiB == 0 else fmt_bytes(n)


LIST_COLUMNS: dict[str, list[tuple[str, Any]]] = {
    "gpus": [
        ("Id", lambda r: r["id"]),
        ("Name", lambda r: r["name"]),
        ("Memory", _gb),
        ("Bandwidth", lambda r: f"{r['memory_bandwidth_gbs']:.0f} GB/s"),
        ("FP16 TFLOPS", lambda r: f"{(r.get('fp16_tensor_tflops') or r.get('fp16_tflops') or 0):.1f}"),
        ("Kind", lambda r: r["category"]),
    ],
    "llms": [
        ("Id", lambda r: r["id"]),
        ("Name", lambda r: r["name"]),
        ("Params", lambda r: fmt_count(r["params"])),
        ("Layers", lambda r: str(r["num_layers"])),
        ("Context", lambda r: f"{r['max_context']:,}"),
        (
            "Notes",
            lambda r: ", ".join(
                x for x in ("MoE" if r.get("moe") else "", "SWA" if r.get("sliding_window") else "", "MLA" if r.get("mla") else "") if x
            ),
        ),
    ],
    "encoders": [
        ("Id", lambda r: r["id"]),
        ("Name", lambda r: r["name"]),
        ("Params", lambda r: fmt_count(r["params"])),
        ("Image", lambda r: f"{r['image_size']} px"),
        ("Patch", lambda r: str(r["patch_size"])),
        ("Family", lambda r: r["family"]),
    ],
    "vlms": [
        ("Id", lambda r: r["id"]),
        ("Name", lambda r: r["name"]),
        ("Params", lambda r: fmt_count(r["params"])),
        ("Encoder", lambda r: r["encoder"]),
        ("LLM", lambda r: r["llm"]),
        ("Image tokens", lambda r: r["image_tokens"]["kind"]),
    ],
}


def render_entry(data: dict[str, Any]) -> Table:
    t = Table(box=None, pad_edge=False, show_header=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in data.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items() if b not in (None, [], False))
        elif isinstance(v, list):
            v = ", ".join(map(str, v))
        t.add_row(k, str(v))
    return t


def render_validation(report: Any) -> Group:
    lines: list[Any] = []
    for p in report.problems:
        lines.append(Text(f"✗ {p}", style="red"))
    style = "green" if report.ok else "red"
    counts = ", ".join(f"{n} {k}" for k, n in report.counts.items())
    lines.append(
        Text(
            f"{'OK' if report.ok else 'FAILED'}: {report.checked} entries checked ({counts}), {len(report.problems)} problem(s).",
            style=style,
        )
    )
    return Group(*lines)
