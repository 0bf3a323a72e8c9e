"""Catalog 2026, second round (issue 15): entries and checks added from sources the first round missed.

- EVA02-CLIP B/16 and E/14+: widths from timm 1.0.31 timm/models/eva.py (eva02_base_patch16_clip_224,
  eva02_enormous_patch14_clip_224; the models open_clip's EVA02-B-16.json / EVA02-E-14-plus.json name),
  pinned to github:mlfoundations/open_clip@89fb801f1e60:docs/model_profile.csv image_mparams (86.26M,
  4350.56M) as quoted in shared/reference/hf_configs/encoders/SOURCES.csv.
- Gemma 4: the checkpoint's extra vocab x hidden tensor, seen in a second, independent count
  (model_params.csv rows gemma-4-26B-A4B-it / gemma-4-31B-it: HF safetensors totals scraped by llmfit).
"""

from __future__ import annotations

import pytest

from vramcalc.catalog import load_catalog
from vramcalc.params import count_params

CAT = load_catalog(include_user=False)


@pytest.mark.parametrize(
    ("eid", "embed_dim", "image_mparams"),
    [
        ("eva02-clip-b-16", 512, 86.26),  # model_profile.csv [EVA02-B-16]
        ("eva02-clip-e-14-plus", 1024, 4350.56),  # model_profile.csv [EVA02-E-14-plus]
        ("eva02-clip-l-14", 768, 304.11),  # the existing L/14, same rule
    ],
)
def test_eva02_towers_match_open_clip_profile(eid, embed_dim, image_mparams):
    """Tower + the CLIP head (width x embed_dim with bias, as open_clip sizes the timm head) = the published
    image parameters, to the 2 decimals (in millions) they are published with."""
    enc = CAT.encoder(eid)
    head = enc.hidden_size * embed_dim + embed_dim
    assert round((count_params(enc, CAT).total + head) / 1e6, 2) == image_mparams


def test_eva02_names_resolve():
    for alias, eid in (("EVA02-B-16", "eva02-clip-b-16"), ("EVA02-E-14-plus", "eva02-clip-e-14-plus")):
        assert CAT.resolve(["encoders"], alias, "encoder").id == eid


@pytest.mark.parametrize(
    ("eid", "hf_total", "vocab", "hidden"),
    [
        ("gemma-4-26b-a4b", 26544131376, 262144, 2816),  # model_params.csv gemma-4-26B-A4B-it (llmfit HF total)
        ("gemma-4-31b", 32682372656, 262144, 5376),  # model_params.csv gemma-4-31B-it (llmfit HF total)
    ],
)
def test_gemma4_extra_embedding_sized_tensor_in_both_counts(eid, hf_total, vocab, hidden):
    """The HF safetensors totals exceed the derived (tied-embedding) count by exactly vocab x hidden, the same
    gap as the Keras-Hub counts: the checkpoint holds one more embedding-sized table. Whether llama.cpp loads it
    is not shown by any file here (no Gemma 4 row in gguf_sizes.csv or llamacpp_buffers.csv), so it is not counted."""
    assert hf_total - count_params(CAT.get("vlms", eid), CAT).total == vocab * hidden


@pytest.mark.parametrize(
    ("alias", "kind", "eid"),
    [
        # GGUF repos named by shared/calibration/gguf_sizes.csv and mtmd_vision.csv rows
        ("TheBloke/Llama-2-7B-GGUF", "llms", "llama-2-7b"),
        ("TheBloke/Llama-2-13B-chat-GGUF", "llms", "llama-2-13b"),
        ("TheBloke/Mistral-7B-v0.1-GGUF", "llms", "mistral-7b-v0.1"),
        ("openbmb/MiniCPM-V-2_6-gguf", "vlms", "minicpm-v-2.6"),
    ],
)
def test_gguf_repo_ids_from_calibration_rows_resolve(alias, kind, eid):
    assert CAT.resolve([kind], alias, "model").id == eid


def test_minicpm_v_4_5_total_is_the_published_count_exactly():
    """model_params.csv row MiniCPM-V-4_5 (HF safetensors total via llmfit): 8,695,895,280 = the Qwen3-8B-shaped LLM at
    vocab 151,748 + MiniCPM-V 2.6's SigLIP tower + its 64-query resampler at width 4096, to the parameter."""
    c = count_params(CAT.get("vlms", "minicpm-v-4.5"), CAT)
    assert c.total == 8695895280
    # the parts the count pins: the tower is 2.6's, the resampler grows with the LLM width (3584 -> 4096)
    assert c.vision == count_params(CAT.get("vlms", "minicpm-v-2.6"), CAT).vision
    assert CAT.resolve(["vlms"], "openbmb/MiniCPM-V-4_5", "model").id == "minicpm-v-4.5"
