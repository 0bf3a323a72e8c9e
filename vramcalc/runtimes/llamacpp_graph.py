"""llama.cpp's worst-case LLM graph (llama.cpp 0c1e57098), node by node, for the allocator port in ggml_alloc.py.

``sched_reserve`` sizes the compute buffer by allocating the graph of one full micro-batch (``u`` tokens,
every token an output) against the whole KV cache. This module rebuilds that graph the way llama.cpp does --
the tensors each ``src/models/<arch>.cpp`` creates, in the order ``ggml_build_forward_expand`` visits them (a
depth-first walk over the sources, left to right: ggml.c ``ggml_visit_parents_graph``; llama-graph.cpp
``build_attn`` expands q, v, k and the two KV stores first) -- for the graph families whose code is ported:

- ``src/models/llama.cpp`` (Llama, Mistral, LLaVA's language model; with its MoE branch, Mixtral),
  ``qwen2.cpp`` (q/k/v biases, Qwen2-VL's M-RoPE uses the same ops), ``qwen3.cpp`` (per-head q/k RMSNorm),
  ``qwen3moe.cpp`` (Qwen3 attention, MoE FFN), ``qwen3vl.cpp`` / ``qwen3vlmoe.cpp`` (the same + the DeepStack
  input: build_inp_embd's ``ggml_pad`` to ``(1 + n_deepstack) x n_embd`` and its slices added after the first
  layers), ``phi3.cpp`` (fused qkv, fused gate_up, residual order ``residual + cur``), ``openai-moe.cpp``
  (gpt-oss, :func:`_build_gpt_oss`);
- llama-graph.cpp ``build_inp_embd`` / ``build_attn`` / ``build_attn_mha`` (flash attention: FLASH_ATTN_EXT;
  without: KQ MUL_MAT, SOFT_MAX in place, KQV MUL_MAT, CONT), ``build_ffn`` (SWIGLU), ``build_moe_ffn``
  (:func:`_moe_softmax`), the KV stores
  (llama-kv-cache.cpp ``cpy_k`` / ``cpy_v``: SET_ROWS into views of the cache; the transposed V store without flash
  attention needs a contiguous V: CONT for a fused qkv view) and the inputs: ``inp_tokens``, ``inp_embd`` (the
  unused embeddings input, n_embd_inp wide), ``inp_pos``, ``attn_inp_k_idxs`` / ``attn_inp_v_idxs`` (i64; without
  flash attention one per stored V element), ``attn_inp_kq_mask`` (f16 with flash attention, else f32),
  ``out_ids`` (the last layer gathers the output rows: two GET_ROWS).

Each builder was checked against ggml-alloc's own trace of the recorded runs (tests/test_ggml_alloc.py): every
allocation in the same order at the same offset on all 328 traces of these families. Other graphs (Gemma's
sliding window and extra norms, MLA, linear attention, shared-expert MoE) are not ported: :func:`supported`
says which specs this module can build.
"""

from __future__ import annotations

from dataclasses import replace

from vramcalc.runtimes.ggml_alloc import Program, Tensor
from vramcalc.schema import LlmSpec

F32, F16, I32, I64 = ("f32", 4), ("f16", 2), ("i32", 4), ("i64", 8)
_VIEWS = frozenset({"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"})


def supported(llm: LlmSpec, window: int | None) -> bool:
    """Whether :func:`build` reproduces llama.cpp's graph for this spec (a full-attention, RMSNorm, SwiGLU decoder of
    one of the ported model files, dense or with the plain softmax-routed MoE FFN; or gpt-oss)."""
    moe = llm.moe
    # the MoE FFN of src/models/llama.cpp (Mixtral converts to the llama architecture) and qwen3moe.cpp: softmax
    # router, normalized top-k weights, SwiGLU experts, no shared expert, no biases, every layer sparse
    plain_moe = moe is None or (
        llm.family in ("mixtral", "qwen3_moe")
        and moe.shared_experts == 0
        and not moe.dense_layers
        and not moe.expert_bias
        and not moe.router_bias
    )
    plain = (
        plain_moe
        and llm.mla is None
        and llm.linear_attention is None
        and not window
        and not llm.attention_sinks
        and llm.extra_norms_per_layer == 0
        and llm.norm == "rmsnorm"
        and llm.gated_mlp
        and llm.activation == "silu"
        and not llm.cross_attention_layers
        and not llm.attn_output_gate
        and not llm.attn_out_bias
        and not llm.mlp_bias
    )
    if llm.family == "gpt-oss":
        return _gpt_oss_supported(llm, window)
    if not plain:
        return False
    if llm.family == "phi3":
        return llm.fused_qkv and llm.fused_gate_up and not llm.qk_norm and not llm.qkv_bias
    if llm.fused_qkv or llm.fused_gate_up:
        return False
    if llm.family in ("llama", "mistral", "qwen2", "mixtral"):
        return not llm.qk_norm and (moe is None) == (llm.family != "mixtral")
    return llm.family in ("qwen3", "qwen3_moe") and llm.qk_norm and not llm.qkv_bias and (moe is None) == (llm.family == "qwen3")


