"""GGUF weight sizes against real published files (shared/calibration/gguf_sizes.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vramcalc import runtimes
from vramcalc.catalog import load_catalog
from vramcalc.quant import GGML_TYPES, ggml_type_bytes, normalize_gguf_type, normalize_torch_format
from vramcalc.units import GiB

CAL = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration" / "gguf_sizes.csv"  # copied from shared/calibration
# calibration model -> catalog LLM with the same tensor shapes
MODEL_MAP = {"llama-2-7b": "llama-2-7b", "llama-2-13b-chat": "llama-2-13b", "mistral-7b-v0.1": "mistral-7b-instruct-v0.2"}
# TheBloke's files (Sep-Oct 2023) were made before llama.cpp's 2024 rework of the Q2_K and Q3_K_M
# mixtures (ffn_down/attn_output/attn_v now take smaller types); the current rules give smaller files.
OLD_MIXTURES = {"Q2_K", "Q3_K_M"}


def _rows():
    with CAL.open() as f:
        for r in csv.DictReader(f):
            if r["unit"] == "GB" and r["model"] in MODEL_MAP:
                yield pytest.param(r, id=f"{r['model']}-{r['quant']}")


ROWS = list(_rows())


def test_every_published_file_is_compared():
    # 3 models x 12 quantizations (TheBloke's Q2_K .. Q8_0): a CSV or filter change that lost rows fails here
    assert len(ROWS) == 36
    assert {r.values[0]["quant"] for r in ROWS} >= {"Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"}


@pytest.mark.parametrize("row", ROWS)
def test_gguf_file_size_matches_published(row):
    """Weights (tensor data) vs the published file size in GB (10^9); the file adds metadata and
    the tokenizer (< 1 MB) and the card rounds to 10 MB. Source: the `source` column of the row
    (TheBloke/Llama-2-7B-GGUF, Llama-2-13B-chat-GGUF, Mistral-7B-v0.1-GGUF model cards)."""
    llm = load_catalog().llm(MODEL_MAP[row["model"]])
    got = runtimes.get("llama.cpp").llm_weights(llm, row["quant"]).bytes / 1e9
    published = float(row["size_bytes_or_gb"])
    if row["quant"] in OLD_MIXTURES:
        assert 0.85 * published < got < published, (got, published)
    else:
        assert got == pytest.approx(published, rel=0.01), (got, published)


def test_llama2_7b_q4_k_m_matches_llama_cpp_print():
    """llama.cpp prints `model size = 3.80 GiB (4.84 BPW)` for llama-2-7b.Q4_K_M.gguf (gguf_sizes.csv
    last row; issue 2)."""
    wb = runtimes.get("llama.cpp").llm_weights(load_catalog().llm("llama-2-7b"), "Q4_K_M")
    assert round(wb.bytes / GiB, 2) == 3.80
    assert round(wb.bits_per_weight, 2) == 4.84


@pytest.mark.parametrize(
    ("quant", "cuda_mib", "host_mib"),
    [("F16", 12603.02, 250.0), ("Q8_0", 6695.84, 132.81), ("Q4_0", 3577.56, 70.31), ("Q4_1", 3963.56, 78.12)],
)
def test_llama7b_model_buffers_match_llama_cpp_log(quant, cuda_mib, host_mib):
    """`CUDA0 model buffer size` and the host part (token embeddings) printed by llama.cpp build 2459
    for open-llama-7b-v2 (LLaMA-7B shapes, vocab 32000) on a V100: shared/calibration/llamacpp_buffers.csv."""
    wb = runtimes.get("llama.cpp").llm_weights(load_catalog().llm("llama-2-7b"), quant)
    assert wb.host_bytes / 2**20 == pytest.approx(host_mib, abs=0.01)
    assert (wb.bytes - wb.host_bytes) / 2**20 == pytest.approx(cuda_mib, rel=0.001)


def test_llama2_13b_q5_k_m_model_buffer():
    """Llama-2-13B Q5_K_M: `model size = 8.60 GiB (5.67 BPW)`, CUDA buffer 8694.21 MiB + 107.42 MiB
    on the host (shared/calibration/llamacpp_buffers.csv, A100 80GB PCIe row)."""
    wb = runtimes.get("llama.cpp").llm_weights(load_catalog().llm("llama-2-13b"), "Q5_K_M")
    assert wb.host_bytes / 2**20 == pytest.approx(107.42, abs=0.01)
    assert (wb.bytes - wb.host_bytes) / 2**20 == pytest.approx(8694.21, rel=0.002)
    assert round(wb.bits_per_weight, 2) == pytest.approx(5.67, abs=0.01)


def test_block_table_equals_the_gguf_package():
    """Every GGML type vramcalc knows has the block layout of the gguf package's GGML_QUANT_SIZES
    (gguf-py/gguf/constants.py, maintained with ggml's type_traits: (block size, type size))."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    from gguf_fixtures import BLOCKS

    ours = {name: (block, size) for name, (size, block) in GGML_TYPES.items()}
    assert ours == {name: tuple(GGML_QUANT_SIZES[GGMLQuantizationType[name]]) for name in ours}
    # the types llama.cpp's quantization mixtures use are all there
    assert {"F16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K", "IQ4_XS", "MXFP4"} <= set(ours)
    # and the test fixtures' hand-written table (tests/gguf_fixtures.py) agrees too
    assert {name: tuple(GGML_QUANT_SIZES[GGMLQuantizationType[name]]) for name in BLOCKS} == BLOCKS


def test_block_layouts():
    """Q4_K: 144 bytes per 256 weights, Q8_0: 34 per 32 (field.md, ggml type_traits)."""
    assert GGML_TYPES["Q4_K"] == (144, 256) and GGML_TYPES["Q8_0"] == (34, 32)
    assert ggml_type_bytes("Q4_K", 4096 * 4096) == 4096 * 4096 // 256 * 144
    assert ggml_type_bytes("Q8_0", 33) == 2 * 34  # a partial block still takes a whole block


def test_precision_names():
    assert normalize_gguf_type("q4_k_m") == "Q4_K_M"
    assert normalize_gguf_type("fp16") == "F16"
    assert normalize_torch_format("NF4") == "nf4"
    from vramcalc.errors import InputError

    with pytest.raises(InputError, match=r"Unknown llama\.cpp quantization"):
        normalize_gguf_type("Q9_X")
