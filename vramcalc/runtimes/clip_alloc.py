"""ggml-alloc replayed over llama.cpp's Qwen2.5-VL clip graph with flash attention.

The clip compute buffer is the high-water mark of ggml-alloc (ggml/src/ggml-alloc.c, llama.cpp 0c1e57098) over the
graph of tools/mtmd/models/qwen2vl.cpp. With flash attention on, Qwen2.5-VL's buffer is not one live set plus a
constant: which freed block a tensor lands in (the allocator's best fit) depends on the sizes, and the f16 window mask,
its per-layer copies, the f16 K/V copies and the window reordering leave holes whose reuse changes with the image.
Instead of fitting that, this module replays the allocator itself:

- ``ggml_alloc.DynTallocr`` is ``ggml_dyn_tallocr`` for one chunk (a CPU compute buffer is one chunk): ``alloc`` takes the smallest
  free block that fits among all but the last (``best_fit_size``), else the last block, which grows the buffer;
  ``free`` merges with the neighbouring free blocks; sizes are rounded up to the buffer alignment (32 bytes on the CPU
  backend).
- The allocation order is the graph's: ``ggml_gallocr_alloc_graph_impl`` allocates each node (or reuses a parent in
  place) and frees a parent when its last consumer has run. That order does not depend on the image size (in-place
  reuse depends on layouts and child counts only), so it is written below as a program of allocations and frees,
  read from ggml-alloc's own trace (``AT_PRINTF`` enabled in a copy of ggml-alloc.c, llama-mtmd-cli on the recorded
  Qwen2.5-VL-7B oracle model with ``-fa on``: benchmarks/llamacpp_oracle/README.md, "Live sets"), and checked event by
  event (every offset equal) at 336x336, 448x448 and 640x480.

Tensor sizes, for N patches of a ``hidden``-wide tower with an ``inter``-wide gated FFN (f32 unless said):

=======  ===============================================================  ==============================
class    tensor                                                           bytes
=======  ===============================================================  ==============================
img      ``inp_raw``, the image                                           N x patch^2 x channels x 4
col      ``im2col`` of each of the two patch convolutions (f16 kernels)   N x patch^2 x channels x 2
pos      M-RoPE ``positions`` (4 int32 per patch)                         N x 16
idx      ``inv_window_idx`` / ``window_idx`` (one int32 per merged token)  N / 4 x 4
m32      ``window_mask`` (the input)                                      N^2 x 4
m16      the mask cast to f16 once, and its copy in each window layer     N^2 x 2
act      a hidden state (also the merger's first output: 4 x hidden wide  N x hidden x 4
         on N / 4 rows)
h16      the f16 copies of K and V for ``flash_attn_ext``                 N x hidden x 2
ffn      FFN gate, up and their SwiGLU product                            N x inter x 4
out      the merger's output and its window reordering (LLM width)        N / 4 x llm_hidden x 4
=======  ===============================================================  ==============================
"""

from __future__ import annotations

from vramcalc.runtimes.ggml_alloc import TENSOR_ALIGNMENT, DynTallocr

# The program: "CLASS:name" allocates a tensor of that size class and names it; "-name" frees it. Names are local
# to one block except the graph inputs (img, pos, iw, widx, m32, m16) and ``res``, the residual stream a layer hands to
# the next; a second ``res`` while one is alive queues behind it ("-res" frees the oldest).
#: the patch embedding (two Conv2d as im2col + mul_mat, added), the merge of 2x2 patches, the window reordering
_PROLOGUE = (
    "img:img idx:iw pos:pos m32:m32 idx:widx col:c0 act:p0 -c0 act:t0 -p0 col:c1 -img act:p1 -c1 act:t1 -p1 -t1"
    " act:s0 -t0 act:s1 -s0 act:res -s1 -iw"
)
#: one encoder layer: ln1, q, rope(q), k, rope(k), v, the f16 K/V copies, [the window layers' f16 mask copy],
#: flash_attn_ext, the output projection (+ the residual in place), ln2, gate, up, swiglu, down (+ the residual)
_LAYER = (
    "act:a act:b act:c -b act:d act:e -d act:f -a h16:g -e h16:h -f {mask} act:j -c -g -h {unmask}"
    "act:res -j -res act:l ffn:m ffn:n -l ffn:o -m -n act:p -o -p"
)
#: the post-norm (in place), the merger (mm.0 on 4 patches' concatenated states, GELU in place, mm.1), window_idx
_EPILOGUE = "act:x -res out:y -x out:z -y -widx"


def qwen25_flash_program(n_layer: int, n_wa_pattern: int) -> list[str]:
    """The allocation program of the Qwen2.5-VL clip graph with flash attention: layer ``il`` attends over the
    whole image when ``(il + 1) % n_wa_pattern == 0`` (qwen2vl.cpp ``full_attn``), else within windows under the mask.
    The first window layer casts the f32 mask to f16 (then frees it), the last one frees that cast; the last layer's
    K rope is the last reader of the positions."""
    window = [il for il in range(n_layer) if (il + 1) % n_wa_pattern != 0]
    prog = _PROLOGUE.split()
    for il in range(n_layer):
        if il in window:
            first = "m16:m16 -m32 " if il == window[0] else ""
            mask, unmask = first + "m16:i", "-i "
            if il == window[-1]:
                mask += " -m16"
        else:
            mask, unmask = "", ""
        layer = _LAYER.format(mask=mask, unmask=unmask).split()
        if il == n_layer - 1:
            layer.insert(layer.index("-d") + 1, "-pos")
        prog += layer
    return prog + _EPILOGUE.split()


def replay(program: list[str], sizes: dict[str, int], offsets: list[int] | None = None) -> int:
    """The buffer size ggml-alloc reaches running ``program`` (see ``qwen25_flash_program``) with these class sizes;
    ``offsets``, when given, receives the offset of each allocation in order (to compare with ggml-alloc's trace)."""
    t = DynTallocr(TENSOR_ALIGNMENT)
    live: dict[str, list[tuple[int, int]]] = {}
    for step in program:
        if step[0] == "-":
            off, size = live[step[1:]].pop(0)
            t.free(off, size)
        else:
            cls, name = step.split(":")
            size = sizes[cls]
            off = t.alloc(size)
            live.setdefault(name, []).append((off, size))
            if offsets is not None:
                offsets.append(off)
    return t.max_size


def qwen25_flash_sizes(n: int, hidden: int, inter: int, patch: int, channels: int, llm_hidden: int) -> dict[str, int]:
    """The size classes of the module docstring for ``n`` patches."""
    return {
        "img": n * patch * patch * channels * 4,
        "col": n * patch * patch * channels * 2,
        "pos": n * 16,
        "idx": n // 4 * 4,
        "m32": n * n * 4,
        "m16": n * n * 2,
        "act": n * hidden * 4,
        "h16": n * hidden * 2,
        "ffn": n * inter * 4,
        "out": n // 4 * llm_hidden * 4,
    }


def qwen25_flash_bytes(n: int, hidden: int, inter: int, patch: int, channels: int, llm_hidden: int, n_layer: int, n_wa_pattern: int) -> int:
    """Qwen2.5-VL clip compute buffer with flash attention for ``n`` patches (llama.cpp 0c1e57098, CPU backend)."""
    sizes = qwen25_flash_sizes(n, hidden, inter, patch, channels, llm_hidden)
    return replay(qwen25_flash_program(n_layer, n_wa_pattern), sizes)
