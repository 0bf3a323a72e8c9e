"""A path -> a ``FileModel``: the entry point that picks the reader (GGUF, config.json, model folder)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramcalc import runtimes
from vramcalc.errors import InputError
from vramcalc.quant import WeightBytes
from vramcalc.readers.common import slug
from vramcalc.readers.gguf import GgufHeader, has_gguf_magic, read_gguf_header
from vramcalc.readers.gguf_spec import check_offsets, gguf_llm, gguf_mmproj
from vramcalc.readers.hf_config import model_from_hf_config
from vramcalc.readers.safetensors import SafetensorsSummary, summarize_safetensors
from vramcalc.results import FixedWeights
from vramcalc.schema import LlmSpec, VisionEncoderSpec, VlmSpec, to_dict

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog


@dataclass
class FileModel:
    """A model read from the user's files, ready for ``estimate()``."""

    path: Path
    kind: str  # 'gguf' or 'hf'
    model: LlmSpec | VlmSpec
    llm: LlmSpec
    encoder: VisionEncoderSpec | None
    weights: FixedWeights | None  # exact weights where the files fix them
    quant: str | None  # GGUF file type (Q4_K_M ...) or the checkpoint dtype
    safetensors: SafetensorsSummary | None = None
    notes: list[str] = field(default_factory=list)

    def catalog(self, base: Catalog) -> Catalog:
        """``base`` with this model's parts added (they win over entries with the same id), for
        ``vlm_parts``/``estimate``; ``base`` is unchanged."""
        return base.overlay([spec for _, spec in self.entries()])

    def entries(self) -> list[tuple[str, Any]]:
        """(catalog folder, spec) for every entry ``import`` writes."""
        out: list[tuple[str, Any]] = [("llms", self.llm)]
        if self.encoder is not None:
            out.append(("encoders", self.encoder))
        if isinstance(self.model, VlmSpec):
            out.append(("vlms", self.model))
        return out


def load_model_files(
    path: str | Path, mmproj: str | Path | None = None, runtime: str = "llama.cpp", catalog: Catalog | None = None
) -> FileModel:
    """Read a model from a GGUF file (+ mmproj), a config.json, or a model folder.

    Args:
        path: a ``.gguf`` file, a ``config.json``, or a folder holding ``config.json`` (and
            ``*.safetensors``, whose headers give exact parameter counts and dtypes).
        mmproj: a llama.cpp vision projector GGUF for a VLM (with a GGUF ``path``).
        runtime: the runtime the estimate is for; safetensors weights are exact for transformers.
        catalog: where a config's parts named by id are looked up (an original-LLaVA config's
            ``mm_vision_tower``); None: no catalog, such a config is an error.

    Raises:
        InputError: a missing, truncated or corrupt file, or a model this reader does not know.
    """
    p = Path(path).expanduser()
    return checked_model(lambda: _load(p, mmproj, runtime, catalog), p)


def checked_model(read: Callable[[], FileModel], where: object) -> FileModel:
    """``read()``, with a failure of the arithmetic on a field taken at face value turned into an
    InputError naming ``where``, and the specs checked against the catalog's schema (for local files
    and for headers read from the Hub or an Ollama store alike)."""
    try:
        fm = read()
    except InputError:
        raise
    except OSError as e:  # unreadable (no permission), a name too long for the file system, an I/O error
        raise InputError(f"{_short(where) if isinstance(where, Path) else where}: cannot read: {e.strerror or e}.") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError, AttributeError) as e:
        # a field the readers take at face value broke the arithmetic (0 heads, a list for a number...)
        raise InputError(
            f"{_short(where) if isinstance(where, Path) else where}: corrupt or unsupported model file ({type(e).__name__}: {e})."
        ) from None
    _validate(fm)
    return fm


def _validate(fm: FileModel) -> None:
    """The specs read from the files pass the catalog's schema (positive sizes, known enums, ...), so
    a contradictory file is an error naming the field, never an estimate from garbage."""
    from pydantic import ValidationError

    from vramcalc.schema import errors, parse

    for _, spec in fm.entries():
        try:
            parse(type(spec), to_dict(spec))
        except ValidationError as e:
            field, msg = errors(e)[0]
            raise InputError(f"{fm.path}: {field}: {msg} (as read from the file).") from None
    if isinstance(fm.model, VlmSpec) and fm.encoder is not None:
        from vramcalc.validate import image_token_problems

        # the cross-checks `validate` makes of catalog VLMs (anyres pinpoints that are not whole tiles divided by zero)
        problems = image_token_problems(fm.model, fm.encoder)
        if problems:
            raise InputError(f"{fm.path}: {problems[0]} (as read from the file).")


