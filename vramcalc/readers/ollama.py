"""Ollama models by tag (``qwen3:30b-a3b``, ``user/model:tag``): the local Ollama store first, then
the Ollama registry, reading only the GGUF headers of the model and projector layers.

An Ollama model is an OCI-style manifest whose layers are blobs by digest, each with a media type:
``application/vnd.ollama.image.model`` (the GGUF), ``...projector`` (the mmproj GGUF of a VLM),
``...params`` (JSON: ``num_ctx``, ...). The store keeps manifests under
``<models>/manifests/registry.ollama.ai/<namespace>/<model>/<tag>`` and blobs as
``<models>/blobs/sha256-<hex>``; the registry serves ``/v2/<namespace>/<model>/manifests/<tag>`` and
``/v2/<namespace>/<model>/blobs/<digest>`` (range requests for the headers). The registry has no
Python client: its two routes are read with the standard library's urllib.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramcalc.errors import InputError
from vramcalc.readers.common import MAX_TOKENS
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
    from collections.abc import Callable

    from vramcalc.readers.gguf import GgufHeader
    from vramcalc.readers.load import FileModel

REGISTRY_HOST = "registry.ollama.ai"
_MEDIA = "application/vnd.ollama.image."
#: Largest manifest or params blob read whole: a choice (real ones are under a few KB).
MAX_SMALL_BYTES = 1 << 20


@dataclass(frozen=True)
class OllamaRef:
    namespace: str
    model: str
    tag: str

    @property
    def label(self) -> str:
        base = self.model if self.namespace == "library" else f"{self.namespace}/{self.model}"
        return f"{base}:{self.tag}"


#: each part names a folder or file of the store, so it is at most 255 bytes (NAME_MAX of the common
#: file systems): a longer "tag" cannot be an Ollama model
_NAME = re.compile(
    r"(?:(?:registry\.ollama\.ai|ollama\.com)/)?(?:([a-z0-9][a-z0-9._-]{0,254})/)?([a-z0-9][a-z0-9._-]{0,254})"
    r"(?::([a-z0-9_][a-z0-9._-]{0,254}))?",
    re.I,
)


def parse_ollama_ref(text: str) -> OllamaRef | None:
    """``model``, ``model:tag``, ``namespace/model:tag`` (tag ``latest`` and namespace ``library`` by default)."""
    m = _NAME.fullmatch(text.strip())
    if not m:
        return None
    return OllamaRef((m.group(1) or "library").lower(), m.group(2).lower(), (m.group(3) or "latest").lower())


def store_roots() -> list[Path]:
    """``OLLAMA_MODELS``, else the user's ``~/.ollama/models`` (and, on Linux, the system service's
    ``/usr/share/ollama/.ollama/models``)."""
    env = os.environ.get("OLLAMA_MODELS")
    if env:
        return [Path(env).expanduser()]
    roots = [Path.home() / ".ollama" / "models"]
    if os.name == "posix":
        roots.append(Path("/usr/share/ollama/.ollama/models"))
    return roots


def _layers(manifest: Any, where: str) -> dict[str, dict[str, Any]]:
    """The manifest's layers by kind (model, projector, params), checked."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise InputError(f"{where}: not an Ollama manifest (no layers).")
    out: dict[str, dict[str, Any]] = {}
    for layer in manifest["layers"]:
        if not isinstance(layer, dict):
            continue
        media, digest = str(layer.get("mediaType", "")), str(layer.get("digest", ""))
        if media.startswith(_MEDIA) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            out.setdefault(media[len(_MEDIA) :], layer)
    if "model" not in out:
        raise InputError(f"{where}: the Ollama manifest has no model layer (an adapter-only or unsupported model).")
    return out


def _params(raw: bytes, where: str) -> dict[str, Any]:
    p = _json(raw, f"{where} params", "Ollama params layer")
    if not isinstance(p, dict):
        raise InputError(f"{where}: the params layer is not a JSON object.")
    return p


# --- the local store ------------------------------------------------------------------------------


