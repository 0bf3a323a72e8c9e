"""llama.cpp (and ollama, LM Studio on top of it): how it accounts memory.

Per device ``self = model + context + compute`` (common_memory_breakdown_print), with the token
embedding kept in host memory, the KV cache in cells padded to 256, the compute buffer reserved for
a full micro-batch (n_ubatch 512), and the mmproj (vision encoder + projector) with its own compute
buffer at the image size. Layers that do not fit run from system RAM (-ngl).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from vramcalc.errors import InputError
from vramcalc.memo import spec_memo
from vramcalc.params import llm_tensors
from vramcalc.quant import (
    GGML_TYPES,
    GGUF_FILE_TYPES,
    GGUF_QUALITY_ORDER,
    QuantContext,
    WeightBytes,
    ggml_type_bytes,
    gguf_typed_tensors,
    mmproj_weight_bytes,
    normalize_gguf_type,
)
from vramcalc.schema import VlmSpec
from vramcalc.units import MiB

if TYPE_CHECKING:
    from vramcalc.params import Tensor
    from vramcalc.results import Inputs, Offload, Workload
    from vramcalc.schema import GpuSpec, LlmSpec, VisionEncoderSpec

#: ollama keeps this much per GPU for the CUDA/ROCm runtime (context, cuBLAS handles) on top of the
#: model: ``cudaMinimumMemory = 457 * format.MebiByte`` (ollama discover/gpu.go; field.md).
GUESS_CUDA_RUNTIME_BYTES = 457 * MiB
#: ollama's Metal minimum (field.md: 512 MiB Metal minimum).
GUESS_METAL_RUNTIME_BYTES = 512 * MiB
#: llama.cpp ``--fit`` leaves this much free by default (field.md: fit target 1024 MiB); below
#: it we call the result ``tight``.
FIT_MARGIN_BYTES = 1024 * MiB
#: llama.cpp pads the KV cache to 256 cells (llama-context: n_ctx = GGML_PAD(n_ctx, 256)).
KV_PAD = 256
#: The mmproj (clip) weight types llama.cpp's converter writes, and the PyTorch spellings of them.
MMPROJ_TYPES = ("f32", "f16", "bf16", "q8_0")
MMPROJ_ALIASES = {"fp16": "f16", "float16": "f16", "fp32": "f32", "float32": "f32", "bfloat16": "bf16"}


def quant_context(llm: LlmSpec, ftype: str) -> QuantContext:
    """What llama.cpp's quantizer (llama_tensor_get_type) looks at besides the tensor itself."""
    return QuantContext(
        ftype=ftype,
        n_layers=llm.num_layers,
        n_gqa=llm.num_heads // llm.num_kv_heads,
        n_expert=llm.moe.num_experts if llm.moe else 0,
        is_70b=llm.num_layers == 80 and llm.family.startswith("llama"),
        has_output=not llm.tied_embeddings,
        mla_kv_b=(llm.mla.qk_nope_head_dim, llm.mla.v_head_dim) if llm.mla else (0, 0),
        gdn_value_dim=llm.linear_attention.num_value_heads * llm.linear_attention.value_head_dim if llm.linear_attention else 0,
    )


#: position ids per token of an M-RoPE language model (llama-hparams.cpp ``n_pos_per_embd``: 4 for the MROPE / IMROPE
#: rope types of Qwen2-VL, Qwen2.5-VL and Qwen3-VL, whose projector vramcalc calls a ``merger``)
MROPE_POSITIONS = 4


def simulated_compute_bytes(
    llm: LlmSpec,
    n_ctx: int,
    n_ubatch: int,
    flash_attention: bool,
    type_k: str = "f16",
    type_v: str = "f16",
    n_deepstack: int = 0,
    n_pos: int = 1,
    swa_cells: int | None = None,
) -> int | None:
    """The CPU compute buffer from llama.cpp's own allocator run over its own graph (ggml_alloc.py, a port of
    ggml-alloc.c, over llamacpp_graph.py, the graph of the ported model files), or None where the graph is not
    ported. Exact (to the 0.01 MiB rounding of the log) on every recorded run of a ported family: 335 runs of
    16 architectures (tests/test_ggml_alloc.py). ``n_ctx``: KV cells per stream; ``swa_cells``: a sliding-window
    layer's (default: one stream's, ``kv_layout``); ``n_deepstack`` / ``n_pos``: a Qwen-VL language model's
    DeepStack input and M-RoPE positions (:func:`deepstack_input_bytes`)."""
    from vramcalc.runtimes import llamacpp_graph
    from vramcalc.runtimes.ggml_alloc import TENSOR_ALIGNMENT  # the CPU buffer type's, as the recorded runs

    window = llamacpp_window(llm)
    if not llamacpp_graph.supported(llm, window):
        return None
    u = min(n_ubatch, n_ctx)
    if window and swa_cells is None:  # one stream's sliding-window cells (kv_layout, not unified)
        swa_cells = _pad(min(n_ctx, window + u), KV_PAD)
    fa = flash_attention
    return llamacpp_graph.simulate(llm, n_ctx, u, fa, n_deepstack, type_k, type_v, n_pos, swa_cells, TENSOR_ALIGNMENT)