def _short(p: Path) -> str:
    """A path as error messages show it: at most 120 characters (a 300-character name is cut)."""
    text = str(p)
    return text if len(text) <= 120 else text[:58] + "..." + text[-58:]


def load_json(path: Path, what: str, limit: int) -> Any:
    """A JSON file read whole, hostile input refused with one line naming the file: not a regular
    file, larger than ``limit`` bytes, not UTF-8, not JSON, nested too deeply, an integer of more
    digits than Python converts, or a key given twice (JSON parsers keep the last silently)."""
    try:
        size = _regular(path).stat().st_size
        if size > limit:
            raise InputError(f"{path}: {size:,} bytes is too large for {what} (at most {limit:,}).")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read as text: {getattr(e, 'strerror', None) or e}.") from None

    return parse_json(text, path, what)


def parse_json(text: str, where: object, what: str) -> Any:
    """JSON text (a file's or a download's), hostile input refused with one line naming ``where``:
    not JSON, nested too deeply, an integer of more digits than Python converts, or a key given
    twice (JSON parsers keep the last silently)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise InputError(f"{where}: the key {k[:60]!r} appears twice in one object (which value is meant?).")
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg} at line {e.lineno}).") from None
    except RecursionError:
        raise InputError(f"{where}: not a plausible {what}: JSON nested too deeply.") from None
    except ValueError as e:  # an integer longer than sys.get_int_max_str_digits() (4,300 digits)
        raise InputError(f"{where}: not a plausible {what}: {e}.") from None


#: The largest model.safetensors.index.json read whole: a choice (the index of a 405B-parameter
#: checkpoint lists about 2,000 tensors in under 200 KB).
MAX_INDEX_BYTES = 16 * 2**20


def _regular(p: Path) -> Path:
    """Only regular files are read: a FIFO or a device (/dev/zero) would block or never end."""
    if not p.is_file():
        raise InputError(f"{p}: not a regular file.")
    return p


#: The largest config.json read whole: a choice (real ones are a few KB; the largest reference config
#: in tests/fixtures/reference/hf_configs is under 20 KB), so a huge or endless file is refused.
MAX_CONFIG_BYTES = 16 * 2**20


def _load(p: Path, mmproj: str | Path | None, runtime: str, catalog: Catalog | None) -> FileModel:
    if not p.exists():
        raise InputError(f"{p}: no such file or folder.")
    if p.is_dir():
        ggufs = sorted(g for g in p.glob("*.gguf") if g.is_file())
        if (p / "config.json").is_file() and mmproj is None:
            return _from_config(p / "config.json", runtime, catalog)
        if len(ggufs) >= 1:
            # later parts of a split GGUF are read through the first one
            main = [g for g in ggufs if "mmproj" not in g.name.lower() and not re.search(r"-(?!00001)\d{5}-of-\d{5}\.gguf$", g.name)]
            proj = [g for g in ggufs if "mmproj" in g.name.lower()]
            if len(main) == 1:
                return _from_gguf(main[0], mmproj or (proj[0] if len(proj) == 1 else None))
            raise InputError(f"{p}: folder has no config.json and {len(main)} GGUF files; name the file to check.")
        raise InputError(f"{p}: folder has no config.json (nor a .gguf file).")
    _regular(p)
    if p.suffix.lower() == ".gguf" or has_gguf_magic(p):
        return _from_gguf(p, mmproj)
    if mmproj is not None:
        raise InputError(f"{p}: --mmproj goes with a .gguf language model; a Hugging Face config describes its vision tower itself.")
    if p.suffix.lower() == ".safetensors":
        cfg = p.parent / "config.json"
        if cfg.is_file():
            return _from_config(cfg, runtime, catalog)
        raise InputError(f"{p}: a safetensors file needs the model's config.json beside it.")
    return _from_config(p, runtime, catalog)


def _split_shards(h: GgufHeader) -> list[Path]:
    """Other shards of a split GGUF (model-00001-of-00003.gguf), by llama.cpp's naming."""
    count = h.metadata.get("split.count")
    if not isinstance(count, int) or count <= 1:
        return []
    m = re.search(r"-(\d{5})-of-(\d{5})\.gguf$", h.path.name)
    if not m:
        raise InputError(f"{h.path}: split GGUF ({count} parts) whose name does not follow -NNNNN-of-NNNNN.gguf.")
    out = []
    for i in range(1, count + 1):
        q = h.path.with_name(h.path.name[: m.start()] + f"-{i:05d}-of-{count:05d}.gguf")
        if q != h.path:
            if not q.is_file():
                raise InputError(f"{h.path}: part {i} of this split GGUF is missing: {q.name}.")
            out.append(q)
    return out