def _gpt_oss_supported(llm: LlmSpec, window: int | None) -> bool:
    """src/models/openai-moe.cpp: q/k/v and output biases, sinks, alternating sliding-window layers, an MoE FFN
    (biased router and experts, softmax over the chosen experts' logits, SWIGLU_OAI) and no dense FFN."""
    moe = llm.moe
    return (
        moe is not None
        and window is not None
        and llm.sliding_window is not None
        and llm.attention_sinks
        and llm.qkv_bias
        and llm.attn_out_bias
        and llm.activation == "swiglu_oai"
        and moe.expert_bias
        and moe.router_bias
        and moe.shared_experts == 0
        and not moe.dense_layers
        and llm.mla is None
        and llm.linear_attention is None
        and not llm.qk_norm
        and llm.extra_norms_per_layer == 0
    )


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[Tensor] = []
        self.leafs: list[Tensor] = []
        self._seen: set[int] = set()

    def expand(self, t: Tensor) -> None:
        """ggml_build_forward_expand: depth-first over the sources, left to right; leafs (op NONE) apart."""
        stack: list[tuple[Tensor, int]] = [(t, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                if id(node) in self._seen:
                    continue
                self._seen.add(id(node))
            if i < len(node.srcs):
                stack.append((node, i + 1))
                stack.append((node.srcs[i], 0))
                continue
            (self.leafs if node.op == "NONE" else self.nodes).append(node)


def _t(name: str, op: str, dt: tuple[str, int], ne: tuple[int | str, ...], *srcs: Tensor | None, **kw: object) -> Tensor:
    """A new tensor of type ``dt`` and shape ``ne``; a named dimension (a str, see :func:`simulate`) is sized per run."""
    n = 1
    scale = None
    for d in ne:
        if isinstance(d, str):
            scale = d
        else:
            n *= d
    t = Tensor(name, op, n * dt[1], tuple(s for s in srcs if s is not None), layout=(dt[0], ne), **kw)  # type: ignore[arg-type]
    if scale is not None:
        t.scale, t.unit_bytes = scale, n * dt[1]
    return t


def _view(name: str, src: Tensor, op: str = "VIEW") -> Tensor:
    base = src.view_src or src
    return Tensor(name, op, 0, (src,), view_src=base, external=base.external)


def _cache(name: str) -> Tensor:
    """A layer's K or V cache: allocated in the KV buffer; the stores (SET_ROWS) and the attention read views of it."""
    return Tensor(name, "NONE", external=True)


def _weight(name: str) -> Tensor | None:
    """A weight: in a buffer of its own (external to the compute buffer), never allocated, freed or reused in place
    (``ggml_gallocr_is_own`` is false), so it changes no allocation: left out of the sources."""
    return None


#: ggml_is_quantized for the KV cache types llama.cpp accepts (``-ctk`` / ``-ctv``)
QUANTIZED_KV = frozenset({"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"})


def _rot_size(head_dim: int, is_k: bool) -> int:
    """llama-kv-cache.cpp build_input_k_rot / build_input_v_rot: the Hadamard matrix's side (V: always 64; K: the
    largest power of two from 64 up dividing the head size)."""
    if not is_k:
        return 64
    n = 64
    while head_dim % (n * 2) == 0:
        n *= 2
    return n


def build(
    llm: LlmSpec,
    n_kv: int,
    u: int,
    flash_attention: bool,
    n_stream: int = 1,
    n_deepstack: int = 0,
    type_k: str = "f16",
    type_v: str = "f16",
    n_pos: int = 1,
    n_kv_swa: int | None = None,
    marks: list[int] | None = None,
) -> tuple[list[Tensor], list[Tensor]]:
    """(nodes, leafs) of the worst-case graph: ``u`` tokens and outputs, ``n_kv`` cells per stream, ``n_pos``
    position ids per token.

    A quantized K (V) cache adds llama.cpp's Hadamard rotation (llama-kv-cache.cpp ``attn_rot_k`` / ``attn_rot_v``:
    a quantized type and a head size that is a multiple of 64; llama-graph.cpp ``build_attn`` /
    llama-impl.h ``llama_mul_mat_hadamard``): q and k (v, and the attention output) are multiplied by an f32
    input matrix before the store, each product a new f32 tensor of the same size."""
    if llm.family == "gpt-oss":
        return _build_gpt_oss(llm, n_kv, n_kv if n_kv_swa is None else n_kv_swa, u, flash_attention, type_k, type_v, marks)
    g = _Graph()
    e = llm.hidden_size
    hd = llm.head_dim_
    nh, nkv = llm.num_heads, llm.num_kv_heads
    ff = llm.intermediate_size
    phi3 = llm.family == "phi3"
    e_inp = e * (1 + n_deepstack)

    inp_tokens = _t("inp_tokens", "NONE", I32, (u,), is_input=True)
    inp_embd = _t("inp_embd", "NONE", F32, (e_inp, u), is_input=True)
    # M-RoPE (the Qwen2-VL / Qwen3-VL language models: llama-hparams n_pos_per_embd() = 4) feeds 4 positions a token
    inp_pos = _t("inp_pos", "NONE", I32, (u * n_pos,), is_input=True)
    k_idxs = _t("attn_inp_k_idxs", "NONE", I64, (u,), is_input=True)
    v_idxs = _t("attn_inp_v_idxs", "NONE", I64, (u,) if flash_attention else (u * nkv * hd,), is_input=True)
    mask = _t("attn_inp_kq_mask", "NONE", F16 if flash_attention else F32, (n_kv, u // n_stream, 1, n_stream), is_input=True)
    out_ids = _t("out_ids", "NONE", I32, (u,), is_input=True)
    rot_k = rot_v = None
    if type_k in QUANTIZED_KV and hd % 64 == 0:
        n = _rot_size(hd, True)
        rot_k = _t("attn_inp_k_rot", "NONE", F32, (n, n), is_input=True)
    if type_v in QUANTIZED_KV and hd % 64 == 0:
        n = _rot_size(hd, False)
        rot_v = _t("attn_inp_v_rot", "NONE", F32, (n, n), is_input=True)

    def hadamard(t: Tensor, rot: Tensor | None, heads: int, contiguous: bool = True) -> Tensor:
        if rot is None:
            return t
        n = rot.layout[1][0]  # type: ignore[index]
        # a non-contiguous input (the V view of a fused qkv) is copied out first: ggml_cont_2d
        src = _view("(reshaped)", t, "RESHAPE") if contiguous else _t("(cont)", "CONT", F32, (n, hd * heads * u // n), t)
        m = _t("hadamard", "MUL_MAT", F32, (n, hd * heads * u // n), rot, src)
        return _view("(reshaped)", m, "RESHAPE")

    # build_inp_embd: get_rows of the token embeddings; DeepStack pads the rows to n_embd_inp and views the first
    # n_embd; ggml_build_forward_select keeps the (unused) float input in the graph too
    x = _t("embd", "GET_ROWS", F32, (e, u), _weight("token_embd.weight"), inp_tokens)
    padded = None
    if n_deepstack:
        padded = _t("node_1", "PAD", F32, (e_inp, u), x)
        x = _view("embd", padded)
    g.expand(padded or x)
    g.expand(inp_embd)
    inp_l = x

    for il in range(llm.num_layers):
        if marks is not None:  # a layer boundary for simulate(): the nodes expanded so far
            marks.append(len(g.nodes))
        inp_sa = inp_l
        cur = _t(f"norm-{il}", "RMS_NORM", F32, (e, u), inp_l)
        cur = _t(f"attn_norm-{il}", "MUL", F32, (e, u), cur, _weight("attn_norm"))
        if phi3:
            qkv = _t(f"wqkv-{il}", "MUL_MAT", F32, (nh * hd + 2 * nkv * hd, u), _weight("attn_qkv"), cur)
            q = _t(f"Qcur-{il}", "ROPE", F32, (hd, nh, u), _view(f"Qcur-{il}", qkv), inp_pos)
            q = _t(f"Qcur-{il}", "SCALE", F32, (hd, nh, u), q)
            v_view = _view(f"Vcur-{il}", qkv)
            k = _t(f"Kcur-{il}", "ROPE", F32, (hd, nkv, u), _view(f"Kcur-{il}", qkv), inp_pos)
            v: Tensor = v_view
        else:

            def proj(name: str, heads: int, il: int = il, cur: Tensor = cur) -> Tensor:
                p = _t(f"{name}-{il}", "MUL_MAT", F32, (heads * hd, u), _weight(name), cur)
                if llm.qkv_bias:
                    p = _t(f"{name}-{il}", "ADD", F32, (heads * hd, u), p, _weight(name + ".bias"))
                return _view(f"{name}-{il}", p, "RESHAPE")

            def normed(t: Tensor, heads: int, name: str, il: int = il) -> Tensor:
                if not llm.qk_norm:
                    return t
                n = _t(f"norm-{il}", "RMS_NORM", F32, (hd, heads, u), t)
                return _t(f"{name}_normed-{il}", "MUL", F32, (hd, heads, u), n, _weight(name + "_norm"))

            q = _t(f"Qcur-{il}", "ROPE", F32, (hd, nh, u), normed(proj("Qcur", nh), nh, "Qcur"), inp_pos)
            v = proj("Vcur", nkv)
            k = _t(f"Kcur-{il}", "ROPE", F32, (hd, nkv, u), normed(proj("Kcur", nkv), nkv, "Kcur"), inp_pos)
        # build_attn: the Hadamard rotations, then q, v, k expanded in that order, then the K and V stores
        q, k = hadamard(q, rot_k, nh), hadamard(k, rot_k, nkv)
        v_strided = phi3 and rot_v is None  # still the V view of the fused qkv projection
        v = hadamard(v, rot_v, nkv, contiguous=not phi3)
        for t in (q, v, k):
            g.expand(t)
        cache_k, cache_v = _cache(f"cache_k_l{il}"), _cache(f"cache_v_l{il}")
        k_store = (_view(f"Kcur-{il} (view)", k), k_idxs, cache_k)
        g.expand(Tensor(f"cache_k_l{il} (view)", "SET_ROWS", 0, k_store, view_src=cache_k, external=True))
        if flash_attention:
            vs = _view(f"Vcur-{il} (view)", v)
            cv = cache_v
        else:
            if v_strided:  # the V view of the fused qkv is not contiguous: cpy_v conts it before the transposed store
                v = _t(f"Vcur-{il} (cont)", "CONT", F32, (hd, nkv, u), v)
            vs = _view(f"Vcur-{il} (reshaped) (reshaped)", _view(f"Vcur-{il} (reshaped)", v, "RESHAPE"), "RESHAPE")
            cv = _view(f"cache_v_l{il} (reshaped)", cache_v, "RESHAPE")
        g.expand(Tensor(f"cache_v_l{il} (view)", "SET_ROWS", 0, (vs, v_idxs, cv), view_src=cache_v, external=True))
        # build_attn_mha
        qp = _view("q (permuted)", _view("q (view)", q), "PERMUTE")
        kp = _view("k (permuted)", _view("k (view)", cache_k), "PERMUTE")
        vp = _view("v (permuted)", _view("v (view)", cache_v), "PERMUTE")
        if flash_attention:
            fa = _t(f"fattn-{il}", "FLASH_ATTN_EXT", F32, (hd, nh, u), qp, kp, vp, mask)
            cur = _view(f"kqv_out-{il}", fa, "RESHAPE")
        else:
            kq = _t(f"kq-{il}", "MUL_MAT", F32, (n_kv, u // n_stream, nh, n_stream), kp, qp)
            kq = _t(f"kq_soft_max-{il}", "SOFT_MAX", F32, (n_kv, u // n_stream, nh, n_stream), kq, mask)
            kqv = _t(f"kqv-{il}", "MUL_MAT", F32, (hd, u // n_stream, nh, n_stream), vp, kq)
            cur = _t(f"kqv_out-{il}", "CONT", F32, (hd * nh, u), _view(f"kqv-{il} (permuted)", kqv, "PERMUTE"))
        cur = hadamard(cur, rot_v, nh)
        cur = _t(f"attn_out-{il}", "MUL_MAT", F32, (e, u), _weight("attn_output"), cur)
        if il == llm.num_layers - 1:
            # the last layer keeps the output rows only (out_ids): both the attention output and the residual
            cur = _t("attn_rows", "GET_ROWS", F32, (e, u), cur, out_ids)
            inp_sa = _t("res_rows", "GET_ROWS", F32, (e, u), inp_sa, out_ids)
        ffn_inp = _t(f"ffn_inp-{il}", "ADD", F32, (e, u), cur, inp_sa)
        cur = _t(f"norm-{il}", "RMS_NORM", F32, (e, u), ffn_inp)
        cur = _t(f"ffn_norm-{il}", "MUL", F32, (e, u), cur, _weight("ffn_norm"))
        if llm.moe is not None:
            out = _moe_softmax(g, cur, llm.moe.num_experts, llm.moe.experts_per_token, llm.moe.expert_intermediate_size, e, u)
        elif phi3:
            up = _t(f"ffn_up-{il}", "MUL_MAT", F32, (2 * ff, u), _weight("ffn_up"), cur)
            act = _t(f"ffn_swiglu-{il}", "GLU", F32, (ff, u), up)
        else:
            gate = _t(f"ffn_gate-{il}", "MUL_MAT", F32, (ff, u), _weight("ffn_gate"), cur)
            up = _t(f"ffn_up-{il}", "MUL_MAT", F32, (ff, u), _weight("ffn_up"), cur)
            act = _t(f"ffn_swiglu-{il}", "GLU", F32, (ff, u), gate, up)
        if llm.moe is None:
            out = _t(f"ffn_out-{il}", "MUL_MAT", F32, (e, u), _weight("ffn_down"), act)
        if phi3:
            cur = _t(f"l_out-{il}", "ADD", F32, (e, u), ffn_inp, out)
        else:
            cur = _t(f"l_out-{il}", "ADD", F32, (e, u), out, ffn_inp)
        if padded is not None and il < n_deepstack:
            cur = _t(f"deepstack_out-{il}", "ADD", F32, (e, u), cur, _view(f"ds-{il}", padded))
        inp_l = cur
    cur = _t("norm", "RMS_NORM", F32, (e, u), inp_l)
    cur = _t("result_norm", "MUL", F32, (e, u), cur, _weight("output_norm"), is_output=True)  # res->t_embd
    g.expand(_t("result_output", "MUL_MAT", F32, (llm.vocab_size, u), _weight("output"), cur, is_output=True))
    return g.nodes, g.leafs


def _sum_experts(g: _Graph, experts: Tensor, k_used: int, e: int, u: int) -> Tensor:
    """build_moe_ffn's sum over the chosen experts: a view per expert, added one by one (llama-graph.cpp)."""
    g.expand(experts)
    views = [_view(f"expert {i}", experts) for i in range(k_used)]
    for t in views:
        g.expand(t)
    moe_out = views[0]
    for t in views[1:]:
        moe_out = _t("ffn_moe_out", "ADD", F32, (e, u), moe_out, t)
        g.expand(moe_out)
    return moe_out


def _moe_softmax(g: _Graph, cur: Tensor, n_exp: int, k_used: int, ff: int, e: int, u: int) -> Tensor:
    """llama-graph.cpp build_moe_ffn with LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, norm_w, LLM_FFN_SILU and no biases
    or weight scale (Mixtral, Qwen3-MoE): SOFT_MAX of the router logits in place, top-k by ARGSORT and a view, the
    chosen probabilities by GET_ROWS, normalized (SUM_ROWS, CLAMP in place, DIV into a new tensor) and expanded
    first; then MUL_MAT_ID gate and up, SWIGLU, MUL_MAT_ID down, MUL by the weights in place, and the k expert rows
    summed by ADDs over views (each view and sum expanded in turn)."""
    logits = _t("ffn_moe_logits", "MUL_MAT", F32, (n_exp, u), _weight("ffn_gate_inp"), cur)
    probs = _t("ffn_moe_probs", "SOFT_MAX", F32, (n_exp, u), logits)
    argsort = _t("ffn_moe_argsort", "ARGSORT", I32, (n_exp, u), probs)
    topk = _view("ffn_moe_topk", argsort)
    weights = _t("ffn_moe_weights", "GET_ROWS", F32, (1, k_used, u), _view("probs (reshaped)", probs, "RESHAPE"), topk)
    w2d = _view("ffn_moe_weights (reshaped)", weights, "RESHAPE")
    wsum = _t("ffn_moe_weights_sum", "SUM_ROWS", F32, (1, u), w2d)
    wsum = _t("ffn_moe_weights_sum_clamped", "CLAMP", F32, (1, u), wsum)
    wnorm = _t("ffn_moe_weights_norm", "DIV", F32, (k_used, u), w2d, wsum)
    weights = _view("ffn_moe_weights_norm (reshaped)", wnorm, "RESHAPE")
    g.expand(weights)
    cur_r = _view("ffn_norm (reshaped)", cur, "RESHAPE")
    up = _t("ffn_moe_up", "MUL_MAT_ID", F32, (ff, k_used, u), _weight("ffn_up_exps"), cur_r, topk)
    gate = _t("ffn_moe_gate", "MUL_MAT_ID", F32, (ff, k_used, u), _weight("ffn_gate_exps"), cur_r, topk)
    act = _t("ffn_moe_swiglu", "GLU", F32, (ff, k_used, u), gate, up)
    experts = _t("ffn_moe_down", "MUL_MAT_ID", F32, (e, k_used, u), _weight("ffn_down_exps"), act, topk)
    experts = _t("ffn_moe_weighted", "MUL", F32, (e, k_used, u), experts, weights)
    moe_out = _sum_experts(g, experts, k_used, e, u)
    if k_used == 1:  # avoid returning a non-contiguous tensor
        moe_out = _t("ffn_moe_out", "CONT", F32, (e, u), moe_out)
    return moe_out


def _build_gpt_oss(
    llm: LlmSpec, n_kv: int, n_kv_swa: int, u: int, fa: bool, type_k: str, type_v: str, marks: list[int] | None = None
) -> tuple[list[Tensor], list[Tensor]]:
    """src/models/openai-moe.cpp with llama-graph.cpp ``build_attn`` (the iswa variant: q, k, v expanded in that
    order; a sliding-window layer uses the SWA cache's cells, indices and mask) and ``build_moe_ffn``
    (LLM_FFN_SWIGLU_OAI_MOE, LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT: the router's biased logits are the
    probabilities, top-k by ARGSORT and a view, GET_ROWS of the chosen logits and a SOFT_MAX over them, expanded
    first; then MUL_MAT_ID gate and up with ADD_ID biases, SWIGLU_OAI, MUL_MAT_ID down + bias, MUL by the weights,
    and the k expert rows summed by ADDs over views). The output rows are gathered after the last layer (one
    GET_ROWS: ``embeddings_nextn_masked`` is off)."""
    assert llm.moe is not None and llm.sliding_window is not None
    g = _Graph()
    e, hd, nh, nkv = llm.hidden_size, llm.head_dim_, llm.num_heads, llm.num_kv_heads
    n_exp, k_used, ff = llm.moe.num_experts, llm.moe.experts_per_token, llm.moe.expert_intermediate_size

    inp_tokens = _t("inp_tokens", "NONE", I32, (u,), is_input=True)
    inp_embd = _t("inp_embd", "NONE", F32, (e, u), is_input=True)
    inp_pos = _t("inp_pos", "NONE", I32, (u,), is_input=True)
    out_ids = _t("out_ids", "NONE", I32, (u,), is_input=True)
    sets = {}
    for swa, cells in ((False, n_kv), (True, n_kv_swa)):
        sets[swa] = (
            _t("attn_inp_k_idxs", "NONE", I64, (u,), is_input=True),
            _t("attn_inp_v_idxs", "NONE", I64, (u,) if fa else (u * nkv * hd,), is_input=True),
            _t("attn_inp_kq_mask", "NONE", F16 if fa else F32, (cells, u, 1, 1), is_input=True),
            cells,
            _t("attn_inp_k_rot", "NONE", F32, (_rot_size(hd, True),) * 2, is_input=True)
            if type_k in QUANTIZED_KV and hd % 64 == 0
            else None,
            _t("attn_inp_v_rot", "NONE", F32, (64, 64), is_input=True) if type_v in QUANTIZED_KV and hd % 64 == 0 else None,
        )

    def hadamard(t: Tensor, rot: Tensor | None, heads: int) -> Tensor:
        if rot is None:
            return t
        n = rot.layout[1][0]  # type: ignore[index]
        m = _t("hadamard", "MUL_MAT", F32, (n, hd * heads * u // n), rot, _view("(reshaped)", t, "RESHAPE"))
        return _view("(reshaped)", m, "RESHAPE")

    x = _t("embd", "GET_ROWS", F32, (e, u), _weight("token_embd.weight"), inp_tokens)
    g.expand(x)
    g.expand(inp_embd)
    inp_l = x
    for il in range(llm.num_layers):
        if marks is not None:  # a layer boundary for simulate(): the nodes expanded so far
            marks.append(len(g.nodes))
        k_idxs, v_idxs, mask, cells, rot_k, rot_v = sets[llm.sliding_window.is_sliding(il)]
        inp_sa = inp_l
        cur = _t(f"norm-{il}", "RMS_NORM", F32, (e, u), inp_l)
        cur = _t(f"attn_norm-{il}", "MUL", F32, (e, u), cur, _weight("attn_norm"))

        def proj(name: str, heads: int, il: int = il, cur: Tensor = cur) -> Tensor:
            p = _t(f"{name}-{il}", "MUL_MAT", F32, (heads * hd, u), _weight(name), cur)
            p = _t(f"{name}-{il}", "ADD", F32, (heads * hd, u), p, _weight(name + ".bias"))
            return _view(f"{name}-{il}", p, "RESHAPE")

        q = _t(f"Qcur-{il}", "ROPE", F32, (hd, nh, u), proj("Qcur", nh), inp_pos)
        k = _t(f"Kcur-{il}", "ROPE", F32, (hd, nkv, u), proj("Kcur", nkv), inp_pos)
        v = proj("Vcur", nkv)
        q, k, v = hadamard(q, rot_k, nh), hadamard(k, rot_k, nkv), hadamard(v, rot_v, nkv)
        for t in (q, k, v):
            g.expand(t)
        cache_k, cache_v = _cache(f"cache_k_l{il}"), _cache(f"cache_v_l{il}")
        k_store = (_view("k (view)", k), k_idxs, cache_k)
        g.expand(Tensor(f"cache_k_l{il} (view)", "SET_ROWS", 0, k_store, view_src=cache_k, external=True))
        if fa:
            v_store = (_view("v (view)", v), v_idxs, cache_v)
        else:
            v_store = (_view("v (r)(r)", _view("v (r)", v, "RESHAPE"), "RESHAPE"), v_idxs, _view("cv (r)", cache_v, "RESHAPE"))
        g.expand(Tensor(f"cache_v_l{il} (view)", "SET_ROWS", 0, v_store, view_src=cache_v, external=True))
        qp = _view("q (permuted)", _view("q (view)", q), "PERMUTE")
        kp = _view("k (permuted)", _view("k (view)", cache_k), "PERMUTE")
        vp = _view("v (permuted)", _view("v (view)", cache_v), "PERMUTE")
        sinks = _weight("attn_sinks")
        if fa:
            att = _t(f"fattn-{il}", "FLASH_ATTN_EXT", F32, (hd, nh, u), qp, kp, vp, mask, sinks)
            cur = _view(f"kqv_out-{il}", att, "RESHAPE")
        else:
            kq = _t(f"kq-{il}", "MUL_MAT", F32, (cells, u, nh), kp, qp)
            kq = _t(f"kq_soft_max-{il}", "SOFT_MAX", F32, (cells, u, nh), kq, mask, sinks)
            kqv = _t(f"kqv-{il}", "MUL_MAT", F32, (hd, u, nh), vp, kq)
            cur = _t(f"kqv_out-{il}", "CONT", F32, (hd * nh, u), _view("kqv (permuted)", kqv, "PERMUTE"))
        cur = hadamard(cur, rot_v, nh)
        cur = _t(f"attn_out-{il}", "MUL_MAT", F32, (e, u), _weight("attn_output"), cur)
        cur = _t(f"attn_out-{il}", "ADD", F32, (e, u), cur, _weight("attn_output.bias"))
        ffn_inp = _t(f"ffn_inp-{il}", "ADD", F32, (e, u), cur, inp_sa)
        cur = _t(f"norm-{il}", "RMS_NORM", F32, (e, u), ffn_inp)
        cur = _t(f"attn_post_norm-{il}", "MUL", F32, (e, u), cur, _weight("post_attention_norm"))
        # build_moe_ffn
        logits = _t("ffn_moe_logits", "MUL_MAT", F32, (n_exp, u), _weight("ffn_gate_inp"), cur)
        probs = _t("ffn_moe_probs", "ADD", F32, (n_exp, u), logits, _weight("ffn_gate_inp.bias"))
        argsort = _t("ffn_moe_argsort", "ARGSORT", I32, (n_exp, u), probs)
        topk = _view("ffn_moe_topk", argsort)
        weights = _t("ffn_moe_weights", "GET_ROWS", F32, (1, k_used, u), _view("probs (reshaped)", probs, "RESHAPE"), topk)
        weights = _t("ffn_moe_weights_softmax", "SOFT_MAX", F32, (k_used, u), _view("w (reshaped)", weights, "RESHAPE"))
        weights = _view("ffn_moe_weights_softmax", weights, "RESHAPE")
        g.expand(weights)
        cur_r = _view("attn_post_norm (reshaped)", cur, "RESHAPE")
        up = _t("ffn_moe_up", "MUL_MAT_ID", F32, (ff, k_used, u), _weight("ffn_up_exps"), cur_r, topk)
        up = _t("ffn_moe_up_biased", "ADD_ID", F32, (ff, k_used, u), up, _weight("ffn_up_exps.bias"), topk)
        gate = _t("ffn_moe_gate", "MUL_MAT_ID", F32, (ff, k_used, u), _weight("ffn_gate_exps"), cur_r, topk)
        gate = _t("ffn_moe_gate_biased", "ADD_ID", F32, (ff, k_used, u), gate, _weight("ffn_gate_exps.bias"), topk)
        act = _t("ffn_moe_swiglu_oai", "GLU", F32, (ff, k_used, u), gate, up)
        experts = _t("ffn_moe_down", "MUL_MAT_ID", F32, (e, k_used, u), _weight("ffn_down_exps"), act, topk)
        experts = _t("ffn_moe_down_biased", "ADD_ID", F32, (e, k_used, u), experts, _weight("ffn_down_exps.bias"), topk)
        experts = _t("ffn_moe_weighted", "MUL", F32, (e, k_used, u), experts, weights)
        moe_out = _sum_experts(g, experts, k_used, e, u)
        inp_l = _t(f"l_out-{il}", "ADD", F32, (e, u), moe_out, ffn_inp)
    # res->t_h_nextn = the final hidden state, an output (llm_graph_result::set_outputs): never freed, so the
    # logits go above it
    inp_l.is_output = True
    cur = _t("out rows", "GET_ROWS", F32, (e, u), inp_l, out_ids)
    cur = _t("norm", "RMS_NORM", F32, (e, u), cur)
    cur = _t("result_norm", "MUL", F32, (e, u), cur, _weight("output_norm"), is_output=True)  # res->t_embd
    g.expand(_t("result_output", "MUL_MAT", F32, (llm.vocab_size, u), _weight("output"), cur, is_output=True))
    return g.nodes, g.leafs


#: layers built beyond the first comparable one when looking for the allocator's repeating state (see simulate):
#: a short probe first (over the catalog the state repeats by the third boundary in 311 of 320 cases), then a longer
PROBE_LAYERS = (3, 6)
#: graphs kept for reuse (one per spec, depth and setting; the KV cells are sized per run)
GRAPH_CACHE = 64
_graphs: dict[tuple[object, ...], Program] = {}
#: results kept (per spec, setting and KV cell counts)
RESULT_CACHE = 4096
_results: dict[tuple[object, ...], int] = {}


def _graph(llm: LlmSpec, layers: int, key: tuple[object, ...], args: tuple[object, ...]) -> Program:
    """build() at ``layers`` deep (``key`` = repr(llm) and the settings) with the KV cells as named dimensions
    ("cells", "swa_cells"), its allocator decisions kept as a :class:`Program` (cached), the layer boundaries marked."""
    k = (layers, *key)
    g = _graphs.get(k)
    if g is None:
        if len(_graphs) >= GRAPH_CACHE:
            _graphs.clear()
        marks: list[int] = []
        deep = llm if layers == llm.num_layers else replace(llm, num_layers=layers)
        nodes, leafs = build(deep, "cells", *args, n_kv_swa="swa_cells", marks=marks)  # type: ignore[arg-type, misc]
        g = _graphs[k] = Program(nodes, leafs, marks)
    return g


def simulate(
    llm: LlmSpec,
    n_kv: int,
    u: int,
    flash_attention: bool,
    n_deepstack: int = 0,
    type_k: str = "f16",
    type_v: str = "f16",
    n_pos: int = 1,
    n_kv_swa: int | None = None,
    alignment: int = 32,
) -> int:
    """The compute buffer of :func:`build`'s graph under ggml-alloc (:func:`allocate_graph`), exactly, without
    building all of a deep model's layers, and without rebuilding a graph for another number of KV cells.

    Between two layer boundaries the graph repeats (every middle layer is built by the same code; a sliding-window
    model repeats its pattern; DeepStack models after their last DeepStack layer). The allocator is deterministic,
    so once its whole state at a boundary (free blocks, high-water mark, every allocated tensor's place) equals its
    state at an earlier boundary of the same kind, the layers in between repeat with that state forever: the
    model's buffer is the buffer of a shallower model whose last layer starts in the same state. A probe graph of
    a few layers finds the repetition; a model too shallow for it, or where none shows up, is simulated whole.
    Graphs are built once with the KV cells as a named dimension (the mask and KQ tensors) and their allocator
    decisions kept (:class:`Program`), so another context replays them only; results are cached."""
    args = (u, flash_attention, 1, n_deepstack, type_k, type_v, n_pos)
    sizes = {"cells": n_kv, "swa_cells": n_kv if n_kv_swa is None else n_kv_swa}
    key = (repr(llm), *args)
    done = _results.get((key, n_kv, sizes["swa_cells"], alignment))
    if done is None:
        if len(_results) >= RESULT_CACHE:
            _results.clear()
        done = _results[(key, n_kv, sizes["swa_cells"], alignment)] = _simulate(llm, key, args, sizes, n_deepstack, alignment)
    return done


def _simulate(
    llm: LlmSpec, key: tuple[object, ...], args: tuple[object, ...], sizes: dict[str, int], n_deepstack: int, alignment: int
) -> int:
    layers = llm.num_layers
    period = len(llm.sliding_window.pattern) if llm.family == "gpt-oss" and llm.sliding_window else 1
    first = max(1, n_deepstack + 1)  # the first boundary after which every layer but the last is alike
    for extra in PROBE_LAYERS:
        probe = first + extra * period
        if layers <= probe + 1:
            break
        states: list[tuple[object, ...]] = []
        probed = _graph(llm, probe, key, args).run(sizes, alignment, states)
        cycle = next(
            ((i, j) for i in range(first + 1, probe) for j in range(first, i) if (i - j) % period == 0 and states[i] == states[j]),
            None,
        )
        if cycle is not None:
            i, j = cycle
            # the boundary before the model's last layer is in the state of the probe's boundary m (j < m <= probe - 1,
            # m = the model's last boundary modulo the cycle): the model's buffer is that of an (m + 1)-layer graph,
            # which is the probe itself when m is its last boundary (always, for a cycle of one layer)
            m = probe - 1 - (probe - layers) % (i - j)
            if m == probe - 1:
                return probed
            layers = m + 1
            break
    return _graph(llm, layers, key, args).run(sizes, alignment)