def compute_buffer_bytes(
    llm: LlmSpec,
    n_ctx: int,
    n_ubatch: int,
    flash_attention: bool,
    n_seq: int = 1,
    backend: str = "cuda",
    type_k: str = "f16",
    type_v: str = "f16",
    swa_cells: int | None = None,
) -> int:
    """llama.cpp's LLM compute buffer (``CUDA0 compute buffer size``) for ``n_ctx`` KV cells per stream
    (``swa_cells``: a sliding-window layer's cells per stream, :class:`KvLayout`).

    Where llamacpp_graph.py ports the model's graph (full-attention Llama / Mistral / Mixtral / Qwen2 / Qwen3 /
    Qwen3-MoE / Phi-3 decoders and gpt-oss), the buffer is :func:`simulated_compute_bytes`: ggml-alloc's best fit replayed over the
    graph, which also places the final hidden state and the logits where llama.cpp does (the gaps the live sets
    below could not express: the 14 LLM runs they missed are exact). Streams (``n_seq``) do not change the bytes
    of any tensor (each stream's rows are a slice of the same u tokens). ``type_k`` / ``type_v``: a quantized
    cache adds llama.cpp's Hadamard rotation tensors. Otherwise the live-set model below applies.

    ggml-alloc reserves the worst-case graph (a full micro-batch of ``u`` tokens against the full
    cache; llama-context.cpp ``sched_reserve``: ``n_outputs = min(n_ubatch, n_outputs_max)``, i.e. logits
    for every token) and reuses memory between ops, so the buffer is the largest of three live sets
    (f32 activations, ``act`` = u x n_embd x 4 bytes):

    - output: the logits (u x n_vocab) + the final hidden state, and below it whatever gap the last
      layer left (fused gate_up with FA: the mask + 2 hidden states; MLA: 4 hidden states);
    - attention without flash attention: the KQ scores (one stream's cells x u x n_head: with
      non-unified sequences each stream's scores cover its own cells) + the f32 KQ mask (cells x u) +
      the V indices (no FA: u x n_embd_v_gqa int64) + q + hidden states; MLA (absorbed): the per-head
      q, q_pe, absorbed q and Qcur, with or without flash attention;
    - FFN: up, gate and their product (u x n_ff each; a fused gate_up tensor, Phi-3, is twice as wide
      and its swiglu reads it whole: 3 widths) + the KQ mask, alive through every layer (f16 with flash
      attention, f32 without) + 3 hidden states.

    Each term names the live set it comes from: ggml-alloc's own debug output (GGML_ALLOCATOR_DEBUG,
    benchmarks/llamacpp_oracle/liveset.py) of the recorded runs at its peak.
    A CPU build also keeps the input embedding rows (one more act) in this buffer; CUDA moves them to a
    CUDA_Host buffer (``backend="cpu"`` adds it back). Fitted to llama.cpp 0c1e57098 runs recorded in
    tests/fixtures/llamacpp_oracle/runs.csv (Llama-2/Mistral/Phi-3: FFN set; Qwen/Llama-3/Gemma: output
    set; 16k contexts without flash attention: the KQ set); the published Llama-3-8B CUDA figure 258.5 MiB
    (512 x 128256 x 4 + 512 x 4096 x 4) is the output set.
    """
    u = min(n_ubatch, n_ctx)
    act = u * llm.hidden_size * 4
    sim = simulated_compute_bytes(llm, n_ctx, n_ubatch, flash_attention, type_k, type_v, swa_cells=swa_cells)
    if sim is not None:
        return sim - (0 if backend == "cpu" else act)
    q = u * llm.num_heads * llm.head_dim_ * 4
    kv = 2 * u * llm.num_kv_heads * llm.head_dim_ * 4
    output = u * llm.vocab_size * 4 + act
    mask = n_ctx * u * (2 if flash_attention else 4)
    # Without flash attention the V cache is stored transposed and llm_graph_input_attn_kv's
    # ``self_v_idxs`` (llama-kv-cache.cpp build_input_v_idxs) holds one int64 index per stored element,
    # u x n_embd_v_gqa x 8 bytes, alive from the first layer to the last (seen in ggml-alloc's live set,
    # GGML_ALLOCATOR_DEBUG: 16 MiB for Llama-2 at u=512, 12 MiB for Phi-3)
    v_idxs = 0 if flash_attention else u * llm.num_kv_heads * llm.head_dim_ * 8
    if flash_attention:
        attn = q + kv + mask + 3 * act  # no KQ matrix is materialized
    else:
        # build_attn_mha: the f32 KQ scores (kq-0) above the mask, v_idxs, the layer input (embd) and the
        # roped Q (Qcur-0); with separate q/k/v projections a gap of two hidden states lies between embd
        # and Qcur (ggml-alloc live sets: Llama-2 at 1024 cells 122.01 MiB, Mistral -np 2 176.01 MiB); a
        # fused qkv projection (Phi-3) leaves none (96.01 MiB)
        attn = n_ctx * u * llm.num_heads * 4 + mask + v_idxs + q + (0 if llm.fused_qkv else 2 * act) + act
    if llm.mla:
        # MLA, absorbed attention (src/models/deepseek2.cpp at 0c1e57098): per head and token, q (nope + rope),
        # its roped q_pe, q_nope_absorbed = wk_b x q_nope (kv_lora_rank) and Qcur = concat(absorbed, q_pe)
        # (kv_lora_rank + rope) are f32 tensors; they stay allocated together because each is too large for
        # the gap the previous one leaves (ggml-alloc live set, DeepSeek-V3 attention at 2048 wide, u=512, FA:
        # inp_embd, mask, norm, q_pe 16, ffn_out, [q 48 freed], q_nope_absorbed 128, Qcur 144 = 360.01 MiB;
        # without FA the KQ scores above them and the f16 V view copied out of the K cache, v_cont, cells x
        # kv_lora_rank: 1388.01 MiB at 4096 cells)
        m = llm.mla
        head = u * llm.num_heads * 4
        q_mla = head * (2 * m.qk_rope_head_dim + m.qk_nope_head_dim + 2 * m.kv_lora_rank + m.qk_rope_head_dim)
        kq_mla = n_ctx * u * llm.num_heads * 4
        if flash_attention:
            attn = q_mla + mask + 4 * act
        elif kq_mla <= head * m.kv_lora_rank:
            # the KQ scores fit in the block of the absorbed q, freed once Qcur is built: no growth above
            # (live set at 512 cells without FA: embd, norm, q_nope_absorbed, q_pe, Qcur = 352.01 MiB)
            attn = q_mla + mask + 3 * act
        else:
            attn = n_ctx * u * llm.num_heads * 4 + q_mla + mask + n_ctx * m.kv_lora_rank * 2 + 3 * act
        # the final hidden state (ffn_moe_out of the last layer) sits above a gap of 4 hidden states, the
        # logits above it (DeepSeek-V2-Lite, 27 layers: inp_embd, ffn_moe_out-26 at 20.02 MiB, result_output;
        # 224.02 MiB at u=512). Observed on that model only: DeepSeek-V3's attention set is larger anyway
        output += 4 * act
    if llm.moe:
        ff = llm.moe.expert_intermediate_size * llm.moe.experts_per_token
    else:
        ff = llm.intermediate_size
    if llm.fused_gate_up:
        # llama-graph.cpp build_ffn with a fused up_gate (Phi-3, LLM_FFN_SWIGLU): ffn_up is 2 x n_ff wide
        # and ggml_swiglu reads both halves of it, so the live set is up (2 n_ff) + swiglu (n_ff) and one
        # hidden state fewer than the separate gate/up case (ggml-alloc live set at the peak: node, ffn_up-0,
        # ffn_swiglu-0; Phi-3 at 16k with FA: 82.01 MiB)
        ffn = u * ff * 4 * 3 + mask + v_idxs + 2 * act
        if flash_attention:
            # the last layer's ffn_down output (the final hidden state) is placed by ggml-alloc's best fit at
            # the bottom of the freed ffn_up block, so the logits go above mask + 2 hidden states + it
            # (live set at the output: inp_embd, node_110 at 22.01 MiB, result_output; Phi-3 at 4096 with FA)
            output += mask + 2 * act
    else:
        widths = 3 if llm.gated_mlp else 2  # gate, up, their product (ggml-alloc: ffn_gate-0, ffn_up-0, ffn_swiglu-0)
        ffn = u * ff * 4 * widths + mask + 3 * act
    return max(output, attn, ffn) + (act if backend == "cpu" else 0)