def _from_gguf(path: Path, mmproj: str | Path | None) -> FileModel:
    h = read_gguf_header(path)
    if h.architecture == "clip":
        raise InputError(f"{path}: this is a vision projector (mmproj) file; pass the language model GGUF and this one with --mmproj.")
    shards = [read_gguf_header(shard) for shard in _split_shards(h)]
    mh = None if mmproj is None else read_gguf_header(_regular(Path(mmproj).expanduser()))
    return gguf_file_model(h, shards, mh)


def gguf_file_model(h: GgufHeader, shards: list[GgufHeader], mh: GgufHeader | None) -> FileModel:
    """A model from GGUF headers, wherever they were read (a local file, range reads from the Hub or
    an Ollama registry, a cache): the first part's header, the other parts' headers of a split GGUF,
    and a vision projector's header."""
    path = h.path
    if h.architecture == "clip":
        raise InputError(f"{path}: this is a vision projector (mmproj) file; pass the language model GGUF and this one with --mmproj.")
    check_offsets(h)
    for sh in shards:
        check_offsets(sh)
        h.tensors.extend(sh.tensors)
    spec, exact, notes = gguf_llm(h)
    if h.metadata.get("split.count", 1) not in (None, 1):
        notes.append(f"Split GGUF: {h.metadata['split.count']} parts read.")
    if mh is None:
        return FileModel(path, "gguf", spec, spec, None, FixedWeights(llm=exact), exact.precision, notes=notes)
    enc, vlm, wb_vis, wb_proj = gguf_mmproj(mh, spec)
    return FileModel(path, "gguf", vlm, spec, enc, FixedWeights(llm=exact, vision=wb_vis, projector=wb_proj), exact.precision, notes=notes)


def _from_config(cfg_path: Path, runtime: str, catalog: Catalog | None) -> FileModel:
    cfg = load_json(cfg_path, "config.json", MAX_CONFIG_BYTES)
    if not isinstance(cfg, dict):
        raise InputError(f"{cfg_path}: a config.json is a JSON object, this is a {type(cfg).__name__}.")
    folder = cfg_path.parent
    # the folder's name (as downloaded: 'Llama-2-7b-hf'), else the file's stem
    name = folder.resolve().name if cfg_path.name == "config.json" else cfg_path.stem
    shards = sorted(s for s in folder.glob("*.safetensors") if s.is_file()) if cfg_path.name == "config.json" else []
    if shards:
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            data = load_json(index, "safetensors index", MAX_INDEX_BYTES)
            wmap = data.get("weight_map") if isinstance(data, dict) else None
            if not isinstance(wmap, dict) or not all(
                isinstance(v, str) and "/" not in v and v not in ("", ".", "..") for v in wmap.values()
            ):
                raise InputError(f"{index}: not a safetensors index: 'weight_map' must map tensor names to shard file names.")
            wanted = set(wmap.values())
            missing = sorted(w for w in wanted if not (folder / w).is_file())
            if missing:
                raise InputError(f"{index}: lists shards that are not in the folder: {', '.join(missing[:3])}.")
    summary = summarize_safetensors(shards) if shards else None
    return config_file_model(cfg, cfg_path, name, summary, runtime, catalog)


def config_json(text: str, where: object) -> dict[str, Any]:
    """A config.json's text as a JSON object (a one-line error naming ``where`` otherwise)."""
    cfg = parse_json(text, where, "config.json")
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: a config.json is a JSON object, this is a {type(cfg).__name__}.")
    return cfg


