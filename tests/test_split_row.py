"""``--split-mode row`` against llama.cpp's source at 0c1e57098 (issue 9).

Row split is refused, and these tests pin *why* to the source: at this commit no GPU backend vramcalc
knows can run it. The excerpts are copied verbatim into tests/fixtures/llamacpp_row_split_0c1e57098.txt
(path and line numbers in each block header), so a clean clone needs no llama.cpp checkout; re-copy
them when the oracle's llama.cpp moves, and these tests say which rule changed. Not run on a GPU:
there is no CUDA or SYCL device here, the rules are read from the source.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.cli import app
from vramcalc.errors import InputError
from vramcalc.estimate import Workload, estimate
from vramcalc.placement import _NO_SPLIT_BUFFER, row_split_refusal
from vramcalc.speed import BACKENDS

EXCERPTS = Path(__file__).parent / "fixtures" / "llamacpp_row_split_0c1e57098.txt"


def _blocks() -> dict[str, str]:
    """{path: text} of the excerpt file (one block per '=== path:first-last ===' header)."""
    out: dict[str, str] = {}
    path = None
    for line in EXCERPTS.read_text().splitlines():
        m = re.match(r"^=== (\S+):(\d+)-(\d+) ===$", line)
        if m:
            path = m.group(1)
            out.setdefault(path, "")
            continue
        if path is not None:
            out[path] += line + "\n"
    return out


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.fixture(scope="module")
def src():
    return _blocks()


def _proc_names(text: str, fn: str) -> set[str]:
    """The names a backend registry's get_proc_address answers (strcmp(name, "...") in function ``fn``)."""
    body = text[text.index(fn) :]
    body = body[: body.index("\n}\n")]
    return set(re.findall(r'strcmp\(name, "([a-z_]+)"\) == 0', body))


def test_which_backends_export_a_split_buffer_type(src):
    """src/llama-model.cpp make_gpu_buft_list at 0c1e57098:

        if (split_mode == LLAMA_SPLIT_MODE_ROW) {
            ... ggml_backend_reg_get_proc_address(reg, "ggml_backend_split_buffer_type");
            if (ggml_backend_split_buffer_type_fn) { ... } else {
                throw std::runtime_error(format("device %s does not support split buffers", ...));

    Of the backends vramcalc knows, only SYCL's registry answers that name; CUDA's (also ROCm's:
    ggml-hip/CMakeLists.txt globs "../ggml-cuda/*.cu") and Metal's answer others, Vulkan's registry
    has ``/* .get_proc_address = */ NULL``. The refusal table has exactly the others."""
    llama = src["src/llama-model.cpp"]
    assert '"ggml_backend_split_buffer_type"' in llama
    assert 'throw std::runtime_error(format("device %s does not support split buffers"' in llama
    split = "ggml_backend_split_buffer_type"
    exports = {
        "cuda": split in _proc_names(src["ggml/src/ggml-cuda/ggml-cuda.cu"], "ggml_backend_cuda_reg_get_proc_address"),
        "metal": split in _proc_names(src["ggml/src/ggml-metal/ggml-metal.cpp"], "ggml_backend_metal_get_proc_address"),
        "sycl": split in _proc_names(src["ggml/src/ggml-sycl/ggml-sycl.cpp"], "ggml_backend_sycl_reg_get_proc_address"),
        "vulkan": "/* .get_proc_address = */ ggml" in src["ggml/src/ggml-vulkan/ggml-vulkan.cpp"],
    }
    assert "/* .get_proc_address = */ NULL," in src["ggml/src/ggml-vulkan/ggml-vulkan.cpp"]
    assert 'file(GLOB   GGML_SOURCES_ROCM "../ggml-cuda/*.cu")' in src["ggml/src/ggml-hip/CMakeLists.txt"]
    exports["rocm"] = exports["cuda"]  # the same source file
    assert exports == {"cuda": False, "metal": False, "sycl": True, "vulkan": False, "rocm": False}
    assert set(_NO_SPLIT_BUFFER) == {b for b, has in exports.items() if not has}
    assert set(BACKENDS) - {"cpu"} == set(exports)


def test_the_gpu_lists_are_built_for_every_device(src):
    """src/llama-model.cpp load_tensors at 0c1e57098:

        for (const auto & dev : devices) {
            buft_list_t buft_list = make_gpu_buft_list(dev.dev, split_mode, tensor_split);

    every GPU device, whatever -ngl or the number of GPUs: one CUDA GPU is refused too."""
    assert (
        "for (const auto & dev : devices) {\n        buft_list_t buft_list = make_gpu_buft_list(dev.dev, split_mode, tensor_split);"
        in (src["src/llama-model.cpp"])
    )
    why = row_split_refusal(["cuda"])
    assert why is not None and "'device CUDA0 does not support split buffers'" in why


