"""The tiny llama GGUF shared by test_files.py, test_ux_snapshots.py and test_llamacpp_placement.py."""

from __future__ import annotations

from pathlib import Path

from gguf_fixtures import llama_tensors, write_gguf

# tiny llama: 2 layers, hidden 256, 4 heads of 64, 2 KV heads, FFN 512, vocab 1000
TINY = dict(n_layers=2, hidden=256, heads=4, kv_heads=2, ff=512, vocab=1000)
TINY_META = {
    "block_count": 2,
    "context_length": 2048,
    "embedding_length": 256,
    "feed_forward_length": 512,
    "attention.head_count": 4,
    "attention.head_count_kv": 2,
    "general.name": "Tiny Llama",
}


def tiny_llama(path: Path, **kw) -> Path:
    tensors = llama_tensors(**TINY, types={}, **kw)
    return write_gguf(path, "llama", TINY_META, tensors, file_type=15)  # 15 = LlamaFileType.MOSTLY_Q4_K_M