#: The clip graph's live sets, per encoder family, in hidden-size f32 tensors (``act`` = patches x hidden x 4 bytes)
#: beside the dominant tensor of each phase: (attention phase without flash attention, beside the f32 KQ scores;
#: FFN phase, beside the FFN up (and gate) outputs; whether the graph's inputs -- the f32 image and the position
#: ids -- are still allocated at the peak). Read off the llama.cpp 0c1e57098 CPU runs recorded in
#: tests/fixtures/llamacpp_oracle/runs.csv, where each family's buffer is exactly that at every image size
#: (tests/test_qwen3vl.py pins each): LLaVA-1.5 (clip.cpp llava graph) KQ + 5 act + image, Gemma 3 (siglip graph)
#: KQ + 6 act / FFN up + 3 act, Qwen2-VL KQ + 5 act / up + 2 act + image, Qwen3-VL-2B KQ + 10 act / up + 5 act +
#: image, of which 1.5 act are the DeepStack features (three N/4 x 2048 f32 merger outputs concatenated into one
#: tensor that lives to the end of the graph, counted per VLM: ``deepstack``), so the tower's own set is 8.5 / 3.5
#: (its qkv is one fused 3-act tensor). Qwen2.5-VL is Qwen2-VL's graph plus its f32 window mask (N x N, an input
#: alive through every layer); with flash attention see ``clip_compute_bytes``. LLaVA's FFN phase is never its
#: peak (the projector is); its blocks are laid out as SigLIP's, whose 3 it takes.
CLIP_LIVE: dict[str, tuple[float, float, bool]] = {
    "clip": (5, 3, True),
    "siglip": (6, 3, False),
    "qwen2_vit": (5, 2, True),
    "qwen25_vit": (5, 2, True),
    "qwen3_vit": (8.5, 3.5, True),
}
#: families without a recorded run: the first fit (field.md, gguf-parser-go#44: Gemma 3 and Qwen2-VL clip buffers)
CLIP_LIVE_DEFAULT = (6.0, 2.75, False)
#: bytes of position ids per patch: M-RoPE graphs (Qwen-VL) feed 4 int32 per patch, the others 1 (plus LLaVA's patch ids)
_POS_BYTES = {"qwen2_vit": 16, "qwen25_vit": 16, "qwen3_vit": 16}


