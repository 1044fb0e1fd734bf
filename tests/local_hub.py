"""A local Hugging Face Hub serving one dataset repository from a folder, over real HTTP.

It answers what `datasets.load_dataset(repo_id, streaming=True)` asks of the Hub (through huggingface_hub): the
repository's info, its file tree, paths-info, and files by `resolve/` with HTTP ranges. Point HF_ENDPOINT at
`url`. Every request is logged (method, path) so a test can see what was read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class LocalHub:
    def __init__(self, folder: Path, repo_id: str) -> None:
        self.folder, self.repo_id = folder, repo_id
        self.log: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LocalHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def entry(self, relative: str) -> dict[str, Any]:
        path = self.folder / relative
        if path.is_dir():
            oid = hashlib.sha1(relative.encode()).hexdigest()
            return {"type": "directory", "oid": oid, "size": 0, "path": relative}
        data = path.read_bytes()
        return {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": relative}

    def info(self) -> dict[str, Any]:
        files = sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())
        return {
            "id": self.repo_id, "_id": "local", "sha": COMMIT, "private": False, "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z", "cardData": {},
            "siblings": [{"rfilename": name} for name in files],
        }  # fmt: skip


def _handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    api = f"/api/datasets/{hub.repo_id}"
    files = f"/datasets/{hub.repo_id}/resolve/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.answer(head=True)

        def do_GET(self) -> None:
            self.answer(head=False)

        def do_POST(self) -> None:
            hub.log.append(("POST", self.path))
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if "/paths-info/" not in urlparse(self.path).path:
                return self.missing()
            try:
                paths = json.loads(body)["paths"]
            except ValueError:
                paths = parse_qs(body).get("paths", [])
            self.json([hub.entry(p) for p in paths if (hub.folder / p).exists()])

        def answer(self, head: bool) -> None:
            hub.log.append(("HEAD" if head else "GET", self.path))
            url = urlparse(self.path)
            path = unquote(url.path)
            if path in (api, f"{api}/revision/main", f"{api}/revision/{COMMIT}"):
                return self.json(hub.info())
            if path.startswith(f"{api}/tree/"):
                return self.tree(path[len(f"{api}/tree/") :].partition("/")[2], "recursive=true" in url.query.lower())
            if path.startswith(files):
                return self.file(path[len(files) :].partition("/")[2], head)
            self.missing()

        def tree(self, relative: str, recursive: bool) -> None:
            base = hub.folder / relative
            if not base.is_dir():
                return self.missing()
            children = base.rglob("*") if recursive else base.iterdir()
            self.json([hub.entry(p.relative_to(hub.folder).as_posix()) for p in sorted(children)])

        def file(self, relative: str, head: bool) -> None:
            path = hub.folder / relative
            if not path.is_file():
                return self.missing()
            data = path.read_bytes()
            start, end, status = 0, len(data) - 1, 200
            wanted = self.headers.get("Range", "")
            if wanted.startswith("bytes="):
                first, _, last = wanted[len("bytes=") :].partition("-")
                start = int(first) if first else len(data) - int(last)
                end = min(int(last), len(data) - 1) if first and last else len(data) - 1
                status = 206
            chunk = data[start : end + 1]
            self.send_response(status)
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", COMMIT)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if not head:
                self.wfile.write(chunk)

        def json(self, value: Any) -> None:
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def missing(self) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
