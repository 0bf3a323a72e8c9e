"""A port of ggml-alloc's graph allocator (llama.cpp 0c1e57098, ggml/src/ggml-alloc.c), for the compute buffer.

llama.cpp sizes its compute buffer by running ggml-alloc over the worst-case graph without allocating
(``ggml_gallocr_reserve_n_size``): the buffer is the high-water mark (``max_size``) of a best-fit allocator
that frees each tensor after its last consumer and lets some ops write over their input. Where in the buffer
a tensor lands decides what can sit below the next big one, so the buffer is not a plain sum of live tensors.
This module is a line-by-line port of the parts that decide the size, on one chunk (a CPU or CUDA buffer type
has no maximum size short of SIZE_MAX, so ggml_dyn_tallocr never opens a second chunk):

- :class:`DynTallocr`: ``ggml_dyn_tallocr`` -- sizes padded to the buffer's alignment, a free-block list sorted
  by offset, best fit among every block *but the last* (the smallest block that fits; on ties the later
  one, ``block->size <= best_fit_size``), else the last block (which grows ``max_size``), merge with the
  neighbours on free;
- :func:`allocate_graph`: ``ggml_gallocr_alloc_graph_impl`` -- leafs first, then graph inputs, then the nodes
  in order; a node whose op may work in place (``ggml_op_can_inplace``) takes over a parent's memory when the
  parent is its own allocation, not an output, of the same layout (so of the same size:
  ``ggml_gallocr_free_extra_space`` has nothing to free), and this node is its only consumer; views (``view_src``) never
  allocate, and keep their source alive; a tensor is freed when its last consumer and view are done.

:class:`Program` keeps the decisions of one run (which are independent of the sizes) so that the same graph at
other sizes only replays them through :class:`DynTallocr`.

The port is checked against llama.cpp itself: the allocator's own trace (``AT_PRINTF``, see
benchmarks/llamacpp_oracle/README.md "Allocator traces") replayed event by event through :class:`DynTallocr`
reproduces every offset and the recorded compute buffer (tests/test_ggml_alloc.py).
"""

from __future__ import annotations

#: ggml-impl.h TENSOR_ALIGNMENT: the CPU buffer type's alignment (what the recorded runs, on the CPU backend, used);
#: ggml_dyn_tallocr rounds every size up to the buffer's alignment
TENSOR_ALIGNMENT = 32

#: ggml_op_can_inplace (ggml-alloc.c): ops that may write their result over a source
INPLACE_OPS = frozenset(
    {
        "FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB", "MUL", "DIV", "SQR",
        "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK", "RMS_NORM", "RMS_NORM_BACK", "CLAMP", "SOFT_MAX",
        "SOFT_MAX_BACK",
    }
)  # fmt: skip


def _pad(size: int, alignment: int) -> int:
    return (size + alignment - 1) // alignment * alignment


class DynTallocr:
    """ggml_dyn_tallocr on one chunk: ``blocks`` is the free list [offset, size], sorted by offset."""

    __slots__ = ("alignment", "blocks", "max_size")

    def __init__(self, alignment: int) -> None:
        self.alignment = alignment
        # ggml_dyn_tallocr_new_chunk: one free block from 0, as large as the buffer type allows
        self.blocks: list[list[int]] = [[0, 1 << 62]]
        self.max_size = 0

    def alloc(self, size: int) -> int:
        a = self.alignment
        size = (size + a - 1) // a * a
        blocks = self.blocks
        best = -1
        best_size = 1 << 63
        # the best fitting free block besides the last block (``<=``: a later block of the same size wins)
        for i in range(len(blocks) - 1):
            bs = blocks[i][1]
            if size <= bs <= best_size:
                best, best_size = i, bs
        if best == -1:
            # the last block (its size is effectively unbounded: it is the end of the chunk)
            best = len(blocks) - 1
        block = blocks[best]
        offset = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del blocks[best]
        if offset + size > self.max_size:
            self.max_size = offset + size
        return offset

    def free(self, offset: int, size: int) -> None:
        """ggml_dyn_tallocr_free_bytes: merge with the block that ends here or starts right after, else insert."""
        a = self.alignment
        size = (size + a - 1) // a * a
        blocks = self.blocks
        for i, block in enumerate(blocks):
            if block[0] + block[1] == offset:
                block[1] += size
                if i < len(blocks) - 1 and block[0] + block[1] == blocks[i + 1][0]:
                    block[1] += blocks[i + 1][1]
                    del blocks[i + 1]
                return
            if offset + size == block[0]:
                block[0] = offset
                block[1] += size
                if i > 0 and blocks[i - 1][0] + blocks[i - 1][1] == block[0]:
                    blocks[i - 1][1] += block[1]
                    del blocks[i]
                return
        i = 0
        while i < len(blocks) and blocks[i][0] < offset:
            i += 1
        blocks.insert(i, [offset, size])


