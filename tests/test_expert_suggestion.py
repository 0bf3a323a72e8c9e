"""A suggestion under a user's expert placement (--cpu-moe, --n-cpu-moe) keeps that placement (issue 9, section 3).

A suggestion's flags are added to the user's command, so its figure must be what the combined command places on the
GPU. Before, the suggestion search measured each change with every tensor on the GPU: `check qwen3-30b-a3b --gpu
rtx3060 --cpu-moe` (1.88 GiB on the GPU, every layer there, the experts in RAM as asked) suggested `--quant Q2_K`
"-> 11.50 GiB (tight)", the figure of Q2_K *without* --cpu-moe; with --cpu-moe Q2_K puts 1.73 GiB on the GPU.
"""

from __future__ import annotations

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.estimate import Workload, estimate

GiB = 2**30


@pytest.fixture(scope="module")
def cat():  # noqa: ANN201
    return load_catalog(include_user=False)


def _on_gpu(e) -> int:  # noqa: ANN001
    return sum(d.total_bytes for d in e.offload.gpus)


def test_no_suggestion_when_it_runs_as_placed(cat):
    """Every layer on the GPU, the experts in RAM as asked, the GPU not tight: there is nothing to change."""
    m, g = cat.resolve_model("qwen3-30b-a3b"), cat.resolve_gpu("rtx3060")
    e = estimate(m, g, Workload(cpu_moe=True), cat)
    assert e.offload.gpu_layers == e.offload.total_layers and e.offload.cpu_moved_bytes > 10 * GiB
    assert e.verdict == "offload" and e.suggestion is None


@pytest.mark.parametrize(
    ("model", "gpu", "workload", "applied"),
    [
        # 27/49 layers on the GPU at Q4_K_M with the experts of 10 layers in RAM: Q2_K keeps all 49 there
        ("qwen3-30b-a3b", "rtx3060", dict(n_cpu_moe=10), dict(quant="Q2_K")),
        # 5/37 layers: a q8_0 KV cache and no display keep all 37 with the experts of 30 in RAM
        ("gpt-oss-120b", "rtx3060", dict(n_cpu_moe=30, ram_bytes=96 * GiB), dict(kv_cache="q8_0", headless=True)),
    ],
)
def test_suggestion_figure_is_what_its_flags_give_with_the_users_experts(cat, model, gpu, workload, applied):
    m, g = cat.resolve_model(model), cat.resolve_gpu(gpu)
    e = estimate(m, g, Workload(**workload), cat)
    assert e.verdict == "offload" and e.offload.gpu_layers < e.offload.total_layers
    s = e.suggestion
    assert s is not None
    for key, value in applied.items():  # the suggestion is the change this case names
        flag = {"quant": "--quant", "kv_cache": "--kv-cache", "headless": "--headless"}[key]
        assert flag in s.flags and (value is True or s.flags[s.flags.index(flag) + 1] == value)
    after = estimate(m, g, Workload(**workload, **applied), cat)
    assert after.offload.n_cpu_moe == workload["n_cpu_moe"] and after.offload.gpu_layers == after.offload.total_layers
    assert s.total_bytes == _on_gpu(after)
    assert s.verdict in ("fits", "tight")
