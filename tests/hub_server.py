"""A tiny loopback stand-in for the Hugging Face Hub's file endpoints (tests only).

Serves ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with the headers the real
``huggingface_hub`` client reads (X-Repo-Commit, X-Linked-Etag = LFS sha256, X-Linked-Size).
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class HubServer:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.lfs: dict[tuple[str, str, str], bool] = {}
        self.requests: list[tuple[str, str]] = []
        self.commit = "0123456789abcdef0123456789abcdef01234567"
        self._httpd: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, filename: str, data: bytes, revision: str = "main",
            lfs: bool = True) -> str:
        """Serve ``data``; returns its sha256."""
        for rev in {revision, "main", self.commit}:
            self.files[(repo_id, rev, filename)] = data
            self.lfs[(repo_id, rev, filename)] = lfs
        return hashlib.sha256(data).hexdigest()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _lookup(self):
                path = unquote(self.path.split("?")[0]).lstrip("/")
                if "/resolve/" not in path:
                    return None, None
                repo_id, rest = path.split("/resolve/", 1)
                revision, _, filename = rest.partition("/")
                key = (repo_id, revision, filename)
                return key, server.files.get(key)

            def _headers(self, key, data: bytes) -> None:
                sha = hashlib.sha256(data).hexdigest()
                self.send_header("X-Repo-Commit", server.commit)
                if server.lfs.get(key, True):
                    self.send_header("X-Linked-Etag", f'"{sha}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("ETag", f'"{sha}"')
                else:
                    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
                    self.send_header("ETag", f'"{blob}"')
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")

            def do_HEAD(self) -> None:  # noqa: N802
                key, data = self._lookup()
                server.requests.append(("HEAD", self.path))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers(key, data)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                key, data = self._lookup()
                server.requests.append(("GET", self.path))
                if data is None:
                    body = b'{"error": "Entry not found"}'
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self._headers(key, data)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
