"""A small Hugging Face Hub-compatible HTTP server for tests (standard library only).

It speaks the part of the Hub protocol that `huggingface_hub` 2.x uses to download files
(see ../shared/REFERENCE.md §2 and huggingface_hub's `file_download.py`):

- `HEAD`/`GET /{repo_id}/resolve/{revision}/{filename}` (prefix `datasets/` or `spaces/` for
  those repo types) with `X-Repo-Commit`, `ETag` (the file's sha256 in quotes, which the client
  uses as the blob name) and `Content-Length`; `Range: bytes=N-` / `bytes=N-M` answered with
  `206` + `Content-Range`.
- Errors as the client decodes them: `X-Error-Code: RepoNotFound` (401, what the Hub answers an
  anonymous client), `GatedRepo` (401), `RevisionNotFound` (404), `EntryNotFound` (404, with the
  commit header so the client can cache the absence).
- `GET /api/models/{repo}/revision/{rev}` (JSON with `sha` and `siblings`) and
  `GET /api/models/{repo}/tree/{commit}[/{path}]` (JSON list of `{"type","path","size","oid"}`).

Repos live in a folder as `root/<repo_id>/<commit>/<files>` plus `root/<repo_id>/refs.json`
(branch -> commit). Every request is counted per (method, path). Faults can be injected per file:
an HTML page instead of the file, a connection dropped part-way, a short body, a delay, an HTTP
error. Use `HubServer(root)` as a context manager, or the `hub_server` / `hub_env` fixtures
(tests/conftest.py).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["Fault", "HubServer"]

HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Google Drive - Virus scan warning</title></head>"
             b"<body><p>Google Drive can't scan this file for viruses.</p></body></html>\n")


@dataclass
class Fault:
    """A misbehaviour for one file, applied to its next `times` GET requests (HEAD follows along).

    kind:
        "html"     serve an HTML page (HEAD and GET agree on it, as a misconfigured mirror would)
        "drop"     send the full Content-Length header, `after_bytes` of the body, then close
        "truncate" send a complete response whose body (and Content-Length) is `after_bytes` long
        "slow"     wait `delay` seconds before answering
        "status"   answer the GET with HTTP `status` (HEAD answers normally)
    """
    kind: str
    times: int = 1
    after_bytes: int | None = None  # None = half the file
    delay: float = 0.0
    status: int = 500


class HubServer:
    """Serve Hub repos from `root` on 127.0.0.1 at a random port.

    Attributes:
        endpoint: base URL, e.g. "http://127.0.0.1:41234".
        requests: Counter of (method, path) for every request received.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: Counter[tuple[str, str]] = Counter()
        self.gated: set[str] = set()
        self._faults: dict[tuple[str, str], Fault] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> "HubServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hubserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- content -------------------------------------------------------------------------
    def commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main",
               repo_type: str = "model") -> str:
        """Add a commit holding `files` (plus the branch's previous files) and move `branch` to it.

        Returns the 40-hex commit id.
        """
        repo_dir = self._repo_dir(repo_id, repo_type)
        refs = self._refs(repo_dir)
        parent = refs.get(branch)
        merged: dict[str, bytes] = {}
        if parent is not None:
            base = repo_dir / parent
            merged = {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}
        merged.update(files)
        digest = hashlib.sha1(f"{repo_id}\0{parent}\0{len(refs)}\0".encode())
        for name in sorted(merged):
            digest.update(name.encode() + b"\0" + hashlib.sha256(merged[name]).digest())
        sha = digest.hexdigest()
        for name, data in merged.items():
            target = repo_dir / sha / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        refs[branch] = sha
        (repo_dir / "refs.json").write_text(json.dumps(refs))
        return sha

    def add_repo(self, repo_id: str, *, repo_type: str = "model", gated: bool = False) -> None:
        """Create an empty repo (a gated one answers every file request with GatedRepo)."""
        self._repo_dir(repo_id, repo_type).mkdir(parents=True, exist_ok=True)
        if gated:
            self.gated.add(repo_id)

    def inject(self, repo_id: str, filename: str, fault: Fault) -> None:
        """Apply `fault` to the next requests for `filename` in `repo_id` (any revision)."""
        with self._lock:
            self._faults[(repo_id, filename)] = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, contains: str = "", method: str | None = None) -> int:
        """Number of requests whose path contains `contains` (and whose method is `method`)."""
        with self._lock:
            return sum(n for (m, p), n in self.requests.items() if contains in p and method in (None, m))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- internals -----------------------------------------------------------------------
    def _repo_dir(self, repo_id: str, repo_type: str) -> Path:
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return self.root / f"{prefix}{repo_id}"

    @staticmethod
    def _refs(repo_dir: Path) -> dict[str, str]:
        path = repo_dir / "refs.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _resolve_commit(self, repo_dir: Path, revision: str) -> str | None:
        refs = self._refs(repo_dir)
        if revision in refs:
            return refs[revision]
        return revision if len(revision) == 40 and (repo_dir / revision).is_dir() else None

    def _take_fault(self, repo_id: str, filename: str, method: str) -> Fault | None:
        with self._lock:
            fault = self._faults.get((repo_id, filename))
            if fault is None:
                return None
            if method == "GET":
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[(repo_id, filename)]
            return fault


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            del format, args  # keep test output quiet

        def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
            self._dispatch("HEAD")

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch("GET")

        # ---- routing ---------------------------------------------------------------------
        def _dispatch(self, method: str) -> None:
            path = urlsplit(self.path).path
            with hub._lock:
                hub.requests[(method, path)] += 1
            parts = [unquote(p) for p in path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and method == "GET":
                return self._api(parts[2] + "/" + parts[3], parts[4], parts[5], "/".join(parts[6:]))
            repo_type = "model"
            if parts and parts[0] in ("datasets", "spaces"):
                repo_type, parts = parts[0][:-1], parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(method, parts[0] + "/" + parts[1], repo_type, parts[3], "/".join(parts[4:]))
            self._error(404, None, "Not Found")

        def _resolve(self, method: str, repo_id: str, repo_type: str, revision: str, filename: str) -> None:
            repo_dir = hub._repo_dir(repo_id, repo_type)
            if not repo_dir.is_dir():
                return self._error(401, "RepoNotFound", "Repository not found")
            if repo_id in hub.gated:
                return self._error(401, "GatedRepo", "Access to this repository is restricted")
            commit = hub._resolve_commit(repo_dir, revision)
            if commit is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            file = repo_dir / commit / filename
            if not file.is_file():
                return self._error(404, "EntryNotFound", "Entry not found", commit=commit)
            fault = hub._take_fault(repo_id, filename, method)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "status" and method == "GET":
                return self._error(fault.status, None, "Injected failure", commit=commit)
            data = HTML_PAGE if fault is not None and fault.kind == "html" else file.read_bytes()
            self._send_file(method, data, commit, fault)

        def _send_file(self, method: str, data: bytes, commit: str, fault: Fault | None) -> None:
            etag = hashlib.sha256(data).hexdigest()
            start, end = 0, len(data) - 1
            status = 200
            rng = self.headers.get("Range")
            if method == "GET" and rng and rng.startswith("bytes="):
                first, _, last = rng[len("bytes="):].partition("-")
                start = int(first) if first else 0
                end = min(int(last), len(data) - 1) if last else len(data) - 1
                if start >= len(data):
                    return self._error(416, None, "Range Not Satisfiable", commit=commit)
                status = 206
            body = data[start:end + 1]
            cut = None
            if method == "GET" and fault is not None and fault.kind in ("drop", "truncate"):
                cut = fault.after_bytes if fault.after_bytes is not None else len(body) // 2
                cut = min(cut, len(body))
            declared = cut if fault is not None and fault.kind == "truncate" and cut is not None else len(body)
            self.send_response(status)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Content-Length", str(declared))
            self.send_header("Accept-Ranges", "bytes")
            is_html = data is HTML_PAGE
            self.send_header("Content-Type", "text/html; charset=utf-8" if is_html else "application/octet-stream")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if method == "HEAD":
                return
            if cut is None:
                self.wfile.write(body)
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            if fault.kind == "drop":
                self.close_connection = True  # the client sees fewer bytes than Content-Length

        def _api(self, repo_id: str, kind: str, revision: str, subpath: str) -> None:
            repo_dir = hub._repo_dir(repo_id, "model")
            if not repo_dir.is_dir():
                return self._error(401, "RepoNotFound", "Repository not found")
            commit = hub._resolve_commit(repo_dir, revision)
            if commit is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            base = repo_dir / commit
            files = sorted(p for p in base.rglob("*") if p.is_file())
            if kind == "revision":
                payload: object = {"id": repo_id, "sha": commit, "private": False,
                                   "gated": repo_id in hub.gated,
                                   "siblings": [{"rfilename": p.relative_to(base).as_posix()} for p in files]}
            elif kind == "tree":
                prefix = subpath.strip("/")
                payload = [_tree_entry(p, base) for p in files
                           if not prefix or p.relative_to(base).as_posix().startswith(prefix + "/")]
            else:
                return self._error(404, None, "Not Found")
            self._json(payload, commit)

        def _json(self, payload: object, commit: str) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Repo-Commit", commit)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str | None, message: str, *, commit: str | None = None) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code is not None:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit is not None:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


def _tree_entry(path: Path, base: Path) -> dict:
    data = path.read_bytes()
    git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return {"type": "file", "path": path.relative_to(base).as_posix(), "size": len(data), "oid": git_oid,
            "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}
