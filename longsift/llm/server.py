"""A real OpenAI-protocol HTTP server on 127.0.0.1: the test double for remote LLMs, and `longsift serve`.

It speaks POST /v1/chat/completions and GET /v1/models (and POST /v1/completions when given a completions
responder) over real HTTP, answers through a responder function
(request -> reply text or Completion), and can misbehave on purpose: fixed latency, a share of 429s (with
Retry-After), 500s, timeouts (it sleeps past the client's deadline), malformed JSON and garbage bodies. Which
request fails is decided by hashing (seed, request, attempt number), so a rerun misbehaves the same way.
Every request is logged (thread-safe) with its attempt number, outcome and Authorization header (memory only).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from longsift.llm.backends.base import LocalBackend
from longsift.llm.types import ChatRequest, Completion, Sampling, Usage
from longsift.records import ROLES, Message

FAULTS = ("429", "500", "timeout", "malformed", "garbage")


@dataclass(frozen=True)
class Faults:
    """Shares (0..1) of attempts that misbehave; they must sum to at most 1."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_malformed: float = 0.0
    rate_garbage: float = 0.0
    retry_after: float | None = 0.01  # seconds, sent as Retry-After and retry-after-ms with each 429
    timeout_sleep: float = 1.0  # how long a "timeout" attempt stalls before answering 504
    seed: int = 0

    @classmethod
    def spread(cls, total: float, kinds: tuple[str, ...] = ("429", "500", "timeout", "malformed"), **kw: Any) -> Faults:
        rates: dict[str, Any] = {f"rate_{kind}": total / len(kinds) for kind in kinds}
        return cls(**rates, **kw)

    def decide(self, key: str, attempt: int) -> str | None:
        digest = hashlib.sha256(f"{self.seed}:{key}:{attempt}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        for kind in FAULTS:
            draw -= getattr(self, f"rate_{kind}")
            if draw < 0:
                return kind
        return None


class ScriptedError(Exception):
    """Raise from a responder to answer with this HTTP status (e.g. 400 for one prompt, 429 on attempt 1)."""

    def __init__(self, status: int, message: str = "scripted error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class ServedRequest:
    key: str  # hash of the request body
    attempt: int  # 1 for the first time this server saw this body
    body: dict[str, Any]
    authorization: str | None
    arrived: float

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body.get("messages") or [])

    @property
    def prompt(self) -> str:
        """The last user message."""
        return next((m.get("content", "") for m in reversed(self.messages) if m.get("role") == "user"), "")


@dataclass(frozen=True)
class LogEntry:
    request: ServedRequest
    outcome: str  # "ok", a fault kind, or "http <status>" for scripted errors
    status: int
    finished: float

    @property
    def prompt(self) -> str:
        return self.request.prompt


@dataclass
class RequestLog:
    _entries: list[LogEntry] = field(default_factory=list)
    _attempts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_attempt(self, key: str) -> int:
        with self._lock:
            self._attempts[key] += 1
            return self._attempts[key]

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def count(self, key: str) -> int:
        return sum(e.request.key == key for e in self.entries())

    def prompts(self, outcome: str | None = None) -> Counter[str]:
        """How many times each prompt was sent (optionally only those with this outcome)."""
        return Counter(e.prompt for e in self.entries() if outcome is None or e.outcome == outcome)

    def outcomes(self) -> Counter[str]:
        return Counter(e.outcome for e in self.entries())


Responder = Callable[[ServedRequest], "str | Completion"]


def echo(request: ServedRequest) -> str:
    return f"echo: {request.prompt}"


class LocalChatServer:
    """`with LocalChatServer(responder) as server:` ... `server.base_url` ... `server.log`."""

    def __init__(
        self, responder: Responder = echo, *, model: str = "local-test", latency: float = 0.0,
        faults: Faults | None = None, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0,
        completions: CompletionsResponder | None = None,
    ) -> None:  # fmt: skip
        self.responder, self.model, self.latency = responder, model, latency
        self.completions = completions  # POST /v1/completions (text completions, e.g. echo + prompt logprobs)
        self.faults = faults or Faults()
        self.api_key = api_key
        self.log = RequestLog()
        self._address = (host, port)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def bind(self) -> LocalChatServer:
        """Open the socket (port 0: an ephemeral one, see `url`)."""
        if self._httpd is None:
            self._httpd = _HTTPServer(self._address, _Handler, self)
        return self

    def start(self) -> LocalChatServer:
        """Serve from a background thread."""
        httpd = self.bind()._httpd
        assert httpd is not None
        # a short poll interval: stop() waits up to one interval for the serving loop to notice
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), name="llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def serve_forever(self) -> None:
        """Serve from this thread until interrupted."""
        httpd = self.bind()._httpd
        assert httpd is not None
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LocalChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, request: ServedRequest) -> tuple[int, bytes, dict[str, str], str]:
        """(status, body, headers, outcome) for one chat request."""
        if self.api_key is not None and request.authorization != f"Bearer {self.api_key}":
            return (*_error(401, "invalid api key", "invalid_api_key"), "http 401")
        fault = self.faults.decide(request.key, request.attempt)
        if fault == "429":
            wait = self.faults.retry_after
            headers = {} if wait is None else {"Retry-After": f"{wait:g}", "retry-after-ms": f"{wait * 1000:g}"}
            status, body, _ = _error(429, "rate limit reached (injected)", "rate_limit_exceeded")
            return status, body, headers, "429"
        if fault == "500":
            return (*_error(500, "internal error (injected)", "server_error"), "500")
        if fault == "timeout":
            time.sleep(self.faults.timeout_sleep)
            return (*_error(504, "gateway timeout (injected)", "timeout"), "timeout")
        if fault == "malformed":
            return 200, b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "cut o', _JSON, "malformed"
        if fault == "garbage":
            return 200, b"<html><body>502 upstream hiccup</body></html>", {"Content-Type": "text/html"}, "garbage"
        try:
            reply = self.responder(request)
        except ScriptedError as exc:
            status, body, headers = _error(exc.status, exc.message, "scripted")
            return status, body, {**headers, **exc.headers}, f"http {exc.status}"
        return 200, self.completion_body(request, reply), _JSON, "ok"

    def completion_body(self, request: ServedRequest, reply: str | Completion) -> bytes:
        if isinstance(reply, str):
            prompt_chars = sum(len(str(m.get("content", ""))) for m in request.messages)
            reply = Completion(reply, "stop", Usage(math.ceil(prompt_chars / 4), math.ceil(len(reply) / 4)))
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reply.finish_reason}
            for i, text in enumerate(reply.choices)
        ]
        usage = {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens,
                 "total_tokens": reply.usage.total}  # fmt: skip
        return orjson.dumps({
            "id": f"chatcmpl-{request.key[:16]}", "object": "chat.completion", "created": int(time.time()),
            "model": request.body.get("model", self.model), "choices": choices, "usage": usage,
        })  # fmt: skip


