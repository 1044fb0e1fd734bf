"""A real OpenAI-protocol HTTP server on 127.0.0.1: the test double for remote LLMs, and `longsift serve`.

It speaks POST /v1/chat/completions and GET /v1/models (and POST /v1/completions when given a completions
responder) over real HTTP, answers through a responder function
(request -> reply text or Completion), and can misbehave on purpose, each kind a share of the attempts:
- transport and status: 429s (with Retry-After), 500s, timeouts (it sleeps past the client's deadline), slow
  replies, connections dropped mid-body, 429s with a bad Retry-After ("later", negative, huge, a broken date);
- bodies: malformed JSON, garbage HTML with status 200, valid JSON of the wrong shape, FastAPI-style `detail`
  errors, plain-text and HTML error pages, error bodies that echo the request's headers (Authorization too, as
  some proxies do);
- replies that are not answers: cut off (`finish_reason: length`), null content, empty content, oversized
  replies, replies made of huge numbers;
- models: with `models=` it lists those at GET /v1/models; with `strict_models=True` a request for any other
  model gets HTTP 500 "model ... not found" (as `transformers serve` does).
Which attempt misbehaves is decided by hashing (seed, request, attempt number), so a rerun misbehaves the same
way. Every request is logged (thread-safe) with its attempt number, outcome and Authorization header (memory only).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import socket
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
from longsift.models import GenerationParams, ModelEngine
from longsift.models.types import ScoredToken
from longsift.records import ROLES, Message

FAULTS = (
    "429", "500", "timeout", "malformed", "garbage", "length", "null", "empty", "oversized", "echo", "bad_retry_after",
    "huge", "detail", "text_error", "html_error", "slow", "drop", "wrong_shape",
)  # fmt: skip
# The misbehaviours whose reply is not an answer (the client must count each as a failure, never as a success).
NOT_ANSWERS = ("length", "null", "empty", "oversized", "huge")
BAD_RETRY_AFTER = ("later", "-5", "1e12", "Wed, 99 Foo 2015 25:61:00 GMT", "nan", "", "inf", "9" * 400)
HUGE_NUMBER = "9" * 5000


@dataclass(frozen=True)
class Faults:
    """Shares (0..1) of attempts that misbehave; they must sum to at most 1."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_malformed: float = 0.0
    rate_garbage: float = 0.0
    rate_length: float = 0.0
    rate_null: float = 0.0
    rate_empty: float = 0.0
    rate_oversized: float = 0.0
    rate_echo: float = 0.0
    rate_bad_retry_after: float = 0.0
    rate_huge: float = 0.0
    rate_detail: float = 0.0
    rate_text_error: float = 0.0
    rate_html_error: float = 0.0
    rate_slow: float = 0.0
    rate_drop: float = 0.0
    rate_wrong_shape: float = 0.0
    retry_after: float | None = 0.01  # seconds, sent as Retry-After and retry-after-ms with each 429
    timeout_sleep: float = 1.0  # how long a "timeout" attempt stalls before answering 504
    slow_sleep: float = 0.2  # how long a "slow" attempt waits before answering well
    oversize_chars: int = 6_000_000  # the text of an "oversized" reply
    seed: int = 0

    def draw(self, key: str, attempt: int, salt: str = "") -> float:
        digest = hashlib.sha256(f"{self.seed}:{key}:{attempt}{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    @classmethod
    def spread(cls, total: float, kinds: tuple[str, ...] = ("429", "500", "timeout", "malformed"), **kw: Any) -> Faults:
        rates: dict[str, Any] = {f"rate_{kind}": total / len(kinds) for kind in kinds}
        return cls(**rates, **kw)

    def decide(self, key: str, attempt: int) -> str | None:
        draw = self.draw(key, attempt)
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
        self, responder: Responder = echo, *, model: str | None = None, latency: float = 0.0,
        faults: Faults | None = None, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0,
        models: tuple[str, ...] | None = None, strict_models: bool = False,
        completions: CompletionsResponder | None = None,
    ) -> None:  # fmt: skip
        self.responder, self.model, self.latency = responder, model or "local-test", latency
        # What GET /v1/models lists: `models`, else the model named here; neither: the route answers 404 (as
        # servers that do not list models), so clients cannot check the name.
        self.models = models if models is not None else ((model,) if model else None)
        self.strict_models = strict_models
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
        asked = str(request.body.get("model", ""))
        if self.strict_models and asked not in (self.models or (self.model,)):
            body = orjson.dumps({"detail": f"Model {asked!r} not found: no such repository or local folder"})
            return 500, body, dict(_JSON), "unknown model"
        fault = self.faults.decide(request.key, request.attempt)
        if fault in BROKEN_BODIES:
            return (*BROKEN_BODIES[fault](self, request), fault)
        if fault == "slow":
            time.sleep(self.faults.slow_sleep)
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
        if fault in NOT_ANSWERS:
            return 200, self.completion_body(request, self.spoil(fault, reply)), _JSON, fault
        body = self.completion_body(request, reply)
        if fault == "drop":  # promise the whole body, send half of it, hang up
            return 200, body, {**_JSON, DROP_HEADER: str(len(body) // 2)}, fault
        return 200, body, _JSON, fault or "ok"

    def spoil(self, fault: str, reply: str | Completion) -> Completion:
        """The reply of a NOT_ANSWERS fault: the responder's answer cut, emptied, blown up or made of numbers."""
        text = reply if isinstance(reply, str) else reply.text
        usage = Usage(10, 10)
        if fault == "length":
            return Completion(text[: max(1, len(text) // 2)], "length", usage)
        if fault == "null":
            return Completion(NULL_CONTENT, "stop", usage)
        if fault == "empty":
            return Completion(" \n" if self.faults.draw("", 0, text) < 0.5 else "", "stop", usage)
        if fault == "oversized":
            return Completion((text + " ") * (self.faults.oversize_chars // (len(text) + 1) + 1), "stop", usage)
        return Completion(
            f"{HUGE_NUMBER} {HUGE_NUMBER}\nScore: {HUGE_NUMBER}\nRating: [[{HUGE_NUMBER}]]", "stop", usage
        )

    def completion_body(self, request: ServedRequest, reply: str | Completion) -> bytes:
        if isinstance(reply, str):
            prompt_chars = sum(len(str(m.get("content", ""))) for m in request.messages)
            reply = Completion(reply, "stop", Usage(math.ceil(prompt_chars / 4), math.ceil(len(reply) / 4)))
        choices = [
            {"index": i, "message": {"role": "assistant", "content": None if text == NULL_CONTENT else text},
             "finish_reason": reply.finish_reason}
            for i, text in enumerate(reply.choices)
        ]  # fmt: skip
        usage = {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens,
                 "total_tokens": reply.usage.total}  # fmt: skip
        return orjson.dumps({
            "id": f"chatcmpl-{request.key[:16]}", "object": "chat.completion", "created": int(time.time()),
            "model": request.body.get("model", self.model), "choices": choices, "usage": usage,
        })  # fmt: skip


_JSON = {"Content-Type": "application/json"}
# the /v1/completions answer: one OpenAI "choices" entry per prompt of the request (text, logprobs, ...)
CompletionsResponder = Callable[[ServedRequest], list[dict[str, Any]]]
DROP_HEADER = "X-Longsift-Drop-After"  # internal: send this many bytes of the body, then close the connection
NULL_CONTENT = "\x00null\x00"  # a reply text the server sends as JSON null


def _echo_headers(server: LocalChatServer, request: ServedRequest) -> tuple[int, bytes, dict[str, str]]:
    """A proxy error that echoes the request headers, the key among them; 502 (retried) or 400 (final)."""
    headers = {"Authorization": request.authorization or "", "Content-Type": "application/json"}
    if server.faults.draw(request.key, request.attempt, "echo") < 0.5:
        body = {"error": {"message": f"upstream refused the request; headers: {headers}", "type": "proxy_error"}}
        return 502, orjson.dumps(body), dict(_JSON)
    text = f"Bad request. Request headers were: {headers!r}. Authorization: {request.authorization}"
    return 400, text.encode(), {"Content-Type": "text/plain"}


def _bad_retry_after(server: LocalChatServer, request: ServedRequest) -> tuple[int, bytes, dict[str, str]]:
    pick = int(server.faults.draw(request.key, request.attempt, "retry") * len(BAD_RETRY_AFTER))
    status, body, headers = _error(429, "slow down (bad Retry-After injected)", "rate_limit_exceeded")
    return status, body, {**headers, "Retry-After": BAD_RETRY_AFTER[pick]}


def _detail(server: LocalChatServer, request: ServedRequest) -> tuple[int, bytes, dict[str, str]]:
    """FastAPI's two error shapes: a validation list (422, final) or a text detail (503, retried)."""
    if server.faults.draw(request.key, request.attempt, "detail") < 0.5:
        detail = [{"loc": ["body", "messages", 0, "content"], "msg": "field required", "type": "value_error.missing"}]
        return 422, orjson.dumps({"detail": detail}), dict(_JSON)
    return 503, orjson.dumps({"detail": "Service temporarily overloaded, try again"}), dict(_JSON)


BROKEN_BODIES: dict[str, Callable[[LocalChatServer, ServedRequest], tuple[int, bytes, dict[str, str]]]] = {
    "echo": _echo_headers,
    "bad_retry_after": _bad_retry_after,
    "detail": _detail,
    "text_error": lambda s, r: (503, b"Service Unavailable: upstream overloaded", {"Content-Type": "text/plain"}),
    "html_error": lambda s, r: (
        502,
        b"<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
        b"<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>",
        {"Content-Type": "text/html"},
    ),  # fmt: skip
    "wrong_shape": lambda s, r: (200, b'{"choices": [{"message": {"content": 5}}], "usage": []}', dict(_JSON)),
}
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


def engine_completions(runner: ModelEngine) -> CompletionsResponder:
    """Answer POST /v1/completions with a local model engine (`longsift serve`): a prompt (text or token ids, one or
    a list) continued greedily or sampled; `echo` puts the prompt before the answer, and `logprobs: N` adds every
    token's log-probability and the N most likely tokens at its place, the first prompt token having none. That is
    how OpenAI's API and vLLM answer, and what lm-eval's loglikelihood requests (echo, logprobs 1, max_tokens 1) read.
    """

    def respond(request: ServedRequest) -> list[dict[str, Any]]:
        body = request.body
        if body.get("stream"):
            raise ScriptedError(400, "streaming is not supported by longsift serve")
        try:
            prompts = _prompt_ids(runner.tokenizer, body["prompt"])
            max_tokens = 16 if body.get("max_tokens") is None else int(body["max_tokens"])
            top = None if body.get("logprobs") is None else int(body["logprobs"])
            if int(body.get("n") or 1) != 1 or max_tokens < 0 or (top is not None and top < 0):
                raise ValueError("n must be 1, max_tokens and logprobs at least 0")
            stop = body.get("stop")
            params = GenerationParams(
                max_new_tokens=max_tokens, temperature=float(body.get("temperature") or 0.0),
                top_p=body.get("top_p"), seed=body.get("seed"), batch_size=len(prompts),
                stop_strings=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ScriptedError(400, f"bad request: {exc}") from None
        answers = runner.generate_batch([(ids, False) for ids in prompts], params) if max_tokens else None
        generated = [list(a.token_ids) for a in answers] if answers else [[] for _ in prompts]
        scored = runner.score_tokens([p + g for p, g in zip(prompts, generated, strict=True)], top=top or 0) \
            if top is not None else None  # fmt: skip
        choices = []
        for index, ids in enumerate(prompts):
            answer = answers[index] if answers else None
            text = (runner.tokenizer.decode(ids) if body.get("echo") else "") + (answer.text if answer else "")
            choice: dict[str, Any] = {"index": index, "text": text, "logprobs": None,
                                      "finish_reason": answer.finish_reason if answer else "length"}  # fmt: skip
            if scored is not None:
                shown = len(ids) + len(generated[index]) - (0 if body.get("echo") else len(generated[index]))
                choice["logprobs"] = _logprobs_body(runner.tokenizer, ids + generated[index], scored[index], shown)
            choices.append(choice)
        return choices

    return respond


def _prompt_ids(tokenizer: Any, prompt: Any) -> list[list[int]]:
    """One prompt or a list of them, each text (tokenized with special tokens, as vLLM does) or token ids."""
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt)):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise ValueError("'prompt' must be a text, token ids, or a non-empty list of them")
    rows = [tokenizer(p)["input_ids"] if isinstance(p, str) else [int(t) for t in p] for p in prompt]
    if not all(rows):
        raise ValueError("every prompt needs at least one token")
    return rows


def _logprobs_body(tokenizer: Any, ids: list[int], scored: list[ScoredToken], shown: int) -> dict[str, Any]:
    """The last `shown` tokens of `ids` in OpenAI's logprobs shape; the sequence's first token has no logprob."""
    start = len(ids) - shown
    tokens = [tokenizer.decode([token]) for token in ids[start:]]
    values: list[float | None] = [None if i == 0 else scored[i - 1].logprob for i in range(start, len(ids))]
    tops: list[dict[str, float] | None] = [
        None if i == 0 else {tokenizer.decode([t]): v for t, v in scored[i - 1].top} for i in range(start, len(ids))
    ]
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


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
        if self.path.rstrip("/") in ("/v1/models", "/models") and owner.models is not None:
            listed = [{"id": name, "object": "model", "owned_by": "longsift"} for name in owner.models]
            self._send(200, orjson.dumps({"object": "list", "data": listed}), _JSON)
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
        headers = dict(headers)
        drop_after = headers.pop(DROP_HEADER, None)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if drop_after is None:
                self.wfile.write(payload)
                return
            self.wfile.write(payload[: int(drop_after)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError, OSError):
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
