"""Property-based tests (hypothesis) over every CLI option (issue 14): whatever value an option gets,
the command ends with an answer (exit 0 / 1) or a one-line usage or input error (exit 2), never a
traceback or a hang, and a JSON answer holds only finite, sane numbers (no silent garbage).

Bounded (max_examples per command) so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import math
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vramcalc.cli import app  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], derandomize=True)

#: hostile spellings people (and scripts) pass: huge integers, nan/inf, units, unicode digits, long text
SPECIAL = [
    "nan",
    "inf",
    "-inf",
    "1e309",
    "1e300",
    "0",
    "-0",
    "-1",
    "",
    " ",
    "٣",
    "1_000",
    "0x10",
    "64GiB",
    "12 MiB",
    "9" * 5000,
    "9" * 310,
    "9223372036854775808",
    "18446744073709551616",
    "1024x768",
    "0x0",
    "-5x5",
    "1e5x1e5",
    "x",
    "×",
    "a" * 300,
    "../../etc/passwd",
    "-ngl",
    "--json",
    "q4_k_m",
    "Q8_0",
    "ddr5",
    "1.5",
    "3.0e2",
]
VALUE = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(-(10**6), 10**6).map(str),
    st.integers(2**31, 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda w, h: f"{w}x{h}", st.integers(-5, 10**6), st.integers(-5, 10**6)),
    st.text(max_size=12),
)
MODELS = ["llama-3.1-8b", "llava-7b", "qwen2-vl-7b", "clip-vit-l-14-336", "internvl2.5-8b", "gemma-3-4b", "nope"]
CHECK_OPTIONS = [
    "--ctx", "--images", "--image-size", "--batch", "--ubatch", "--gpu-layers", "--ram", "--ram-bandwidth",
    "--quant", "--vision-quant", "--dtype", "--kv-cache", "--runtime", "--offload", "--gpu",
]  # fmt: skip


def _no_garbage(obj, where="") -> None:
    """Every number in a JSON answer is finite and below 10^21 (bytes, tokens, seconds...)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _no_garbage(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _no_garbage(v, f"{where}[{i}]")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        assert math.isfinite(obj) and abs(obj) < 1e21, f"{where} = {obj}"


def run_cli(runner, argv: list[str], limit_s: float = 20.0):
    """Invoke the CLI; fail on a traceback, an unknown exit code, a slow answer or a garbage number."""
    t0 = time.monotonic()
    res = runner.invoke(app, argv)
    elapsed = time.monotonic() - t0
    exc = res.exception
    assert exc is None or isinstance(exc, SystemExit), f"traceback for {argv!r:.300}: {exc!r}"
    assert res.exit_code in (0, 1, 2), (argv, res.exit_code)
    assert "Traceback" not in res.output
    assert elapsed < limit_s, f"{argv!r:.200} took {elapsed:.1f} s"
    if res.exit_code == 2:
        assert "Error" in res.output or "Usage" in res.output, res.output[-300:]
    if res.exit_code == 0 and "--json" in argv:
        _no_garbage(json.loads(res.stdout))
    return res


@settings(max_examples=40, **SETTINGS)
@given(model=st.sampled_from(MODELS), opts=st.lists(st.tuples(st.sampled_from(CHECK_OPTIONS), VALUE), min_size=1, max_size=3))
def test_check_options(runner, model, opts):
    argv = ["check", model, "--gpu", "rtx3060", "--json"]
    for name, value in opts:
        argv += [name, value]
    run_cli(runner, argv)


@settings(max_examples=8, **SETTINGS)
@given(
    opts=st.lists(
        st.tuples(st.sampled_from(["--ctx", "--images", "--min-speed", "--limit", "--kind", "--runtime", "--gpu"]), VALUE),
        min_size=1,
        max_size=2,
    )
)
def test_fit_options(runner, opts):
    argv = ["fit", "--gpu", "rtx3060", "--json"]
    for name, value in opts:
        argv += [name, value]
    run_cli(runner, argv, limit_s=30)


@settings(max_examples=25, **SETTINGS)
@given(
    kind=st.sampled_from(["gpus", "llms", "vlms", "encoders", "nope"]),
    opts=st.lists(st.tuples(st.sampled_from(["--min-memory", "--vendor", "--family", "--query"]), VALUE), max_size=2),
)
def test_list_options(runner, kind, opts):
    argv = ["list", kind, "--json"]
    for name, value in opts:
        argv += [name, value]
    run_cli(runner, argv)


@settings(max_examples=30, **SETTINGS)
@given(query=VALUE)
def test_show_any_id(runner, query):
    run_cli(runner, ["show", query, "--json"])


@settings(max_examples=30, **SETTINGS)
@given(cmd=st.sampled_from(["import", "validate", "check"]), path=VALUE, prefix=st.sampled_from(["", "./", "/", "/dev/", "~/"]))
def test_path_arguments(runner, cmd, path, prefix):
    argv = [cmd, prefix + path] + (["--gpu", "rtx3060"] if cmd == "check" else [])
    run_cli(runner, argv)


@settings(max_examples=30, **SETTINGS)
@given(
    opts=st.lists(
        st.tuples(st.sampled_from(["--batch", "--image-size", "--markdown", "--encoder", "--dtype", "--device"]), VALUE),
        min_size=1,
        max_size=3,
    )
)
def test_probe_options_are_checked_before_measuring(runner, monkeypatch, opts):
    from vramcalc.errors import ProbeUnavailableError

    def stop(*a, **k):
        raise ProbeUnavailableError("stopped by the test before measuring")

    monkeypatch.setattr("vramcalc.probe.run.require_torch", stop)
    argv = ["probe"]
    for name, value in opts:
        argv += [name, value]
    res = run_cli(runner, argv)
    assert res.exit_code in (1, 2)
