"""Write data/quality.yaml: for each catalog LLM/VLM, when it came out (from a named source) and
whether it is a component nobody runs alone. ``fit`` ranks by this date combined with the size
(vramcalc/fit.py, ``quality_score``).

The date, in this order (the first that applies; every value names where it was read):

1. ``released`` (month of release), from
   a. the date stamp in the model's own Hugging Face repo ids, when every repo id among the entry's
      aliases carries one (``mistralai/Mistral-Small-24B-Instruct-2501`` -> 2025-01; YYMM, or MMYY
      as in OLMo's ``0924``; the earliest when there are several). An entry with an unstamped repo id
      (``Qwen/Qwen3-30B-A3B`` beside ``...-Instruct-2507``) takes no stamp: its first release is older
      than the stamped revision and undated;
   b. the arXiv id of the model's own paper or model card, cited by the entry's ``source:`` (the
      YYMM of an arXiv id is the month of its first version): ``OWN_PAPER`` lists the entries whose
      cited paper is their own (moonlight-16b-a3b cites Kimi-VL's report, which is not its own).
2. otherwise ``not_before`` (labelled fallback): the model cannot predate the transformers release
   its published config.json was written with (``transformers_version`` in the copy under
   shared/reference/hf_configs/ the entry's source cites; a ``X.Y.0.devN`` build is after X.(Y-1).0),
   dated by the first PyPI upload of that release (benchmarks/quality/transformers_releases.csv).
   A lower bound, not a release date: DeepSeek-V3's config was written with transformers 4.33 (2023-09).
   The config, in this order: the entry's own (a cited file whose name contains the id; of several, the
   earliest-written, as a later conversion would give a bound after the release); for a VLM, the version of its
   language model; another config its source cites (InternVL3 cites InternVL2-8B's for the layout: a later model of
   the family); a same-family, same-generation sibling's (``source`` says which). A VLM is also not older than its
   language model: its bound is the later of the two.
3. neither: no date (fit ranks it after the dated ones of its precision tier).

Components: an LLM that a VLM names as its language stack and whose id says so ('-text', '-vl2'),
e.g. gemma-3-12b-text inside gemma-3-12b: hidden from fit.

Usage: python benchmarks/quality/generate.py [--reference /work/shared/reference] > data/quality.yaml
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RELEASES = Path(__file__).resolve().parent / "transformers_releases.csv"

#: Entries whose source cites their own paper or model card by arXiv id (checked by reading each
#: source: "DeepSeek-VL2 paper", "OpenAI gpt-oss model card", "Kimi-VL technical report", "Idefics3 paper").
OWN_PAPER = {"deepseek-vl2", "deepseek-vl2-small", "deepseek-vl2-tiny", "gpt-oss-20b", "gpt-oss-120b", "kimi-vl-a3b", "idefics3-8b"}
#: Years a date stamp may name (the catalog's models are 2020 or later; none is dated after 2026).
YEARS = range(20, 27)


def stamp_month(repo: str) -> str | None:
    """The YYYY-MM of a 4-digit date stamp in a repo id (YYMM or MMYY), or None."""
    for m in re.finditer(r"(?<![\d.])(\d{2})(\d{2})(?![\d.])", repo.split("/", 1)[-1]):
        a, b = int(m.group(1)), int(m.group(2))
        if a in YEARS and 1 <= b <= 12:
            return f"20{a:02d}-{b:02d}"
        if 1 <= a <= 12 and b in YEARS:
            return f"20{b:02d}-{a:02d}"
    return None


def similarity(file_stem: str, eid: str) -> tuple[bool, float]:
    """How closely a config file's name matches a catalog id (case and punctuation ignored): the id
    contained in the name first, then the similarity ratio."""
    from difflib import SequenceMatcher

    def norm(x: str) -> str:
        return re.sub(r"v(?=\d)", "", re.sub(r"[^a-z0-9]", "", x.lower()))

    return norm(eid) in norm(file_stem), SequenceMatcher(None, norm(file_stem), norm(eid)).ratio()


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def load_releases() -> dict[tuple[int, int], str]:
    rows = [r for r in RELEASES.read_text().splitlines() if r and not r.startswith("#")]
    out = {}
    for r in csv.DictReader(rows):
        major, minor, _ = (int(x) for x in r["version"].split("."))
        out[(major, minor)] = r["first_upload"]
    return out


def not_before(version: str, releases: dict[tuple[int, int], str]) -> tuple[str, str] | None:
    """(YYYY-MM-DD, the release it rests on) for a config written with transformers ``version``."""
    m = re.match(r"(\d+)\.(\d+)\.\d+(\.dev\d*)?", version)
    if not m:
        return None
    key = (int(m.group(1)), int(m.group(2)))
    if m.group(3):  # a development build of X.Y: after X.(Y-1).0
        earlier = sorted(k for k in releases if k < key)
        if not earlier:
            return None
        key = earlier[-1]
    day = releases.get(key)
    return (day, f"{key[0]}.{key[1]}.0") if day else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default="/work/shared/reference")
    a = ap.parse_args()
    ref = Path(a.reference)
    releases = load_releases()
    entries = {}
    for kind in ("llms", "vlms"):
        for p in sorted((REPO / "data" / kind).glob("*.yaml")):
            entries[p.stem] = (kind, yaml.safe_load(p.read_text()))
    found: dict[str, tuple[str, str]] = {}
    owned: set[str] = set()  # entries whose cited config is their own (its name contains the id)
    for eid, (_kind, d) in entries.items():
        cited = []
        for m in re.finditer(r"hf_configs/([a-z]+/[^ ,;)]+?\.json)", d.get("source", "")):
            f = ref / "hf_configs" / m.group(1)
            if not f.is_file():
                continue
            try:
                cfg = json.loads(f.read_text())
            except ValueError:
                continue
            v = cfg.get("transformers_version") or next(
                (sub.get("transformers_version") for k in ("text_config", "llm_config") if isinstance(sub := cfg.get(k), dict)), None
            )
            if v:
                stem = re.sub(r"(\.trimmed|\.nvidia-NVFP4|\.from_[^/]*)?\.json$", "", f.name)
                cited.append((similarity(stem, eid), str(v), m.group(1)))
        if cited:
            # its own config (the name contains the id: llama-3.3-70b cites 3.1's and its own), the earliest-written
            # of them (llava-1.5-7b: the original before the later -hf conversion); else the most similar name
            own = [c for c in cited if c[0][0]]
            _, v, name = min(own, key=lambda c: version_key(c[1])) if own else max(cited)
            found[eid] = (v, f"transformers_version in shared/reference/hf_configs/{name} (cited by the entry's source)")
            if own:
                owned.add(eid)
    used_by_vlm = {d.get("llm"): eid for eid, (k, d) in entries.items() if k == "vlms"}

    def gen(eid: str) -> str:
        m = re.match(r"([a-z]+-?[0-9.]*)", eid)
        return m.group(1) if m else eid

    def released(eid: str, d: dict) -> tuple[str, str] | None:
        repos = [str(x) for x in d.get("aliases") or [] if "/" in str(x)]
        stamps = [(s, r) for r in repos if (s := stamp_month(r))]
        own = stamp_month(eid)
        if own and not repos:
            return own, f"date stamp in the catalog id {eid}"
        if repos and len(stamps) == len(repos):
            s, r = min(stamps)
            return s, f"date stamp in the repo id {r} (every repo id of the entry is stamped; the earliest)"
        if eid in OWN_PAPER:
            m = re.search(r"arXiv[: ]?(\d{2})(\d{2})\.(\d{4,5})", d.get("source", ""))
            if m:
                return (
                    f"20{m.group(1)}-{m.group(2)}",
                    f"arXiv:{m.group(1)}{m.group(2)}.{m.group(3)}, the model's own paper cited by the entry's source"
                    " (month of its first version)",
                )
        return None

    versions: dict[str, tuple[str, str]] = {}
    for eid, (kind, d) in entries.items():
        # its own config; a VLM's language model (LLMs come first, so their fallbacks are known); another
        # config its source cites (InternVL3 cites InternVL2-8B's for the layout); a same-generation sibling
        if eid in owned or (eid in found and not (kind == "vlms" and d.get("llm") in versions)):
            versions[eid] = found[eid]
            continue
        sib = None
        if kind == "vlms" and d.get("llm") in versions:
            sib = d["llm"]
        else:
            sibs = [o for o in found if gen(o) == gen(eid) and entries[o][1].get("family") == d.get("family")]
            sib = sibs[0] if sibs else None
        if sib:
            how = "its language model" if sib == d.get("llm") else "same family and generation"
            base = versions[sib] if sib in versions else found[sib]
            versions[eid] = (base[0], f"as {sib} ({how}): {base[1]}")

    def bound(eid: str) -> tuple[str, str] | None:
        if eid not in versions:
            return None
        return not_before(versions[eid][0], releases)

    out: dict[str, dict] = {}
    for eid, (kind, d) in entries.items():
        rec: dict = {}
        rel = released(eid, d)
        if rel:
            rec["released"], rec["released_source"] = rel
        if eid in versions:
            rec["config_transformers"], rec["source"] = versions[eid]
            nb = bound(eid)
            if nb:
                llm = d.get("llm") if kind == "vlms" else None
                lb = bound(llm) if llm and llm in versions and llm != eid else None
                llm_rel = released(llm, entries[llm][1]) if llm in entries else None
                own = nb[0][:7]
                later = max(x for x in (own, lb[0][:7] if lb else None, llm_rel[0] if llm_rel else None) if x)
                rec["not_before_basis"] = f"transformers {nb[1]} first uploaded to PyPI {nb[0]}" + (
                    "" if later == own else f"; its language model {llm}: {later}"
                )
                rec["not_before"] = later
        if kind == "llms" and eid in used_by_vlm and re.search(r"-text$|-vl2", eid):
            rec["component"] = True
            rec["component_of"] = used_by_vlm[eid]
        out[eid] = rec
    sys.stdout.write(
        "# Generated by benchmarks/quality/generate.py (the rule is in its docstring): fit's quality order (vramcalc/fit.py).\n"
        "# released / released_source: month of release from a named source (a date stamp in the model's repo ids, or the\n"
        "#   arXiv id of its own paper cited by the entry). not_before (labelled fallback where no release date is sourced):\n"
        "#   the model is not older than the transformers release its published config.json was written with\n"
        "#   (config_transformers, read where `source` says), dated by its first PyPI upload\n"
        "#   (benchmarks/quality/transformers_releases.csv); a VLM is not older than its language model. A lower bound, not a\n"
        "#   release date. fit ranks by released, else not_before, combined with the size: quality_score = log2(LLM parameters\n"
        "#   in billions) + years since 2023-01 (one year newer counts as twice the parameters: a chosen trade-off, not a\n"
        "#   measurement). component: the language stack of a VLM, hidden from fit.\n"
    )
    yaml.safe_dump(out, sys.stdout, sort_keys=True, width=200)


if __name__ == "__main__":
    main()