_JSON = {"Content-Type": "application/json"}
# the /v1/completions answer: one OpenAI "choices" entry per prompt of the request (text, logprobs, ...)
CompletionsResponder = Callable[[ServedRequest], list[dict[str, Any]]]
SAMPLING_FIELDS = ("temperature", "max_tokens", "top_p", "seed", "n", "stop")


def backend_responder(backend: LocalBackend) -> Responder:
    """Answer with a local model (`longsift serve`): one request at a time through the batched backend."""

    def respond(request: ServedRequest) -> Completion:
        body = request.body
        if body.get("stream"):
            raise ScriptedError(400, "streaming is not supported by longsift serve")
        try:
            sampling = Sampling.from_dict({k: body[k] for k in SAMPLING_FIELDS if body.get(k) is not None})
            messages = tuple(Message(m["role"], str(m["content"])) for m in request.messages)  # type: ignore[arg-type]
            if any(m.role not in ROLES for m in messages):
                raise ValueError(f"roles must be one of {sorted(ROLES)}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ScriptedError(400, f"bad request: {exc}") from None
        return backend.generate_batch([ChatRequest(messages, sampling)])[0]

    return respond


def _error(status: int, message: str, code: str) -> tuple[int, bytes, dict[str, str]]:
    return status, orjson.dumps({"error": {"message": message, "type": code, "code": code}}), dict(_JSON)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of concurrent clients must not overflow the listen backlog

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: LocalChatServer):
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer (timeouts, killed runs) is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers
    disable_nagle_algorithm = True  # headers and body go out in two writes: do not wait for an ACK between them
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            body = {"object": "list", "data": [{"id": owner.model, "object": "model", "owned_by": "longsift"}]}
            self._send(200, orjson.dumps(body), _JSON)
        else:
            self._send(*_error(404, f"no route {self.path}", "not_found"))

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") in ("/v1/completions", "/completions") and owner.completions is not None:
            return self._text_completions(raw)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self._send(*_error(404, f"no route {self.path}", "not_found"))
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("a JSON object with 'messages' is required")
        except ValueError as exc:
            return self._send(*_error(400, f"bad request body: {exc}", "invalid_request_error"))
        key = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        request = ServedRequest(key, owner.log.next_attempt(key), body, self.headers.get("Authorization"), time.time())
        if owner.latency:
            time.sleep(owner.latency)
        status, payload, headers, outcome = owner.answer(request)
        owner.log.add(LogEntry(request, outcome, status, time.time()))
        self._send(status, payload, headers)

    def _text_completions(self, raw: bytes) -> None:
        owner = self.server.owner
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict) or "prompt" not in body:
                raise ValueError("a JSON object with 'prompt' is required")
        except ValueError as exc:
            return self._send(*_error(400, f"bad request body: {exc}", "invalid_request_error"))
        key = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        request = ServedRequest(key, owner.log.next_attempt(key), body, self.headers.get("Authorization"), time.time())
        try:
            assert owner.completions is not None
            choices = owner.completions(request)
            status, payload, headers, outcome = 200, orjson.dumps({
                "id": f"cmpl-{key[:16]}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model", owner.model), "choices": choices,
            }), _JSON, "ok"  # fmt: skip
        except ScriptedError as exc:
            status, payload, headers = _error(exc.status, exc.message, "scripted")
            outcome = f"http {exc.status}"
        owner.log.add(LogEntry(request, outcome, status, time.time()))
        self._send(status, payload, headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main(argv: list[str] | None = None) -> None:
    """`python -m longsift.llm.server --latency 0.2`: the scripted echo server in its own process."""
    import argparse

    parser = argparse.ArgumentParser(description="A local OpenAI-protocol echo server with injected faults.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of 429/500/timeout/malformed answers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    faults = Faults.spread(args.fault_rate, seed=args.seed)
    server = LocalChatServer(latency=args.latency, faults=faults, port=args.port)
    print(f"serving on {server.bind().base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
