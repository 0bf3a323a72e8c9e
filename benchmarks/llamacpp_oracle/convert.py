"""Run llama.cpp's convert_hf_to_gguf.py with a synthetic vocabulary (no tokenizer files exist here).

Usage: python convert.py LLAMA_CPP_DIR MODEL_DIR OUTFILE [--mmproj]

Every text model class's ``set_vocab`` is replaced by one that writes a SentencePiece-style ("llama")
vocabulary of exactly ``vocab_size`` tokens (<unk>, <s>, </s>, the 256 byte tokens, then filler
pieces). Memory does not depend on the token strings; only the count sizes token_embd / output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    llama_dir, model_dir, outfile = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    extra = sys.argv[4:]
    sys.path.insert(0, str(llama_dir))
    sys.path.insert(1, str(llama_dir / "gguf-py"))
    import conversion

    conversion.load_all_models()  # import every model module so that every set_vocab is patched
    from conversion.base import TextModel

    cfg = json.loads((model_dir / "config.json").read_text())

    def n_vocab(self: TextModel) -> int:
        for src in (self.hparams, cfg.get("text_config") or {}, cfg):
            if isinstance(src, dict) and src.get("vocab_size"):
                return int(src["vocab_size"])
        raise SystemExit("no vocab_size")

    def set_vocab(self: TextModel) -> None:
        import gguf

        n = n_vocab(self)
        toks: list[bytes] = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
        types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
        i = 0
        while len(toks) < n:
            toks.append(f"\u2581t{i}".encode())
            types.append(gguf.TokenType.NORMAL)
            i += 1
        toks, types = toks[:n], types[:n]
        w = self.gguf_writer
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(toks)
        w.add_token_scores([-float(k) for k in range(n)])
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)

    def patch(cls: type) -> None:
        if "set_vocab" in cls.__dict__ or cls is TextModel:
            cls.set_vocab = set_vocab  # type: ignore[attr-defined]
        for sub in cls.__subclasses__():
            patch(sub)

    patch(TextModel)
    sys.argv = ["convert_hf_to_gguf.py", str(model_dir), "--outfile", outfile, "--outtype", "f16", *extra]
    sys.path.insert(0, str(llama_dir))
    import runpy

    runpy.run_path(str(llama_dir / "convert_hf_to_gguf.py"), run_name="__main__")


if __name__ == "__main__":
    main()
