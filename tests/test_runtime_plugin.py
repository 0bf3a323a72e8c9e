"""A runtime is a plugin: one registered inside this test, with its own weights/KV/overhead rules,
is used by `vramcalc check` with no change outside the test."""

from __future__ import annotations

import json

import pytest

from vramcalc import runtimes
from vramcalc.params import llm_tensors
from vramcalc.quant import WeightBytes
from vramcalc.runtimes.transformers import Transformers
from vramcalc.units import GiB, MiB


class ToyRuntime(Transformers):
    """A made-up runtime: every weight 1 byte, KV in blocks of 16 cells, 1 GiB context per GPU,
    2 GiB margin, no compute buffer, layers from system RAM allowed."""

    name = "toy"
    kv_pad = 16
    offloads_layers = True
    margin_bytes = 2 * GiB
    compute_label = "scratch"
    margin_note = "the toy runtime keeps free"

    def normalize_precision(self, name: str) -> str:
        return "int8"

    def default_precision(self, model, llm):  # noqa: ANN001, ANN201
        return "int8"

    def precisions(self, llm):  # noqa: ANN001, ANN201
        return ["int8"]

    def llm_weights(self, llm, precision):  # noqa: ANN001, ANN201
        n = sum(t.numel for t in llm_tensors(llm))
        return WeightBytes("int8", bytes=n, params=n, by_type={"I8": n})

    def tensor_bytes(self, llm, precision):  # noqa: ANN001, ANN201
        return tuple(t.numel for t in llm_tensors(llm))

    def llm_compute_bytes(self, llm, context, cells, w):  # noqa: ANN001, ANN201
        return 0

    def overhead_bytes(self, gpu):  # noqa: ANN001, ANN201
        return 1 * GiB


@pytest.fixture
def toy():
    rt = runtimes.register(ToyRuntime())
    yield rt
    runtimes.unregister("toy")


def test_check_uses_a_runtime_registered_in_the_test(toy, runner):
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "llama-2-7b", "--gpu", "rtx3060", "--runtime", "toy", "--ctx", "1000", "--json"])
    assert r.exit_code == 0, r.output
    est = json.loads(r.stdout)
    m = est["memory"]
    # Llama-2-7B has 6,738,415,616 parameters (published count, test_catalog_llms): 1 byte each
    assert est["inputs"]["runtime"] == "toy" and est["inputs"]["quant"] == "int8"
    assert m["weights_bytes"]["llm"] == 6_738_415_616
    # KV: 1000 tokens padded to 1008 cells (blocks of 16); 32 layers x 2 x 4096 x f16 per cell
    assert m["kv_cache_cells"] == 1008
    assert m["kv_cache_bytes"] == 1008 * 32 * 2 * 4096 * 2
    assert m["compute_bytes"]["llm"] == 0 and m["overhead_bytes"] == 1 * GiB
    total = 6_738_415_616 + 1008 * 32 * 2 * 4096 * 2 + 1 * GiB
    assert m["total_bytes"] == total
    # the RTX 3060 12 GB less the 512 MiB display reserve; 'fits' needs the toy runtime's 2 GiB margin
    headroom = 12 * GiB - 512 * MiB - total
    assert est["headroom_bytes"] == headroom
    assert headroom >= 2 * GiB and est["verdict"] == "fits"
    table = runner.invoke(app, ["check", "llama-2-7b", "--gpu", "rtx3060", "--runtime", "toy", "--ctx", "1000"])
    assert table.exit_code == 0 and "LLM scratch" in table.stdout


def test_an_unknown_runtime_is_a_usage_error(runner):
    from vramcalc.cli import app

    r = runner.invoke(app, ["check", "llama-2-7b", "--gpu", "rtx3060", "--runtime", "toy"])
    assert r.exit_code == 2 and "Unknown runtime 'toy'" in r.output and "Traceback" not in r.output