class Tensor:
    """A ggml tensor as the allocator sees it. ``layout`` stands for (type, ne, nb): ggml_are_same_layout.

    (A plain slotted class, not a dataclass: this module is imported by every llama.cpp estimate.)"""

    __slots__ = (
        "allocated",
        "external",
        "is_input",
        "is_output",
        "layout",
        "n_children",
        "n_views",
        "name",
        "nbytes",
        "offset",
        "op",
        "scale",
        "srcs",
        "unit_bytes",
        "view_src",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        op: str,
        nbytes: int = 0,
        srcs: tuple[Tensor, ...] = (),
        view_src: Tensor | None = None,
        layout: tuple[object, ...] = (),
        external: bool = False,
        is_input: bool = False,
        is_output: bool = False,
    ) -> None:
        self.name = name
        self.op = op
        self.nbytes = nbytes
        self.srcs = srcs
        self.view_src = view_src
        self.layout = layout
        self.external = external  # data set outside this buffer (weights, the KV cache): never allocated here
        self.is_input = is_input  # GGML_TENSOR_FLAG_INPUT
        self.is_output = is_output  # GGML_TENSOR_FLAG_OUTPUT
        # a size proportional to a quantity set per run (llamacpp_graph: KV cells): nbytes = unit_bytes x it
        self.scale: str | None = None
        self.unit_bytes = 0
        # allocator state (hash_node)
        self.n_children = 0
        self.n_views = 0
        self.allocated = False
        self.offset = -1

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, {self.op}, {self.nbytes} bytes)"


def allocate_graph(
    nodes: list[Tensor],
    leafs: list[Tensor],
    alignment: int = TENSOR_ALIGNMENT,
    trace: list[str] | None = None,
    marks: list[int] | None = None,
    states: list[tuple[object, ...]] | None = None,
    events: list[tuple[int, object, object]] | None = None,
) -> int:
    """ggml_gallocr_reserve: the compute buffer size (``max_size``) for ``nodes`` in execution order.

    ``marks`` (node indices) with ``states``: before each marked node, the allocator's whole state is appended to
    ``states``: the free blocks, ``max_size`` and the (offset, size) of every tensor allocated at that point. What
    happens after a mark depends on that state and on the nodes that follow only (the allocator is deterministic),
    which llamacpp_graph.simulate uses to skip repeated layers. ``events``: every decision is appended as
    (0, tensor, None) allocate, (1, tensor, None) free, (2, tensor, parent) reuse the parent's memory, and
    (3, live tensors, None) at each mark (see :class:`Program`)."""
    talloc = DynTallocr(alignment)
    track = states is not None or events is not None
    live: dict[int, Tensor] = {}
    marked = set(marks or ()) if track else set()

    def allocate(t: Tensor) -> None:
        if t.external or t.allocated or t.view_src is not None:  # ggml_gallocr_is_allocated, or a view
            return
        t.allocated = True
        if t.op in INPLACE_OPS:
            for p in t.srcs:
                if not p.allocated:  # external, a view, or not own
                    continue
                if p.is_output or (p.view_src is not None and p.view_src.is_output):
                    continue
                if p.layout != t.layout:  # ggml_are_same_layout: type, ne, nb
                    continue
                if p.n_children == 1 and p.n_views == 0:
                    # (a view parent is never own here: views are not allocated by this port either)
                    t.offset = p.offset
                    p.allocated = False
                    if track:
                        del live[id(p)]
                        live[id(t)] = t
                    if events is not None:
                        events.append((2, t, p))
                    if trace is not None:
                        trace.append(f"reuse {p.name} -> {t.name} @{t.offset}")
                    return
        t.offset = talloc.alloc(t.nbytes)
        if track:
            live[id(t)] = t
        if events is not None:
            events.append((0, t, None))
        if trace is not None:
            trace.append(f"alloc {t.name} {_pad(t.nbytes, alignment)} @{t.offset}")

    def free(t: Tensor) -> None:
        if t.is_output:
            return
        talloc.free(t.offset, t.nbytes)
        t.allocated = False
        if track:
            del live[id(t)]
        if events is not None:
            events.append((1, t, None))
        if trace is not None:
            trace.append(f"free {t.name} @{t.offset}")

    for t in leafs:
        allocate(t)
    for node in nodes:
        if node.view_src is not None and node.op != "NONE":
            node.view_src.n_views += 1
        if node.is_input:
            allocate(node)
        for s in node.srcs:
            s.n_children += 1
            if s.is_input:
                allocate(s)
    for i, node in enumerate(nodes):
        if i in marked:
            if events is not None:
                events.append((3, tuple(live.values()), None))
            if states is not None:
                held = tuple(sorted((t.offset, t.nbytes) for t in live.values()))
                states.append((tuple(tuple(b) for b in talloc.blocks), talloc.max_size, held))
        for p in node.srcs:
            if not (p.external or p.allocated or p.view_src is not None):  # (allocate's own first test, inlined)
                allocate(p)
        if node.view_src is None:
            allocate(node)
        for p in node.srcs:
            p.n_children -= 1
            if p.n_children == 0 and p.n_views == 0:
                v = p.view_src
                if v is not None:
                    v.n_views -= 1
                    if v.n_views == 0 and v.n_children == 0 and v.allocated:
                        free(v)
                elif p.allocated:
                    free(p)
    return talloc.max_size