def find_in_store(ref: OllamaRef) -> tuple[Path, Path] | None:
    """(models root, manifest file) of a tag in the local store, or None."""
    for root in store_roots():
        m = root / "manifests" / REGISTRY_HOST / ref.namespace / ref.model / ref.tag
        try:
            if m.is_file():
                return root, m
        except OSError:  # unreadable store folder: not there, as far as we can tell
            continue
    return None


def load_from_store(ref: OllamaRef, root: Path, manifest_path: Path) -> tuple[FileModel, ModelSource, dict[str, Any]]:
    from vramcalc.readers.gguf import read_gguf_header

    raw = _read_small(manifest_path)
    layers = _layers(_json(raw, str(manifest_path)), str(manifest_path))

    def blob(kind: str) -> Path:
        p = root / "blobs" / layers[kind]["digest"].replace(":", "-")
        if not p.is_file():
            raise InputError(f"{p}: the {kind} blob of {ref.label} is missing from the Ollama store.")
        return p

    params = _params(_read_small(blob("params")), ref.label) if "params" in layers else {}

    def header(kind: str, name: str) -> GgufHeader:
        return read_gguf_header(blob(kind), name=name)

    fm = _file_model(ref, layers, header)
    src = _source(ref, raw, [blob(k).name for k in ("model", "projector") if k in layers], cached=True, store=str(root))
    return fm, src, params


def _file_model(ref: OllamaRef, layers: dict[str, dict[str, Any]], header: Callable[[str, str], GgufHeader]) -> FileModel:
    """The model of a manifest's model layer and (a VLM's) projector layer, from ``header(kind, name)``."""
    from vramcalc.readers.load import checked_model, gguf_file_model

    def read() -> FileModel:
        h = header("model", f"{ref.model}-{ref.tag}.gguf")
        mh = header("projector", f"{ref.model}-{ref.tag}-mmproj.gguf") if "projector" in layers else None
        return gguf_file_model(h, [], mh)

    return checked_model(read, ref.label)


def _source(ref: OllamaRef, manifest: bytes, files: list[str], **kw: Any) -> ModelSource:
    """Where an Ollama model came from: its tag, and the manifest's digest as its commit."""
    commit = "sha256:" + hashlib.sha256(manifest).hexdigest()
    return ModelSource(kind="ollama", name=ref.label, repo=ref.label, revision=ref.tag, commit=commit, files=files, **kw)


def _read_small(p: Path) -> bytes:
    try:
        if p.stat().st_size > MAX_SMALL_BYTES:
            raise InputError(f"{p}: {p.stat().st_size:,} bytes is too large for an Ollama manifest or params blob.")
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}.") from None


def _json(raw: bytes, where: str, what: str = "Ollama manifest") -> Any:
    """A manifest or params blob, through the checked JSON loader (readers.load.parse_json: nesting,
    huge integers, repeated keys), after the size bound and the UTF-8 check; one line naming ``where``."""
    from vramcalc.readers.load import parse_json

    if len(raw) > MAX_SMALL_BYTES:
        raise InputError(f"{where}: {len(raw):,} bytes is too large for an {what} (at most {MAX_SMALL_BYTES:,}).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where}: not JSON (not UTF-8 text: an HTML page or a truncated answer?).") from None
    return parse_json(text, where, what)


# --- the registry ---------------------------------------------------------------------------------


def registry_url() -> str:
    """``VRAMCALC_OLLAMA_REGISTRY`` (tests, mirrors), else https://registry.ollama.ai."""
    return os.environ.get("VRAMCALC_OLLAMA_REGISTRY", f"https://{REGISTRY_HOST}").rstrip("/")