def clip_compute_bytes(
    enc: VisionEncoderSpec,
    patches: int,
    images: int,
    flash_attention: bool,
    projector: tuple[int, int] | None = None,
    deepstack: tuple[int, int, int] | None = None,
    llm_hidden: int | None = None,
) -> int:
    """llama.cpp mtmd/clip compute buffer for encoding ``images`` crops of ``patches`` tokens each.

    ggml-alloc reserves the largest live set of the clip graph (tools/mtmd/models/<family>.cpp), which is one of:

    - attention without flash attention: the f32 KQ scores (heads x N^2) + the family's live hidden-size tensors;
    - the FFN: its up (and gate) output (N x intermediate f32 each) + the family's live hidden-size tensors;
    - an MLP projector (LLaVA; ``projector`` = (tokens, the widths of its two layers' outputs added), see
      :func:`clip_projector_outputs`): the graph ends with the projector (clip.cpp llava graph: mm.0, GELU,
      mm.2 on the patch rows), whose two f32 outputs are alive together, plus the tower's output and the image;

    plus, where they stay allocated, the graph's inputs (the f32 image, p x p x 3 x 4 bytes per patch, and the
    position ids), and Qwen3-VL's concatenated DeepStack features (``deepstack`` = (features, width, merge):
    features x N / merge^2 x width f32, alive from the last DeepStack layer to the end, see :func:`clip_extras`).
    The live counts per family are in ``CLIP_LIVE``. Qwen2.5-VL's window attention adds its f32 N x N window mask
    (an input) without flash attention. With flash attention, where a tensor lands in Qwen2.5-VL's buffer depends on
    the sizes (the f16 window mask, its per-layer copies, the f16 K/V copies and the window reordering leave holes that
    ggml-alloc's best fit reuses or not), so the buffer is ggml-alloc replayed over the graph's allocation order
    (:mod:`vramcalc.runtimes.clip_alloc`), with the merger's output ``llm_hidden`` wide (the LLM's width; the tower's
    when not given); llama.cpp's layer pattern is ``full_attention_layers[0] + 1`` (conversion/qwenvl.py
    ``n_wa_pattern``).
    """
    n = patches
    act = n * enc.hidden_size * 4
    k_attn, k_ffn, inputs_live = CLIP_LIVE.get(enc.family, CLIP_LIVE_DEFAULT)
    inputs = 0
    if inputs_live:
        gx = enc.patch_size * enc.patch_size * enc.num_channels * 4  # the f32 image, per patch
        inputs = (n - int(enc.class_token)) * gx + n * _POS_BYTES.get(enc.family, 8)
    if deepstack is not None:
        feats, width, merge = deepstack
        inputs += feats * (n // (merge * merge)) * width * 4
    ffn = n * enc.intermediate_size * 4 * (2 if enc.gated_mlp else 1)
    if flash_attention:
        if enc.family == "qwen25_vit" and enc.window_attention is not None and enc.gated_mlp:
            from vramcalc.runtimes.clip_alloc import qwen25_flash_bytes

            wa = enc.window_attention
            per = qwen25_flash_bytes(
                n,
                enc.hidden_size,
                enc.intermediate_size,
                enc.patch_size,
                enc.num_channels,
                llm_hidden or enc.hidden_size,
                enc.num_layers,
                wa.full_attention_layers[0] + 1 if wa.full_attention_layers else enc.num_layers + 1,
            )
        else:
            per = ffn + int(k_ffn * act) + inputs
    else:
        per = enc.num_heads * n * n * 4 + int(k_attn * act) + inputs
        if enc.family == "qwen25_vit" and enc.window_attention is not None:
            per += 4 * n * n  # the f32 window mask (clip.cpp qwen2vl.cpp: window_mask, an input)
        per = max(per, ffn + int(k_ffn * act) + inputs)
    if projector is not None:
        tokens, width = projector
        per = max(per, tokens * width * 4 + act + inputs)
    return per * images


def deepstack_input_bytes(
    llm: LlmSpec,
    n_deepstack: int,
    n_ubatch: int,
    n_ctx: int | None = None,
    flash_attention: bool = True,
    type_k: str = "f16",
    type_v: str = "f16",
    n_pos: int = 1,
) -> int:
    """What a DeepStack language model (Qwen3-VL, ``qwen3vl.n_deepstack_layers``) adds to the LLM compute buffer:
    its input embedding is ``n_embd_inp = (1 + n_deepstack) x n_embd`` wide (llama-hparams.cpp ``n_embd_inp``;
    llama-graph.cpp ``build_inp_embd`` pads the token rows to that width, and src/models/qwen3vl.cpp adds slice
    ``il + 1`` to the output of layer ``il`` for the first n_deepstack layers), so the input-embedding tensor
    of the ubatch is ``n_deepstack`` hidden-size f32 tensors wider than a plain model's.

    Measured on the CPU backend (llama.cpp 0c1e57098, runs.csv qwen3-vl-2b: 320.75 MiB = logits 296.75 + one
    hidden state + the 4-wide input embedding, with flash attention at 4096 cells); that the CUDA buffer grows
    by the same n_deepstack tensors (the padded input is copied to the device for those additions) is read from
    the graph, not measured.

    Given ``n_ctx`` (cells per stream) and a ported graph, it is the simulated buffer with the DeepStack input less
    the one without (:func:`simulated_compute_bytes`): the padded token rows (build_inp_embd's ``ggml_pad``) are
    viewed by the DeepStack additions of the first n_deepstack layers, so in a model with no more layers than
    that they stay allocated to the last layer and the final hidden state is placed above them (the 2-layer
    qwen3-vl-2b oracle runs 606, 607, 610, 611: 16-32 MiB more than the wider input alone).

    ``n_pos`` = 4 (M-RoPE: Qwen2-VL, Qwen2.5-VL and Qwen3-VL language models) adds the 3 more int32 position ids a
    token, also simulated (runs.csv qwen2-vl-7b: 6 KiB at u=512).
    """
    if n_ctx is not None and (n_deepstack or n_pos > 1):
        with_ds = simulated_compute_bytes(llm, n_ctx, n_ubatch, flash_attention, type_k, type_v, n_deepstack, n_pos)
        if with_ds is not None:
            return with_ds - simulated_compute_bytes(llm, n_ctx, n_ubatch, flash_attention, type_k, type_v)  # type: ignore[operator]
    return n_deepstack * n_ubatch * llm.hidden_size * 4


def clip_extras(vlm: VlmSpec, enc: VisionEncoderSpec, llm: LlmSpec) -> dict[str, tuple[int, ...] | int | None]:
    """The VLM parts of the clip graph :func:`clip_compute_bytes` counts beside the tower: ``projector`` (see
    :func:`clip_projector_outputs`), ``deepstack`` (Qwen3-VL: (DeepStack features, LLM width, merge)) and
    ``llm_hidden`` (the width of a merger's output, Qwen2.5-VL)."""
    proj = vlm.projector
    ds = (len(proj.deepstack_layers), llm.hidden_size, proj.merge) if proj.kind == "merger" and proj.deepstack_layers else None
    return {"projector": clip_projector_outputs(vlm, enc, llm), "deepstack": ds, "llm_hidden": llm.hidden_size}


def clip_projector_outputs(vlm: VlmSpec, enc: VisionEncoderSpec, llm: LlmSpec) -> tuple[int, int] | None:
    """(tokens, summed output widths) of an MLP projector that runs inside the clip graph on every patch
    (LLaVA ``mlp2x_gelu``: 1024 -> 4096 -> 4096 on 576 patches; clip.cpp llava graph, PROJECTOR_TYPE_MLP), for
    :func:`clip_compute_bytes`; None for other projectors (a Qwen merger runs on a quarter of the patches and
    is never the peak; Pixtral / Phi / Moondream projectors merge or concatenate first and have other graphs)."""
    proj = vlm.projector
    plain = proj.merge == 1 and proj.input_size in (None, enc.hidden_size) and enc.family in ("clip", "siglip")
    if proj.kind != "mlp" or proj.layers != 2 or not plain:
        return None
    hidden = proj.hidden_size or llm.hidden_size
    return enc.image_size // enc.patch_size * (enc.image_size // enc.patch_size), hidden + llm.hidden_size


# ---------------------------------------------------------------------------------------------
# KV cache layout and bytes (llama.cpp 0c1e57098; pinned by tests/test_llamacpp_oracle.py against
# recorded llama.cpp runs, tests/fixtures/llamacpp_oracle/runs.csv)

#: Clip warm-up: Qwen2-VL / Qwen2.5-VL / Qwen3-VL reserve the vision compute buffer for 46 x 46
#: merged tokens (clip.cpp ``hparams.set_warmup_n_tokens(46*46)``, "avoid OOM on warmup"); other
#: projectors warm up at the encoder's native image size (``warmup_image_size = image_size``).
CLIP_WARMUP_TOKENS_PER_SIDE = 46


@dataclass(frozen=True)
class KvLayout:
    """llama.cpp's KV cache cells for a context of ``n_ctx`` tokens over ``n_seq`` sequences.

    llama-context.cpp: ``n_ctx = GGML_PAD(n_ctx, 256)``; unified: ``n_ctx_seq = n_ctx`` in one
    stream; otherwise ``n_ctx_seq = GGML_PAD(n_ctx / n_seq, 256)`` in each of ``n_seq`` streams.
    llama-kv-cache-iswa.cpp: each stream of a sliding-window layer holds
    ``GGML_PAD(min(n_ctx_seq, n_swa * (unified ? n_seq : 1) + n_ubatch), 256)`` cells.
    """

    n_ctx: int  # padded total context
    stream_cells: int  # n_ctx_seq: cells per stream of a full-attention layer
    stream_swa_cells: int  # cells per stream of a sliding-window layer
    n_stream: int

    @property
    def cells(self) -> int:
        return self.stream_cells * self.n_stream

    @property
    def swa_cells(self) -> int:
        return self.stream_swa_cells * self.n_stream


def kv_layout(llm: LlmSpec, n_ctx: int, n_seq: int = 1, unified: bool = False, n_ubatch: int = 512) -> KvLayout:
    """Cells of llama.cpp's KV cache for ``-c n_ctx -np n_seq [-kvu] -ub n_ubatch`` (``n_ctx`` = the total)."""
    ctx = _pad(n_ctx, KV_PAD)
    if unified or n_seq == 1:
        seq, streams = ctx, 1
    else:
        seq, streams = _pad(ctx // n_seq, KV_PAD), n_seq
    swa = seq
    window = llamacpp_window(llm)
    if window:
        swa = _pad(min(seq, window * (n_seq if unified else 1) + min(n_ubatch, ctx)), KV_PAD)
    return KvLayout(ctx, seq, swa, streams)


#: Families whose sliding-window layers llama.cpp implements (it sets ``hparams.swa_type`` for them:
#: src/models/gemma3.cpp, gemma3n.cpp, gemma4.cpp, openai-moe.cpp (gpt-oss), cohere2.cpp STANDARD;
#: llama4.cpp CHUNKED, n_swa 8192, 3 chunked layers to 1 full; at the oracle's commit 0c1e57098);
#: Mistral 7B's config has a window but llama.cpp converts it as a plain llama model
#: (convert_hf_to_gguf.py writes no sliding_window for it): a full cache at every layer.
SWA_FAMILIES = frozenset({"gemma2", "gemma3", "gemma3n", "gemma4", "gpt-oss", "cohere2", "phi3", "llama4"})


def llamacpp_kv_dims(llm: LlmSpec) -> tuple[int, int]:
    """K and V widths per cell per layer in llama.cpp's cache. MLA (DeepSeek-V2/V3) keeps only the
    compressed latent + rope part as K and no V tensor at all (llama-kv-cache.cpp ``has_v = !is_mla``:
    V is read as a view of K), so V is 0 there."""
    from vramcalc.placement import kv_dims

    k_dim, v_dim = kv_dims(llm)
    return (k_dim, 0) if llm.mla else (k_dim, v_dim)


def llamacpp_window(llm: LlmSpec) -> int | None:
    """The sliding window llama.cpp applies to ``llm``, or None (a full cache at every layer)."""
    if llm.sliding_window and llm.family in SWA_FAMILIES:
        return llm.sliding_window.size
    return None


def kv_bytes(llm: LlmSpec, lay: KvLayout, type_k: str = "f16", type_v: str | None = None) -> int:
    """Bytes of llama.cpp's KV buffers: per layer ``ggml_row_size(type, n_embd_k_gqa * cells)`` for K and V."""
    k_dim, v_dim = llamacpp_kv_dims(llm)
    tk, tv = _KV_GGML[type_k], _KV_GGML[type_v or type_k]
    total = 0
    la = llm.linear_attention
    for i in range(llm.num_layers):
        if la is not None and la.is_linear(i):
            # a hybrid model's linear-attention layers have no KV cells: llama_memory_hybrid keeps their
            # state in the separate recurrent ('RS') buffer (placement.recurrent_state_bytes)
            continue
        n = lay.swa_cells if llamacpp_window(llm) and llm.sliding_window and llm.sliding_window.is_sliding(i) else lay.cells
        total += ggml_type_bytes(tk, k_dim * n) + ggml_type_bytes(tv, v_dim * n)
    return total


_KV_GGML = {"f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0", "f32": "F32"}


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def clip_reserved_tokens(vlm: VlmSpec, enc: VisionEncoderSpec, size: tuple[int, int] | None, warmup: bool = True) -> tuple[int, int, int]:
    """(tokens, crops, patches per crop) of the image the clip compute buffer is reserved for.

    With warm-up (llama.cpp's default) mtmd reserves the buffer at load time for its warm-up image
    (clip.cpp ``warmup``: a ``warmup_image_size`` square) and never for the user's image; with
    ``--no-warmup`` it is reserved at the first image's size. llama.cpp encodes one crop at a time
    (clip-graph.h ``support_batch() = false`` for every projector but Gemma 4), so a multi-crop
    image (LLaVA-1.6, InternVL) needs one crop's buffer.
    """
    from vramcalc.images import image_tokens
    from vramcalc.schema import DynamicResolutionTokens

    tok, _crops, patches = image_tokens(vlm, enc, size, mtmd=True)
    if warmup:
        pol = vlm.image_tokens
        side = CLIP_WARMUP_TOKENS_PER_SIDE * pol.factor if isinstance(pol, DynamicResolutionTokens) else enc.image_size
        wtok, _wc, wpatches = image_tokens(vlm, enc, (side, side), mtmd=True)
        if wpatches >= patches:  # a larger image later grows the buffer (ggml_backend_sched reallocates)
            return wtok, 1, wpatches
    return tok, 1, patches


def _mmproj_encoder_tensors(model: object, enc: VisionEncoderSpec) -> tuple[Tensor, ...]:
    from vramcalc.params import encoder_tensors

    tensors = encoder_tensors(enc)
    if not (isinstance(model, VlmSpec) and model.projector.kind == "mlp" and enc.feature_layer < -1):
        return tensors
    keep = enc.num_layers + enc.feature_layer + 1  # -2 -> num_layers - 1
    out = []
    for t in tensors:
        if t.name.startswith("v.post_ln"):
            continue
        if t.name.startswith("v.blk.") and int(t.name.split(".")[2]) >= keep:
            continue
        out.append(t)
    return tuple(out)


def file_type_bits(ftype: str) -> float:
    """Bits per weight of a file type's default tensor type (Q4_K_M -> Q4_K: 4.5)."""
    block_bytes, block = GGML_TYPES[GGUF_FILE_TYPES[ftype]]
    return 8 * block_bytes / block


class LlamaCpp:
    """The llama.cpp runtime plugin."""

    name: str = "llama.cpp"
    kv_pad: int = KV_PAD
    #: Images go through llama.cpp's own preprocessing (tools/mtmd), not the Hugging Face processor.
    mtmd_images: bool = True
    embeddings_on_host: bool = True
    offloads_layers: bool = True
    pytorch_kernels: bool = False
    decode_fallback: str | None = None
    weights_format: str = "gguf"
    compute_label: str = "compute buffer"
    flash_attention_switch: bool = True
    margin_note: str = "llama.cpp --fit keeps free by default"
    margin_bytes: int = FIT_MARGIN_BYTES
    guesses: Mapping[str, int] = MappingProxyType(
        {"GUESS_CUDA_RUNTIME_BYTES": GUESS_CUDA_RUNTIME_BYTES, "GUESS_METAL_RUNTIME_BYTES": GUESS_METAL_RUNTIME_BYTES}
    )

    def check(self, w: Workload) -> None:
        if (w.cache_type_v or w.kv_cache) != "f16" and not w.flash_attention:
            raise InputError("llama.cpp needs flash attention for a quantized V cache: drop --no-flash-attn or use --kv-cache f16.")

    def default_precision(self, model: object, llm: LlmSpec | None) -> str:
        """Q4_K_M (the most downloaded GGUF); F16 for an encoder alone; the LLM's default_gguf_type where it names one."""
        if llm is not None and llm.default_gguf_type:
            return llm.default_gguf_type
        return "F16" if llm is None else "Q4_K_M"

    def normalize_precision(self, name: str) -> str:
        return normalize_gguf_type(name)

    def precisions(self, llm: LlmSpec) -> list[str]:
        return list(GGUF_QUALITY_ORDER)

    def precision_label(self) -> list[str]:
        return list(GGUF_QUALITY_ORDER)

    def smaller_precisions(self, current: str) -> list[str]:
        order = GGUF_QUALITY_ORDER
        start = (
            order.index(current) + 1
            if current in order
            else next((i for i, q in enumerate(order) if file_type_bits(q) < file_type_bits(current)), len(order))
        )
        return list(order[start:])

    def vision_precision(self, model: VlmSpec | VisionEncoderSpec, w: Workload) -> str:
        """--vision-quant, else the VLM's published mmproj type (f16 for most), or for an encoder on its own --quant."""
        default = model.defaults.mmproj_dtype if isinstance(model, VlmSpec) else (w.quant or "f16")
        vq = (w.vision_quant or default).lower()
        vq = MMPROJ_ALIASES.get(vq, vq)
        if vq not in MMPROJ_TYPES:
            raise InputError(f"--vision-quant for llama.cpp must be f32, f16, bf16 or q8_0 (mmproj types), got '{vq}'.")
        return vq

    def llm_weights(self, llm: LlmSpec, precision: str) -> WeightBytes:
        return _llm_weights(llm, precision)

    def vision_tensors(self, model: object, enc: VisionEncoderSpec) -> tuple[Tensor, ...]:
        """The tower's tensors an mmproj file has: for a LLaVA-style VLM (MLP projector) that takes an
        earlier layer, llama.cpp's converter drops the layers after it and the final norm
        (tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py: ``block_count = num_hidden_layers - 1``
        and ``post_layernorm`` skipped when there is a LLaVA projector; ``encoder.layers.pop(-1)``)."""
        return _mmproj_encoder_tensors(model, enc)

    def vision_weights(self, tensors: tuple[Tensor, ...], precision: str) -> WeightBytes:
        return mmproj_weight_bytes(tensors, precision)

    def tensor_bytes(self, llm: LlmSpec, precision: str) -> tuple[int, ...]:
        return _tensor_bytes(llm, precision)

    def swa_extra_cells(self, w: Workload) -> int:
        """llama_kv_cache_iswa: min(n_ctx, pad(n_swa x n_seq + n_ubatch, 256))."""
        return w.n_ubatch

    def kv_layout(self, llm: LlmSpec, tokens: int, w: Workload) -> KvLayout:
        """The KV streams of ``w.batch`` sequences of ``tokens``: one stream per sequence unless the
        cache is unified (``--kv-unified``; llama.cpp's default is one stream per sequence)."""
        unified = bool(getattr(w, "kv_unified", False))
        return kv_layout(llm, tokens * w.batch, w.batch, unified, w.n_ubatch)

    def kv_dims(self, llm: LlmSpec) -> tuple[int, int]:
        """K and V widths per cell per layer (MLA: no V tensor), see :func:`llamacpp_kv_dims`."""
        return llamacpp_kv_dims(llm)

    def kv_cells(self, llm: LlmSpec, tokens: int, w: Workload) -> tuple[int, int]:
        """(cells of a full-attention layer, of a sliding-window layer), over all streams."""
        lay = self.kv_layout(llm, tokens, w)
        return lay.cells, lay.swa_cells

    def llm_compute_bytes(self, llm: LlmSpec, context: int, cells: int, w: Workload) -> int:
        lay = self.kv_layout(llm, context, w)
        kw = {"type_k": w.k_type, "type_v": w.v_type, "swa_cells": lay.stream_swa_cells}
        return compute_buffer_bytes(llm, lay.stream_cells, w.n_ubatch, w.flash_attention, n_seq=w.batch, **kw)  # type: ignore[arg-type]

    def vision_compute_bytes(self, enc: VisionEncoderSpec, patches: int, crops: int, w: Workload) -> int:
        # llama.cpp encodes one crop at a time (clip-graph.h support_batch() is false for every
        # projector but Gemma 4; mtmd.cpp batches only where it is true): one crop's buffer
        return clip_compute_bytes(enc, patches, 1, w.flash_attention)

    def vlm_compute_bytes(self, vlm: VlmSpec, enc: VisionEncoderSpec, llm: LlmSpec, patches: int, crops: int, w: Workload) -> int:
        """The clip compute buffer of a VLM: the tower's, or its MLP projector's outputs where those are the
        peak (the clip graph includes the projector), see :func:`clip_compute_bytes`; one crop at a time."""
        return clip_compute_bytes(enc, patches, 1, w.flash_attention, **clip_extras(vlm, enc, llm))  # type: ignore[arg-type]

    def vlm_llm_compute_extra(self, vlm: VlmSpec, llm: LlmSpec, w: Workload, context: int | None = None) -> int:
        """LLM compute bytes a VLM's language model adds under llama.cpp (DeepStack input, see :func:`deepstack_input_bytes`;
        given the context per sequence, simulated with the graph)."""
        if vlm.projector.kind != "merger":
            return 0
        n = len(vlm.projector.deepstack_layers)
        cells = self.kv_layout(llm, context, w).stream_cells if context is not None else None
        return deepstack_input_bytes(llm, n, w.n_ubatch, cells, w.flash_attention, w.k_type, w.v_type, n_pos=MROPE_POSITIONS)

    def vision_reserved(self, vlm: VlmSpec, enc: VisionEncoderSpec, size: tuple[int, int] | None, w: Workload) -> tuple[int, int]:
        """(crops, patches) the clip compute buffer is reserved for: the warm-up image unless
        warm-up is off (``--no-warmup``), see :func:`clip_reserved_tokens`."""
        _tok, crops, patches = clip_reserved_tokens(vlm, enc, size, warmup=bool(getattr(w, "warmup", True)))
        return crops, patches

    def overhead_bytes(self, gpu: GpuSpec) -> int:
        return GUESS_METAL_RUNTIME_BYTES if gpu.backend == "metal" else GUESS_CUDA_RUNTIME_BYTES

    def weight_floor(self, llm: LlmSpec) -> Callable[[str], int] | None:
        return _weight_floor(llm)

    def places_layers(self, n_gpus: int) -> bool:
        return True

    def suggestions(self, w: Workload) -> list[tuple[str, list[str], dict[str, object]]]:
        out: list[tuple[str, list[str], dict[str, object]]] = []
        if not w.flash_attention:
            out.append(("turn flash attention on", ["--flash-attn"], {"flash_attention": True}))
        if w.kv_cache == "f16":
            out.append(("quantize the KV cache to q8_0", ["--kv-cache", "q8_0"], {"kv_cache": "q8_0", "flash_attention": True}))
        return out

    def smaller_precision_change(self, precision: str) -> tuple[str, list[str]]:
        return f"use a smaller quantization ({precision})", ["--quant", precision]

    def speed_key(self, precision: str) -> str:
        """f16 / quant: prefill runs dequantising matmuls vs cuBLAS/Metal F16 GEMMs."""
        return "f16" if precision.lower() in ("f16", "bf16", "f32") else "quant"

    def speed_notes(self, gpu: GpuSpec) -> list[str]:
        return []

    def server_command(self, model: object, i: Inputs, w: Workload, off: Offload | None, n_gpus: int) -> list[str]:
        """The llama-server command line reproducing an answer (vramcalc.cmdline)."""
        from vramcalc.cmdline import server_command

        return server_command(model, i, w, off, n_gpus)


# Memoized on the spec's content (vramcalc.memo): fit and the pipeline ask for the same model and
# file type several times per run; what they return is read-only.


@spec_memo
def _typed_parts(llm: LlmSpec, precision: str) -> tuple[tuple[tuple[str, int, int], ...], ...]:
    """(ggml type, elements, bytes) of the parts of each tensor of ``llm_tensors(llm)`` in the file type
    ``precision``: one part, or two where the converter splits the tensor (:func:`vramcalc.quant.gguf_file_tensors`)."""
    return tuple(gguf_typed_tensors(llm_tensors(llm), quant_context(llm, precision)))


@spec_memo
def _llm_weights(llm: LlmSpec, precision: str) -> WeightBytes:
    """Bytes of every tensor at the type llama.cpp's quantizer assigns (the file's tensor data), by type."""
    out = WeightBytes(precision)
    for t, parts in zip(llm_tensors(llm), _typed_parts(llm, precision), strict=True):
        for ttype, numel, part_bytes in parts:
            out.add(ttype, numel, part_bytes)
        nb = sum(p[2] for p in parts)
        if t.role == "token_embd" and not llm.tied_embeddings:
            # llama.cpp keeps the input embedding on the CPU (llama-model.cpp: tok_embd is assigned
            # to the input layer's buffer type, the host), whatever -ngl is. With tied embeddings it
            # also loads the same matrix as the output layer (``create_tensor(TOKEN_EMBD, ...,
            # TENSOR_DUPLICATED)`` in the output layer's buffer, the GPU): the GPU then holds every
            # byte of the file, and the host copy is system RAM (placement: LlmBytes.embd).
            out.host_bytes += nb
    return out


@spec_memo
def _tensor_bytes(llm: LlmSpec, precision: str) -> tuple[int, ...]:
    return tuple(sum(p[2] for p in parts) for parts in _typed_parts(llm, precision))


@spec_memo
def _weight_floor(llm: LlmSpec) -> Callable[[str], int]:
    """A lower bound of the on-GPU weight bytes of a file type, cheap to compute (``fit`` skips
    the exact sum of file types that cannot fit even so).

    llama.cpp's quantizer gives every 2-D tensor the file type's base type or a larger one (the
    per-tensor rules and the row-length fallbacks only raise the bit width, for the file types fit
    tries), and keeps 1-D tensors in F32; the token embedding stays in host memory.
    """
    n2d = n1d = 0
    for t in llm_tensors(llm):
        if t.role == "token_embd":
            continue
        if t.ndim >= 2:
            n2d += t.numel
        else:
            n1d += t.numel

    def floor(ftype: str) -> int:
        # rounding the block count of the whole sum up stays below the per-tensor sum of rounded-up blocks
        return ggml_type_bytes(GGUF_FILE_TYPES[ftype], n2d) + ggml_type_bytes("F32", n1d)

    return floor