class Program:
    """One gallocr run over a graph, reduced to its decisions, to be replayed at other sizes.

    Which tensor is allocated, freed or written in place over which parent, and in what order, depends only on the
    graph (use counts, ops, layouts, output flags), not on the sizes: only the offsets ggml_dyn_tallocr picks do. A
    graph whose tensors are sized per run (``Tensor.scale``: llamacpp_graph's KV cells) is therefore allocated
    once, its decisions kept, and :meth:`run` replays them through :class:`DynTallocr` with each run's sizes:
    the same result as :func:`allocate_graph` on the graph sized that way (tests/test_ggml_alloc.py)."""

    __slots__ = ("held", "ops", "sizes")

    def __init__(self, nodes: list[Tensor], leafs: list[Tensor], marks: list[int] | None = None) -> None:
        events: list[tuple[int, object, object]] = []
        allocate_graph(nodes, leafs, marks=marks, events=events)
        index: dict[int, int] = {}
        #: per tensor: (fixed bytes, None) or (bytes per unit, the unit's name)
        self.sizes: list[tuple[int, str | None]] = []
        #: the tensors allocated at each mark
        self.held: list[tuple[int, ...]] = []

        def ix(t: object) -> int:
            assert isinstance(t, Tensor)
            k = index.get(id(t))
            if k is None:
                k = index[id(t)] = len(self.sizes)
                self.sizes.append((t.unit_bytes, t.scale) if t.scale is not None else (t.nbytes, None))
            return k

        #: (0 allocate | 1 free | 2 reuse b's memory | 3 mark number a, tensor a, parent b)
        self.ops: list[tuple[int, int, int]] = []
        for code, a, b in events:
            if code == 3:
                assert isinstance(a, tuple)
                self.ops.append((3, len(self.held), 0))
                self.held.append(tuple(ix(t) for t in a))
            else:
                self.ops.append((code, ix(a), ix(b) if b is not None else 0))

    def run(self, units: dict[str, int], alignment: int = TENSOR_ALIGNMENT, states: list[tuple[object, ...]] | None = None) -> int:
        """The buffer size with the scaled tensors sized by ``units``; ``states`` as in :func:`allocate_graph`."""
        size = [n if scale is None else n * units[scale] for n, scale in self.sizes]
        offset = [0] * len(size)
        talloc = DynTallocr(alignment)
        for code, a, b in self.ops:
            if code == 0:
                offset[a] = talloc.alloc(size[a])
            elif code == 1:
                talloc.free(offset[a], size[a])
            elif code == 2:
                offset[a] = offset[b]
            elif states is not None:
                held = tuple(sorted((offset[t], size[t]) for t in self.held[a]))
                states.append((tuple(tuple(blk) for blk in talloc.blocks), talloc.max_size, held))
        return talloc.max_size