def test_sycl_devices_refuse_their_own_split_buffer(src):
    """ggml-sycl.cpp ggml_backend_sycl_device_supports_buft accepts only the plain SYCL buffer type:

        if (buft->iface.get_name != ggml_backend_sycl_buffer_type_get_name) {
            return false;

    the CPU device only host buffers (ggml-cpu.cpp: ``return ggml_backend_buft_is_host(buft) ||
    ggml_backend_cpu_is_extra_buffer_type(buft);``), so ggml-backend.cpp's scheduler finds no backend
    for a weight in the SYCL_Split buffer and aborts:

        GGML_ABORT("pre-allocated tensor (%s) in a buffer (%s) that cannot run the operation (%s)", ...)
    """
    sycl = src["ggml/src/ggml-sycl/ggml-sycl.cpp"]
    assert "if (buft->iface.get_name != ggml_backend_sycl_buffer_type_get_name) {\n        return false;" in sycl
    assert "return ggml_backend_buft_is_host(buft) || ggml_backend_cpu_is_extra_buffer_type(buft);" in src["ggml/src/ggml-cpu/ggml-cpu.cpp"]
    sched = src["ggml/src/ggml-backend.cpp"]
    assert "ggml_backend_supports_buft(sched->backends[i], buffer->buft) &&" in sched
    assert 'GGML_ABORT("pre-allocated tensor (%s) in a buffer (%s) that cannot run the operation (%s)"' in sched
    why = row_split_refusal(["sycl", "sycl"])
    assert why is not None and "SYCL" in why and "ggml_backend_sycl_device_supports_buft" in why


def test_cpu_only_build_ignores_the_split_mode(src):
    """common/arg.cpp at 0c1e57098 (-sm): ``Setting the split mode has no effect.`` when llama.cpp
    has no GPU offload: no GPU device, no GPU buffer list. vramcalc's CPU backend: no refusal."""
    assert "Setting the split mode has no effect." in src["common/arg.cpp"]
    assert row_split_refusal(["cpu"]) is None


@pytest.mark.parametrize(
    ("gpus", "workload", "device"),
    [
        (["rtx4090", "rtx3060"], {}, "CUDA0"),
        (["rtx4090"], {}, "CUDA0"),
        (["rtx4090", "rtx3060"], {"tensor_split": (3.0, 1.0)}, "CUDA0"),
        (["radeon-pro-w7800", "radeon-pro-w7800"], {}, "ROCm0"),
        (["m3-max-40c-64gb"], {}, "MTL0"),
        (["rtx4090", "rtx3060"], {"backend": "vulkan"}, "Vulkan0"),
        (["arc-b580", "rtx4090"], {}, "CUDA0"),  # CUDA fails at load, before SYCL's scheduler
        (["arc-b580", "arc-b580"], {}, None),
    ],
)
def test_row_split_is_refused_with_the_reason(cat, gpus, workload, device):
    """Each GPU backend's reason, from the source (the tests above); a one-line message."""
    m = cat.resolve_model("llama-3.1-8b")
    with pytest.raises(InputError) as e:
        estimate(m, [cat.resolve_gpu(g) for g in gpus], Workload(split_mode="row", **workload), cat)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--split-mode row: llama.cpp (0c1e57098)")
    if device is None:
        assert "on SYCL" in msg
    else:
        assert f"'device {device} does not support split buffers'" in msg


def test_cli_row_split_is_a_one_line_usage_error(runner):
    r = runner.invoke(app, ["check", "llama-3.1-70b", "--gpu", "rtx4090", "--gpu", "rtx3060", "--split-mode", "row"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert "does not support split buffers" in r.output


def test_cpu_backend_row_split_changes_nothing_and_is_in_the_command(runner):
    """With the CPU backend -sm row has no effect (arg.cpp, above): the same figures as without it,
    and the llama-server line carries ``-sm row`` as asked."""

    def run(*extra: str) -> dict:
        r = runner.invoke(app, ["check", "llama-3.1-8b", "--gpu", "rtx4090", "--backend", "cpu", "--json", *extra])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    row, layer = run("--split-mode", "row"), run()
    cmd = row["llama_server"]
    assert cmd[cmd.index("-sm") + 1] == "row"
    assert "-sm" not in layer["llama_server"]
    assert row["memory"] == layer["memory"] and row["verdict"] == layer["verdict"]
