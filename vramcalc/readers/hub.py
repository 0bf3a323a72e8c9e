"""Models on the Hugging Face Hub, read by their headers through ``huggingface_hub``.

``huggingface_hub`` does every request (auth from ``HF_TOKEN`` / the login cache, ``HF_ENDPOINT``,
its error types): ``HfApi.model_info`` (commit + files with sizes, one request),
``hf_hub_download`` (config.json), ``HfApi.parse_safetensors_file_metadata`` (the header of
each safetensors shard by range request, as ``get_safetensors_metadata`` does shard by shard) and
range reads of ``resolve/`` URLs on its HTTP session for GGUF headers. What was read is cached
(``remote.Cache``) by repo, commit and file, so a second lookup makes no request.

``huggingface_hub`` is imported only when a Hub name is looked up, never for catalog ids.
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.readers.remote import (
    REF_TTL_S,
    Cache,
    ModelSource,
    RemoteNotFound,
    Traffic,
    body_deadline,
    cached_gguf_header,
    combine_header_reads,
    header_int,
    range_start,
    timeout_s,
)

if TYPE_CHECKING:
    from vramcalc.catalog import Catalog
    from vramcalc.readers.load import FileModel


@dataclass(frozen=True)
class HubRef:
    """A Hub model as people paste it: repo, precision (``:Q4_K_M``), revision (``@rev``), file."""

    repo: str
    quant: str | None = None
    revision: str | None = None
    file: str | None = None
    explicit: bool = False  # hf.co/ or a URL: surely the Hub


_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_PREFIX = re.compile(r"^(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/", re.I)


def parse_hub_ref(text: str) -> HubRef | None:
    """``org/name``, ``org/name:QUANT``, ``hf.co/org/name:QUANT``, ``https://huggingface.co/org/name``
    (also ``/tree/REV`` and ``/blob/REV/FILE`` URLs), each with an optional ``@REV``; None otherwise."""
    s = text.strip()
    m = _PREFIX.match(s)
    explicit = m is not None
    if m:
        s = s[m.end() :].rstrip("/")
    revision = file = quant = None
    u = re.fullmatch(r"([^/]+/[^/]+)/(?:tree|blob|resolve)/([^/]+)(?:/(.+))?", s)
    if u:
        s, revision, file = u.group(1), u.group(2), u.group(3)
    if "@" in s:
        s, revision = s.rsplit("@", 1)
        if ":" in revision:
            revision, quant = revision.split(":", 1)
    if ":" in s:
        s, quant = s.rsplit(":", 1)
    if not _REPO.fullmatch(s) or (revision is not None and not re.fullmatch(r"[\w./-]+", revision)):
        return None
    if quant is not None and not re.fullmatch(r"[\w.-]+", quant):
        return None
    return HubRef(s, quant or None, revision or None, file, explicit)


# --- GGUF files of a repo -----------------------------------------------------------------------

_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.I)
#: a GGUF precision in a file name (llama.cpp's file-type names: Q4_K_M, IQ4_XS, Q8_0, BF16, MXFP4 ...)
_QUANT_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|F16|F32|MXFP4(?:_MOE)?)(?![A-Za-z0-9])", re.I)
#: The precision picked when none is asked: llama.cpp's usual default (the runtime's, Q4_K_M) first,
#: then the nearest in bits per weight (a choice: the K-quant ladder around 4.5-5 bits, then the rest).
_PREFERRED = ["Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL", "Q4_0", "Q5_K_M", "Q5_K_S", "Q3_K_L", "Q3_K_M", "Q6_K", "Q8_0", "MXFP4"]
#: The mmproj picked when none is asked: f16 (the VLMs' mmproj default), then the others.
_MMPROJ_PREFERRED = ["F16", "BF16", "F32", "Q8_0"]


def gguf_quant_of(name: str) -> str | None:
    stem = _SPLIT.sub(".gguf", Path(name).name)
    found = _QUANT_IN_NAME.findall(stem)
    return found[-1].upper() if found else None


@dataclass(frozen=True)
class GgufChoice:
    quant: str | None
    parts: tuple[str, ...]  # the file, or every part of a split GGUF in order


def gguf_choices(files: dict[str, int]) -> tuple[list[GgufChoice], list[str]]:
    """The language-model GGUFs of a repo (split parts grouped) and its mmproj files."""
    mains: dict[str, list[str]] = {}
    mmproj = []
    for f in sorted(files):
        if not f.lower().endswith(".gguf"):
            continue
        if "mmproj" in Path(f).name.lower():
            mmproj.append(f)
            continue
        m = _SPLIT.search(f)
        key = f[: m.start()] if m else f
        mains.setdefault(key, []).append(f)
    return [GgufChoice(gguf_quant_of(parts[0]), tuple(parts)) for parts in mains.values()], mmproj


def pick_gguf(repo: str, choices: list[GgufChoice], quant: str | None, default: str | None) -> GgufChoice:
    if not choices:
        raise InputError(f"{repo}: the repo has no GGUF language model file.")
    by_quant: dict[str, GgufChoice] = {}
    for c in choices:
        by_quant.setdefault(c.quant or Path(c.parts[0]).name, c)
    if quant:
        q = quant.upper().replace("-", "_")
        if q in by_quant:
            return by_quant[q]
        have = ", ".join(sorted(by_quant))
        raise InputError(f"{repo} has no {quant} GGUF file; it has: {have}.")
    if len(choices) == 1:
        return choices[0]
    for q in [*([default.upper()] if default else []), *_PREFERRED]:
        if q in by_quant:
            return by_quant[q]
    return choices[0]


def pick_mmproj(mmproj: list[str], vision_quant: str | None) -> str | None:
    if not mmproj:
        return None
    want = [vision_quant.upper()] if vision_quant else _MMPROJ_PREFERRED
    for q in want:
        for f in mmproj:
            if gguf_quant_of(f) == q:
                return f
    if vision_quant:
        have = ", ".join(gguf_quant_of(f) or f for f in mmproj)
        raise InputError(f"no {vision_quant} mmproj file in the repo; it has: {have}.")
    return mmproj[0]


# --- huggingface_hub ------------------------------------------------------------------------------

_TRAFFIC = Traffic()
_CLIENT_SET = False


def _hub() -> Any:
    """huggingface_hub, with an HTTP client that has a timeout and counts requests and bytes."""
    global _CLIENT_SET
    try:
        import huggingface_hub

        try:
            import httpx2  # huggingface_hub 2.x
        except ImportError:  # 1.x used httpx, with the same API
            import httpx as httpx2  # type: ignore[no-redef,import-not-found]
    except ImportError as e:
        raise InputError(
            f"Reading models from the Hugging Face Hub needs the 'huggingface_hub' package ({e}); pip install huggingface_hub."
        ) from None
    if not _CLIENT_SET:

        def count(response: Any) -> None:
            n = 0 if response.request.method == "HEAD" else (header_int(response.headers.get("content-length")) or 0)
            _TRAFFIC.add(n)

        t = timeout_s()

        def factory() -> Any:
            return httpx2.Client(event_hooks={"response": [count]}, follow_redirects=True, timeout=httpx2.Timeout(t, connect=t))

        huggingface_hub.set_client_factory(factory)
        _CLIENT_SET = True
    return huggingface_hub


def _endpoint() -> str:
    import os

    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _explain(e: BaseException, repo: str, what: str) -> InputError:
    """One line for an error of huggingface_hub or of the network."""
    from huggingface_hub import errors as he

    name = type(e).__name__
    if isinstance(e, he.GatedRepoError):
        return InputError(
            f"{repo} is gated: accept its terms on https://huggingface.co/{repo} and log in "
            "(hf auth login, or set HF_TOKEN to a token with read access)."
        )
    if isinstance(e, he.RevisionNotFoundError):
        return RemoteNotFound(f"{repo}: no {what} on the Hub.")
    if isinstance(e, he.EntryNotFoundError):
        return RemoteNotFound(f"{repo}: no file {what} in the repo.")
    if isinstance(e, he.RepositoryNotFoundError):
        return RemoteNotFound(f"{repo}: no such model repo on the Hub (or it is private: log in with hf auth login or set HF_TOKEN).")
    if isinstance(e, he.OfflineModeIsEnabled):
        return InputError(f"{repo}: offline (HF_HUB_OFFLINE) and nothing cached for it.")
    if isinstance(e, he.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", "?")
        return InputError(f"{repo}: the Hub answered HTTP {status} for {what}.")
    if (isinstance(e, ValueError) and "JSON" in name) or "Expecting value" in str(e):
        return InputError(f"{repo}: the Hub's answer for {what} is not JSON (an HTML page from a proxy or a login portal?).")
    if name == "RemoteProtocolError" or "without sending complete message body" in str(e) or "IncompleteRead" in name:
        return InputError(f"{repo}: the Hub's answer for {what} was cut short (a truncated body: {str(e)[:160]}).")
    if "Timeout" in name:
        return InputError(f"{repo}: the Hub did not answer within {timeout_s():g} s (VRAMCALC_HTTP_TIMEOUT); try again or use --offline.")
    if isinstance(e, OSError) or "Connect" in name or "Network" in name or "Transport" in name or "Protocol" in name:
        return InputError(f"{repo}: cannot reach the Hub at {_endpoint()} ({name}: {e}); check the network, or use --offline.")
    if isinstance(e, (ValueError, KeyError, TypeError)):  # a body that is not the JSON asked for (an HTML page)
        return InputError(f"{repo}: the Hub's answer for {what} is not what was asked for ({name}: {str(e)[:120]}).")
    return InputError(f"{repo}: reading {what} from the Hub failed ({name}: {str(e)[:200]}).")


def _call(repo: str, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except InputError:
        raise
    except Exception as e:  # huggingface_hub and httpx errors, mapped to one line
        raise _explain(e, repo, what) from None


class HubRepo:
    """One repo at one commit: its files and sizes, read once (or from the cache)."""

    def __init__(self, ref: HubRef, offline: bool):
        self.ref, self.offline = ref, offline
        self.cache = Cache("hub")
        self.revision = ref.revision or "main"
        self.requests_before = _TRAFFIC.requests
        self.bytes_before = _TRAFFIC.bytes
        self.header_reads: list[str] = []
        is_commit = re.fullmatch(r"[0-9a-f]{40}", self.revision) is not None
        info = self.cache.get_json(ref.repo, "refs", self.revision, ttl=None if (offline or is_commit) else REF_TTL_S)
        cached = isinstance(info, dict) and isinstance(info.get("files"), dict) and isinstance(info.get("commit"), str)
        if info is None or not cached:  # missing, or a cached entry of another shape: a miss, never a crash
            if offline:
                raise InputError(f"{ref.repo}: offline, and nothing is cached for it (run once online to cache its headers).")
            hub = _hub()
            api = hub.HfApi(endpoint=_endpoint())
            mi = _call(
                ref.repo,
                f"revision {self.revision}",
                api.model_info,
                ref.repo,
                revision=self.revision,
                files_metadata=True,
                timeout=timeout_s(),
            )
            try:
                files = {s.rfilename: int(s.size or 0) for s in (mi.siblings or [])}
                commit = str(mi.sha)
            except (TypeError, ValueError, AttributeError) as e:
                raise InputError(f"{ref.repo}: the Hub's file list is not what was expected ({e}).") from None
            info = {"commit": commit, "files": files}
            self.cache.put_json(info, ref.repo, "refs", self.revision)
        self.commit: str = info["commit"]
        self.files: dict[str, int] = info["files"]

    @property
    def traffic(self) -> tuple[int, int]:
        return _TRAFFIC.requests - self.requests_before, _TRAFFIC.bytes - self.bytes_before

    def need(self, f: str) -> int:
        if f not in self.files:
            close = difflib.get_close_matches(f, list(self.files), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise InputError(f"{self.ref.repo}: no file {f} at {self.revision}.{hint}")
        return self.files[f]

    def text(self, f: str, limit: int = 16 * 2**20) -> str:
        """A small file (config.json) through hf_hub_download, cached."""
        size = self.need(f)
        if size > limit:
            raise InputError(f"{self.ref.repo}/{f}: {size:,} bytes is too large to read ({limit:,} at most).")
        hit = self.cache.get_json(self.ref.repo, self.commit, "text", f)
        if isinstance(hit, str):
            return hit
        if self.offline:
            raise InputError(f"{self.ref.repo}: offline, and {f} is not cached.")
        hub = _hub()
        local = _call(
            self.ref.repo,
            f,
            hub.hf_hub_download,
            self.ref.repo,
            f,
            revision=self.commit,
            endpoint=_endpoint(),
            etag_timeout=timeout_s(),
        )
        try:
            text = Path(local).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{self.ref.repo}/{f}: cannot read as text ({e}).") from None
        if text.lstrip().startswith("<"):
            raise InputError(f"{self.ref.repo}/{f}: the server answered an HTML page, not the file.")
        self.cache.put_json(text, self.ref.repo, self.commit, "text", f)
        return text

    def safetensors_header(self, f: str) -> dict[str, Any]:
        hit = self.cache.get_json(self.ref.repo, self.commit, "safetensors", f)
        if isinstance(hit, dict):
            return hit
        if self.offline:
            raise InputError(f"{self.ref.repo}: offline, and the header of {f} is not cached.")
        api = _hub().HfApi(endpoint=_endpoint())
        meta = _call(self.ref.repo, f, api.parse_safetensors_file_metadata, self.ref.repo, f, revision=self.commit, timeout=timeout_s())
        header: dict[str, Any] = {
            name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": list(t.data_offsets)} for name, t in meta.tensors.items()
        }
        end = max((v["data_offsets"][1] for v in header.values()), default=0)
        if end > self.files.get(f, end):
            raise InputError(f"{self.ref.repo}/{f}: its header declares {end:,} bytes of tensors but the file has {self.files[f]:,}.")
        self.cache.put_json(header, self.ref.repo, self.commit, "safetensors", f)
        return header

    def gguf_header(self, f: str) -> Any:
        """The GGUF header of a file in the repo, by range reads (or from the cache)."""
        size = self.need(f)
        repo = self.ref.repo

        def fetcher() -> Any:
            hub = _hub()
            url = hub.hf_hub_url(repo, f, revision=self.commit, endpoint=_endpoint())
            headers = hub.utils.build_hf_headers()
            target = [url, headers]

            def fetch(off: int, n: int) -> bytes:
                data, final = _call(repo, f, _range_get, hub, target[0], target[1], off, n, f"{repo}/{f}")
                if final != target[0]:
                    # resolve/ redirects LFS files to the CDN: later reads go there directly (one request
                    # each, not two); the Hub's token stays with the Hub's host (as the redirect does)
                    same_host = _host(final) == _host(url)
                    target[:] = [final, headers if same_host else {k: v for k, v in headers.items() if k.lower() != "authorization"}]
                return data

            return fetch

        offline = f"{repo}: offline, and the header of {f} is not cached." if self.offline else None
        return cached_gguf_header(self.cache, (repo, self.commit, "gguf", f), Path(f).name, size, self.header_reads, offline, fetcher)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def _range_get(hub: Any, url: str, headers: dict[str, str], off: int, n: int, f: str) -> tuple[bytes, str]:
    """Bytes off..off+n-1 of a file on the Hub, by one range request on huggingface_hub's session
    (redirects followed), and the URL that answered; never more than n bytes are taken from the body."""
    session = hub.get_session()
    with session.stream("GET", url, headers={**headers, "Range": f"bytes={off}-{off + n - 1}"}, timeout=timeout_s()) as r:
        if r.status_code >= 400:
            r.read()
            hub.utils.hf_raise_for_status(r)
        if "html" in r.headers.get("content-type", "").lower():
            raise InputError(f"{f}: the server answered an HTML page, not the file.")
        if r.status_code != 206 and off > 0:
            raise InputError(f"{f}: the server ignored the range request (HTTP {r.status_code}); vramcalc reads headers by range only.")
        start = range_start(r.headers.get("content-range")) if r.status_code == 206 else None
        if start is not None and start != off:
            raise InputError(f"{f}: the server answered bytes from {start} for a range from {off}.")
        out = bytearray()
        deadline = body_deadline(n)
        # counted: the bytes taken from the body, not the Content-Length the response hook counted (a
        # server that ignores the range declares the whole file, of which only the first n bytes are read)
        try:
            for chunk in r.iter_bytes():
                out += chunk
                if len(out) >= n:
                    break
                if time.monotonic() > deadline:
                    raise InputError(f"{f}: the server sent {len(out):,} of {n:,} bytes too slowly (a stalled body); try again.")
        finally:
            _TRAFFIC.bytes += len(out) - (header_int(r.headers.get("content-length")) or 0)
        final = str(r.url)
    return bytes(out[:n]), final


# --- A Hub repo -> a FileModel --------------------------------------------------------------------


def load_hub_model(
    ref: HubRef,
    *,
    quant: str | None,
    vision_quant: str | None,
    runtime: str,
    catalog: Catalog | None,
    offline: bool,
) -> tuple[FileModel, ModelSource]:
    """The model of a Hub repo from its headers: a GGUF repo (the file for the precision, its split
    parts, its mmproj) or a safetensors repo (config.json + the shards' headers)."""
    from vramcalc import runtimes
    from vramcalc.readers.load import checked_model

    repo = HubRepo(ref, offline)
    rt = runtimes.get(runtime)
    choices, mmproj = gguf_choices(repo.files)
    has_config = "config.json" in repo.files
    gguf_quant = ref.quant or (quant if quant and not has_config else None)
    use_gguf = (
        bool(choices)
        and (ref.file is None or ref.file.lower().endswith(".gguf"))
        and (not has_config or rt.weights_format == "gguf" or ref.quant is not None)
    )
    label = f"{ref.repo}"
    if use_gguf:
        if ref.file:
            repo.need(ref.file)
            choice = next((c for c in choices if ref.file in c.parts), GgufChoice(gguf_quant_of(ref.file), (ref.file,)))
        else:
            choice = pick_gguf(ref.repo, choices, gguf_quant or quant, None)
        proj = pick_mmproj(mmproj, vision_quant)
        files = [*choice.parts, *([proj] if proj else [])]

        def read() -> FileModel:
            from vramcalc.readers.load import gguf_file_model

            heads = [repo.gguf_header(p) for p in choice.parts]
            mh = repo.gguf_header(proj) if proj else None
            return gguf_file_model(heads[0], heads[1:], mh)

        fm = checked_model(read, f"{label}/{choice.parts[0]}")
    else:
        if not has_config:
            raise InputError(f"{ref.repo}: the repo has neither a GGUF file nor a config.json; vramcalc reads one of them.")
        shards = sorted(f for f in repo.files if f.endswith(".safetensors") and "/" not in f)
        files = ["config.json", *shards]

        def read() -> FileModel:
            from vramcalc.readers.load import config_file_model, config_json
            from vramcalc.readers.safetensors import summarize_safetensors_headers

            cfg = config_json(repo.text("config.json"), f"{label}/config.json")
            summary = summarize_safetensors_headers([(Path(s), repo.safetensors_header(s)) for s in shards]) if shards else None
            name = ref.repo.split("/")[1]
            return config_file_model(cfg, Path(name) / "config.json", name, summary, runtime, catalog)

        fm = checked_model(read, f"{label}/config.json")
        if "preprocessor_config.json" in repo.files:
            fm.notes.append("preprocessor_config.json is not read: image sizes come from config.json and the VLM's defaults.")
    n_req, n_bytes = repo.traffic
    src = ModelSource(
        kind="hf",
        name=ref.repo,
        repo=ref.repo,
        revision=repo.revision,
        commit=repo.commit,
        files=files,
        bytes_read=n_bytes,
        requests=n_req,
        cached=n_req == 0,
        header_read=combine_header_reads(repo.header_reads),
    )
    return fm, src