def config_file_model(
    cfg: dict[str, Any], cfg_path: Path, name: str, summary: SafetensorsSummary | None, runtime: str, catalog: Catalog | None
) -> FileModel:
    """A model from a config.json and the summary of its safetensors headers, wherever they were read
    (a local folder, the Hub, a cache); ``name`` gives the id (the folder's or repo's name)."""
    cm = model_from_hf_config(cfg, cfg_path, slug(name), name, catalog)
    notes: list[str] = []
    weights = None
    quant = None
    llm, model = cm.llm, cm.model
    if summary is not None:
        shards = summary.files
        dtype = summary.main_dtype
        quant = {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}.get(dtype)
        text_params = summary.params - summary.vision_params
        llm = dataclasses.replace(llm, published_params=text_params)
        if quant:
            llm = dataclasses.replace(llm, dtype=quant)  # type: ignore[arg-type]  # one of fp32 / fp16 / bf16
        if isinstance(model, VlmSpec):
            model = dataclasses.replace(model, published_params=summary.params)
        else:
            model = llm
        notes.append(f"{len(shards)} safetensors file(s): {summary.params:,} parameters, mostly {dtype}.")
        warn = _config_vs_tensors(cm.llm, text_params, dtype)
        if warn:
            notes.append(warn)
        if runtimes.get(runtime).weights_format == "checkpoint" and quant:
            # exact bytes of the checkpoint's tensors, as transformers loads them at their dtype
            wb = WeightBytes(quant, bytes=summary.bytes, params=summary.params, by_type=dict(summary.bytes_by_dtype))
            if summary.vision_params == 0:
                weights = FixedWeights(llm=wb)
    return FileModel(cfg_path, "hf", model, llm, cm.encoder, weights, quant, summary, notes)


def renamed(fm: FileModel, new_id: str) -> FileModel:
    """The same model under another catalog id (a VLM's parts get '-text' / '-vision' suffixes)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", new_id):
        raise InputError(f"--id '{new_id}': ids are lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.")
    if not isinstance(fm.model, VlmSpec):
        llm = dataclasses.replace(fm.llm, id=new_id)
        return FileModel(fm.path, fm.kind, llm, llm, None, fm.weights, fm.quant, fm.safetensors, fm.notes)
    llm = dataclasses.replace(fm.llm, id=new_id + "-text")
    enc = dataclasses.replace(fm.encoder, id=new_id + "-vision") if fm.encoder else None
    vlm = dataclasses.replace(fm.model, id=new_id, llm=llm.id, encoder=enc.id if enc else fm.model.encoder)
    return FileModel(fm.path, fm.kind, vlm, llm, enc, fm.weights, fm.quant, fm.safetensors, fm.notes)


def entry_data(spec: Any) -> dict[str, Any]:
    """A spec as a catalog YAML mapping: non-default fields only, but with the discriminator
    ``kind`` of nested unions (image_tokens) kept, so the entry validates when read back."""
    data = to_dict(spec, exclude_defaults=True, exclude={"kind"})
    if isinstance(spec, VlmSpec):
        tokens = to_dict(spec.image_tokens, exclude_defaults=True)
        data["image_tokens"] = {"kind": spec.image_tokens.kind, **tokens}
    return data


#: How far config.json's parameter count may be from the safetensors tensors before a warning: a
#: choice, wide enough for what the architecture model leaves out (rotary buffers, a padded
#: vocabulary), far below a config of another model (a 7B config beside a 0.5M-parameter file).
CONFIG_TENSORS_TOLERANCE = 0.10


def _config_vs_tensors(llm: LlmSpec, tensor_params: int, dtype: str) -> str | None:
    """A warning when config.json describes a model much larger or smaller than the safetensors
    files hold (the files are the truth for the weights; the config still sizes the KV cache).
    Only for float checkpoints: packed quantized tensors (GPTQ/AWQ in I32/U8) hold several weights
    per element."""
    from vramcalc.params import count_params

    if dtype not in ("BF16", "F16", "F32") or tensor_params <= 0:
        return None
    try:
        derived = count_params(llm).total
    except Exception:  # a spec the architecture model cannot count: no comparison
        return None
    if abs(derived / tensor_params - 1) <= CONFIG_TENSORS_TOLERANCE:
        return None
    return (
        f"Warning: config.json describes about {derived:,} text parameters but the safetensors files hold {tensor_params:,} "
        f"({derived / tensor_params:.3g}x): the config may belong to another model. Weights are the files'; "
        "KV cache and buffers follow the config."
    )
