"""Loopback servers for the Hub and Ollama tests: a minimal fake Hugging Face Hub and a fake Ollama
registry, real HTTP servers (http.server in a thread on 127.0.0.1, port 0).

The fake Hub serves the routes huggingface_hub 2.x calls (read in its source: hf_api.model_info ->
GET /api/models/{repo}/revision/{rev}?blobs=True; file_download.get_hf_file_metadata -> HEAD
/{repo}/resolve/{rev}/{file}, reading X-Repo-Commit, ETag / X-Linked-Etag, Content-Length;
parse_safetensors_file_metadata -> GET with ``Range: bytes=0-100000``; utils._http.hf_raise_for_status
-> the X-Error-Code header: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo). Files are
served from disk (sparse files written by the tests) with Range support; every request is logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    sent: int


@dataclass
class FakeRepo:
    commit: str
    files: dict[str, Path]  # path in the repo -> file on disk
    gated: bool = False


@dataclass
class Behaviour:
    """Faults the tests switch on: an HTML page, a truncated body, a stall."""

    html: bool = False
    truncate: bool = False
    stall_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeServer

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def handle(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            super().handle()

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, ctype: str = "application/json") -> None:
        b = self.owner.behaviour
        if b.stall_s:
            time.sleep(b.stall_s)
        if b.html:
            body, ctype, status = b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html; charset=utf-8", 200
            headers = {}
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        sent = 0
        if self.command != "HEAD":
            if b.truncate and len(body) > 16:
                body = body[: len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)
            sent = len(body)
        self.owner.log.append(Logged(self.command, self.path, self.headers.get("Range"), sent))

    def _error(self, status: int, code: str | None, msg: str) -> None:
        h = {"X-Error-Message": msg}
        if code:
            h["X-Error-Code"] = code
        self._send(status, json.dumps({"error": msg}).encode(), h)

    def _redirect(self, location: str, extra: dict[str, str]) -> None:
        self.send_response(302 if self.owner.__class__.__name__ == "FakeHub" else 307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.owner.log.append(Logged(self.command, self.path, self.headers.get("Range"), 0))

    def _file(self, path: Path, extra: dict[str, str]) -> None:
        size = path.stat().st_size
        rng = self.headers.get("Range")
        status, start, end = 200, 0, size - 1
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m:
                return self._error(416, None, "bad range")
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if start >= size:
                return self._error(416, None, "range not satisfiable")
            status = 206
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1) if self.command != "HEAD" else b""
        headers = {**extra, "Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if self.command == "HEAD":
            self.send_response(status)
            self.send_header("Content-Length", str(end - start + 1))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.owner.log.append(Logged("HEAD", self.path, rng, 0))
            return None
        return self._send(status, body, headers, ctype="application/octet-stream")


class FakeServer:
    def __init__(self, handler: type[_Base]):
        self.log: list[Logged] = []
        self.behaviour = Behaviour()
        cls = type("Handler", (handler,), {"owner": self})
        self.httpd = _Server(("127.0.0.1", 0), cls)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def stats(self) -> tuple[int, int]:
        """(requests, body bytes sent) since the last ``reset``."""
        return len(self.log), sum(e.sent for e in self.log)

    def reset(self) -> None:
        self.log.clear()


# --- the fake Hub -------------------------------------------------------------------------------------


class _HubHandler(_Base):
    owner: FakeHub

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            return self._model_info(m.group(1), m.group(2) or "main")
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve(m.group(1), m.group(2), m.group(3))
        m = re.fullmatch(r"/cdn/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)", path)
        if m:
            return self._cdn(m.group(1), m.group(2), m.group(3))
        return self._error(404, None, "no such route")

    def _repo(self, repo: str, rev: str) -> FakeRepo | None:
        r = self.owner.repos.get(repo)
        if r is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if r.gated:
            self._error(403, "GatedRepo", "Access to model is restricted. You must have access to it and be authenticated.")
            return None
        if rev not in ("main", r.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return r

    def _model_info(self, repo: str, rev: str) -> None:
        r = self._repo(repo, rev)
        if r is None:
            return
        siblings = [{"rfilename": f, "size": p.stat().st_size} for f, p in sorted(r.files.items())]
        body = {"_id": "x", "id": repo, "modelId": repo, "sha": r.commit, "private": False, "gated": False, "siblings": siblings}
        self._send(200, json.dumps(body).encode())

    def _resolve(self, repo: str, rev: str, f: str) -> None:
        r = self._repo(repo, rev)
        if r is None:
            return
        p = r.files.get(f)
        if p is None:
            return self._error(404, "EntryNotFound", f"{f} does not exist on {rev}")
        etag = hashlib.sha256(f.encode() + r.commit.encode()).hexdigest()
        if f.endswith((".gguf", ".safetensors")):  # LFS files: the Hub redirects to its CDN
            return self._redirect(
                f"/cdn/{repo}/{r.commit}/{f}",
                {"X-Repo-Commit": r.commit, "X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(p.stat().st_size)},
            )
        return self._file(p, {"X-Repo-Commit": r.commit, "ETag": f'"{etag}"'})

    def _cdn(self, repo: str, commit: str, f: str) -> None:
        r = self.owner.repos.get(repo)
        p = r.files.get(f) if r is not None and r.commit == commit else None
        if p is None:
            return self._error(404, None, "no such object")
        return self._file(p, {})


class FakeHub(FakeServer):
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        super().__init__(_HubHandler)

    def add(self, repo: str, files: dict[str, Path], gated: bool = False) -> FakeRepo:
        commit = hashlib.sha1(repo.encode()).hexdigest()
        self.repos[repo] = FakeRepo(commit, dict(files), gated)
        return self.repos[repo]


# --- the fake Ollama registry -------------------------------------------------------------------------


class _OllamaHandler(_Base):
    owner: FakeOllama

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlparse(self.path).path)
        m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)", path)
        if m:
            body = self.owner.manifests.get((m.group(1), m.group(2), m.group(3)))
            if body is None:
                return self._error(404, None, "manifest unknown")
            return self._send(200, body, ctype="application/vnd.docker.distribution.manifest.v2+json")
        m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/blobs/(sha256:[0-9a-f]{64})", path)
        if m:
            if m.group(3) not in self.owner.blobs:
                return self._error(404, None, "blob unknown")
            return self._redirect(f"/cdn/blobs/{m.group(3)}", {})  # the registry redirects blobs to its CDN
        m = re.fullmatch(r"/cdn/blobs/(sha256:[0-9a-f]{64})", path)
        if m and m.group(1) in self.owner.blobs:
            return self._file(self.owner.blobs[m.group(1)], {"Docker-Content-Digest": m.group(1)})
        return self._error(404, None, "no such route")


class FakeOllama(FakeServer):
    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str, str], bytes] = {}
        self.blobs: dict[str, Path] = {}
        super().__init__(_OllamaHandler)


@dataclass
class OllamaModel:
    """An Ollama model: its manifest (bytes) and blobs (digest -> file)."""

    manifest: bytes
    blobs: dict[str, Path] = field(default_factory=dict)


def sha256_file(p: Path) -> str:
    """A digest for a blob: sha256 of its name, size and first 64 KiB (hashing a multi-GB sparse file
    would take the test seconds; vramcalc never checks blob digests, it reads headers only)."""
    h = hashlib.sha256(f"{p.name}:{p.stat().st_size}".encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 16))
    return "sha256:" + h.hexdigest()


def ollama_model(model: Path, projector: Path | None = None, params: dict | None = None, work: Path | None = None) -> OllamaModel:
    """A manifest as Ollama writes one (schemaVersion 2, layers by mediaType application/vnd.ollama.image.*)."""
    layers = []
    blobs: dict[str, Path] = {}
    for media, p in (("model", model), ("projector", projector)):
        if p is None:
            continue
        d = sha256_file(p)
        blobs[d] = p
        layers.append({"mediaType": f"application/vnd.ollama.image.{media}", "digest": d, "size": p.stat().st_size})
    if params is not None:
        assert work is not None
        pp = work / "params.json"
        pp.write_text(json.dumps(params))
        d = sha256_file(pp)
        blobs[d] = pp
        layers.append({"mediaType": "application/vnd.ollama.image.params", "digest": d, "size": pp.stat().st_size})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": layers,
    }
    return OllamaModel(json.dumps(manifest).encode(), blobs)