class _Http:
    """GETs on the registry with a timeout, counting requests and bytes."""

    def __init__(self, ref: OllamaRef):
        self.ref, self.traffic = ref, Traffic()
        traffic = self.traffic

        class CountingRedirects(urllib.request.HTTPRedirectHandler):
            """The registry redirects blobs to a CDN: each hop is a request (the Range header goes along)."""

            def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
                traffic.add(0)
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        self.opener = urllib.request.build_opener(CountingRedirects())

    def get(self, url: str, headers: dict[str, str], limit: int, what: str) -> tuple[int, bytes]:
        status, body, _ = self.get_final(url, headers, limit, what)
        return status, body

    def get_final(self, url: str, headers: dict[str, str], limit: int, what: str, cut: bool = False) -> tuple[int, bytes, str]:
        """``get``, and the URL that answered (after redirects). ``cut``: a body longer than
        ``limit`` is cut there, not refused (a range read from a server that sends the whole file)."""
        req = urllib.request.Request(url, headers={"User-Agent": "vramcalc", **headers})
        try:
            with self.opener.open(req, timeout=timeout_s()) as r:  # https, or the tests' loopback
                ctype = r.headers.get("Content-Type", "")
                declared = r.headers.get("Content-Length")
                status = r.status
                start = range_start(r.headers.get("Content-Range")) if status == 206 else None
                if start is not None and "Range" in headers and f"bytes={start}-" not in headers["Range"]:
                    self.traffic.add(0)
                    raise InputError(f"{self.ref.label}: the Ollama registry answered bytes from {start} for {what} ({headers['Range']}).")
                body = self._body(r, limit + 1, what)
                final = r.geturl()
        except urllib.error.HTTPError as e:
            self.traffic.add(0)
            if e.code == 404:
                raise RemoteNotFound(f"{self.ref.label}: not in the Ollama registry ({what}: HTTP 404).") from None
            if e.code in (401, 403):
                raise InputError(f"{self.ref.label}: the Ollama registry refused {what} (HTTP {e.code}): a private model?") from None
            raise InputError(f"{self.ref.label}: the Ollama registry answered HTTP {e.code} for {what}.") from None
        except TimeoutError:
            raise InputError(
                f"{self.ref.label}: the Ollama registry did not answer within {timeout_s():g} s "
                "(VRAMCALC_HTTP_TIMEOUT); try again or use --offline."
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise InputError(
                f"{self.ref.label}: cannot reach the Ollama registry at {registry_url()} ({reason}); check the network, or use --offline."
            ) from None
        self.traffic.add(len(body))
        if "html" in ctype.lower():
            raise InputError(f"{self.ref.label}: the Ollama registry answered an HTML page for {what}, not the {what}.")
        n_declared = header_int(declared)
        if n_declared is not None and len(body) < n_declared and len(body) <= limit:
            raise InputError(f"{self.ref.label}: the Ollama registry's answer for {what} is truncated ({len(body)} of {declared} bytes).")
        if len(body) > limit:
            if cut:
                return status, body[:limit], final
            raise InputError(f"{self.ref.label}: the Ollama registry's answer for {what} is larger than {limit:,} bytes.")
        return status, body, final

    def _body(self, r: Any, n: int, what: str) -> bytes:
        """Up to ``n`` bytes of the body, by the time ``body_deadline`` allows (a trickle is an error)."""
        deadline = body_deadline(n)
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = r.read1(min(n - got, 1 << 16))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
            if got < n and time.monotonic() > deadline:
                raise InputError(
                    f"{self.ref.label}: the Ollama registry sent {got:,} bytes of {what} too slowly (a stalled body); try again."
                )
        return b"".join(parts)


def load_from_registry(ref: OllamaRef, offline: bool) -> tuple[FileModel, ModelSource, dict[str, Any]]:
    cache = Cache("ollama")
    http = _Http(ref)
    base = f"{registry_url()}/v2/{ref.namespace}/{ref.model}"
    raw = cache.get_json(ref.namespace, ref.model, "tags", ref.tag, ttl=None if offline else REF_TTL_S)
    if not isinstance(raw, str):
        if offline:
            raise InputError(f"{ref.label}: offline, and nothing is cached for it (run once online to cache its headers).")
        accept = "application/vnd.docker.distribution.manifest.v2+json"
        _, body = http.get(f"{base}/manifests/{ref.tag}", {"Accept": accept}, MAX_SMALL_BYTES, "the manifest")
        raw = body.decode("utf-8", "replace")
        _layers(_json(body, f"{ref.label} manifest"), f"{ref.label} manifest")
        cache.put_json(raw, ref.namespace, ref.model, "tags", ref.tag)
    layers = _layers(_json(raw.encode(), f"{ref.label} manifest"), f"{ref.label} manifest")
    params: dict[str, Any] = {}
    if "params" in layers:
        d = layers["params"]["digest"]
        hit = cache.get_json("blobs", d)
        if not isinstance(hit, dict):
            if offline:
                raise InputError(f"{ref.label}: offline, and its params are not cached.")
            _, body = http.get(f"{base}/blobs/{d}", {}, MAX_SMALL_BYTES, "the params")
            hit = _params(body, ref.label)
            cache.put_json(hit, "blobs", d)
        params = hit

    header_reads: list[str] = []

    def header(kind: str, name: str) -> GgufHeader:
        layer = layers[kind]
        d, size = layer["digest"], layer.get("size")
        if not isinstance(size, int) or size <= 0:
            raise InputError(f"{ref.label}: the manifest gives no size for the {kind} layer.")
        url = f"{base}/blobs/{d}"

        def fetcher() -> Callable[[int, int], bytes]:
            target = [url]

            def fetch(off: int, n: int) -> bytes:
                status, body, final = http.get_final(target[0], {"Range": f"bytes={off}-{off + n - 1}"}, n, f"the {kind} blob", cut=True)
                if status != 206 and off > 0:
                    raise InputError(f"{ref.label}: the Ollama registry ignored the range request (HTTP {status}).")
                target[0] = final  # the registry redirects blobs to its CDN: later reads go there directly
                return body[:n]

            return fetch

        offline_error = f"{ref.label}: offline, and the header of its {kind} layer is not cached." if offline else None
        return cached_gguf_header(cache, ("blobs", d + ".gguf"), name, size, header_reads, offline_error, fetcher)

    fm = _file_model(ref, layers, header)
    src = _source(
        ref,
        raw.encode(),
        [f"{k} {layers[k]['digest'][:19]}" for k in ("model", "projector") if k in layers],
        bytes_read=http.traffic.bytes,
        requests=http.traffic.requests,
        cached=http.traffic.requests == 0,
        header_read=combine_header_reads(header_reads),
    )
    return fm, src, params


# --- Ollama's settings ----------------------------------------------------------------------------


#: Most parallel sequences taken from OLLAMA_NUM_PARALLEL: the bound of the CLI's --batch
#: (vramcalc.cli.options.MAX_BATCH); a larger value is ignored, as an unset one is.
MAX_PARALLEL = 4096


def ollama_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Workload settings Ollama would use for this model, from the manifest's params and the
    ``OLLAMA_*`` environment variables (only those that are set: Ollama's built-in defaults differ
    between versions and are not assumed here). Keys: Workload field names, plus ``from`` (where
    each came from)."""
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    ctx = params.get("num_ctx")
    env_ctx = os.environ.get("OLLAMA_CONTEXT_LENGTH", "")
    if type(ctx) is int and 0 < ctx <= MAX_TOKENS:  # not a bool (True is an int), not an absurd size
        out["context_tokens"], origin["context_tokens"] = ctx, "the model's num_ctx parameter"
    elif env_ctx.isdigit() and 0 < int(env_ctx) <= MAX_TOKENS:
        out["context_tokens"], origin["context_tokens"] = int(env_ctx), "OLLAMA_CONTEXT_LENGTH"
    par = os.environ.get("OLLAMA_NUM_PARALLEL", "")
    if par.isdigit() and 0 < int(par) <= MAX_PARALLEL:
        out["batch"], origin["batch"] = int(par), "OLLAMA_NUM_PARALLEL"
    fa = os.environ.get("OLLAMA_FLASH_ATTENTION", "").strip().lower()
    if fa in ("1", "true", "0", "false"):
        out["flash_attention"], origin["flash_attention"] = fa in ("1", "true"), "OLLAMA_FLASH_ATTENTION"
    kv = os.environ.get("OLLAMA_KV_CACHE_TYPE", "").strip().lower()
    if kv in ("f16", "q8_0", "q4_0"):
        out["kv_cache"], origin["kv_cache"] = kv, "OLLAMA_KV_CACHE_TYPE"
    if out:
        out["from"] = origin
    return out
