"""Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, Azure v1, vLLM, llama.cpp, Ollama) over httpx.

The key is read from the environment when the client opens and lives only in that client's memory.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import math
import re
import time
from typing import Any

import httpx
import orjson

from longsift.llm.backends.base import ModelNotFound, PermanentError, RemoteBackend, TransientError
from longsift.llm.redact import redact, redact_secrets, register_key_env
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion, Usage

RETRYABLE_STATUS = {408, 409, 429} | set(range(500, 600))
_BODY_EXCERPT = 300
ERROR_BODY_BYTES = 64 * 1024  # an error body is read this far at most
MODEL_LIST_BYTES = 4 * 1024 * 1024
MAX_RETRY_AFTER = 300.0  # seconds: a server asking for longer is waited on this long, then tried again


class OpenAIBackend(RemoteBackend):
    name = "openai"

    def __init__(
        self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY", settings: LLMSettings | None = None
    ):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self._settings = settings or LLMSettings(base_url=base_url, api_key_env=api_key_env)
        self._clients: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        self._all: list[httpx.AsyncClient] = []
        self._runs = 0  # runs using the clients now (a stage may run two tasks at once on one engine)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> OpenAIBackend:
        return cls(settings.require_model(), settings.resolved_base_url(), settings.api_key_env, settings)

    def __repr__(self) -> str:  # no key here, ever
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    async def open(self, concurrency: int) -> None:
        """One single-connection client per concurrent request: httpx's shared pool scans every connection for
        every request, which costs more CPU than the request itself at high concurrency."""
        register_key_env(self.api_key_env)  # whatever the server echoes, this key's value is redacted
        key = self._settings.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if self._runs == 0:
            self._clients, self._all = asyncio.Queue(), []
            self._tls = httpx.create_ssl_context()  # built once: each one loads the CA bundle
        self._runs += 1
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        for _ in range(concurrency):
            client = httpx.AsyncClient(
                base_url=self.base_url, headers=headers, limits=limits, timeout=None, verify=self._tls
            )
            self._all.append(client)
            self._clients.put_nowait(client)

    async def close(self) -> None:
        self._runs -= 1
        if self._runs == 0:
            for client in self._all:
                await client.aclose()
            self._all = []

    def body(self, request: ChatRequest) -> dict[str, Any]:
        return {"model": self.model, "messages": request.message_dicts(), **request.sampling.to_dict()}

    async def complete(self, request: ChatRequest, timeout: float) -> Completion:
        client = await self._clients.get()
        try:
            async with client.stream(
                "POST", "/chat/completions", content=orjson.dumps(self.body(request)),
                headers={"Content-Type": "application/json"}, timeout=timeout,
            ) as response:  # fmt: skip
                limit = self._settings.max_response_bytes if response.status_code == 200 else ERROR_BODY_BYTES
                content, complete = await read_capped(response, limit)
                if response.status_code != 200:
                    raise classify_status(response.status_code, response.headers, content, self.api_key_env)
                if not complete:
                    raise PermanentError(f"oversized: the response body is over {limit:,} bytes (--max-response-bytes)")
        except httpx.TimeoutException:
            raise TransientError(f"timeout after {timeout:g}s") from None
        except httpx.TransportError as exc:
            raise TransientError(cut(f"connection error: {type(exc).__name__}: {exc}")) from None
        finally:
            self._clients.put_nowait(client)
        return parse_completion(content)

    async def list_models(self, timeout: float) -> list[str]:
        """What GET /models lists; [] when the endpoint does not list models (or the call fails)."""
        client = await self._clients.get()
        try:
            async with client.stream("GET", "/models", timeout=timeout) as response:
                content, complete = await read_capped(response, MODEL_LIST_BYTES)
            if response.status_code != 200 or not complete:
                return []
            data = orjson.loads(content).get("data", [])
            return [str(m["id"])[:200] for m in data if isinstance(m, dict) and "id" in m]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return []
        finally:
            self._clients.put_nowait(client)


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether that was the whole body. Reading stops at the limit: a
    server sending megabytes (or never ending) cannot make us hold them."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False
    return b"".join(chunks), True


def cut(text: str) -> str:
    """Redact, then shorten to an excerpt (in this order: a cut key would no longer be recognised)."""
    return " ".join(redact(text).split())[:_BODY_EXCERPT]


# 5xx bodies that say the model does not exist (`transformers serve`, vLLM, TGI, proxies): retrying cannot help.
_MODEL_NOT_FOUND = re.compile(
    r"(?i)model_not_found|\b(?:unknown|no such|invalid) model\b|\bmodel\b[^.\n]{0,80}?"
    r"\b(?:not found|does not exist|doesn't exist|is not (?:available|served|supported|loaded)|not available)"
)


def classify_status(status: int, headers: httpx.Headers, content: bytes, api_key_env: str) -> Exception:
    message = error_message(content)
    reason = cut(f"HTTP {status}: {message or 'no message'}")
    if _MODEL_NOT_FOUND.search(message[:2000]) and status in {400, 404, 422} | set(range(500, 600)):
        return ModelNotFound(reason)
    if status in RETRYABLE_STATUS:
        return TransientError(reason, retry_after(headers), rate_limited=status == 429)
    if status in (401, 403):
        reason += f" (check the key in ${api_key_env} and the --base-url)"
    elif status == 404:
        reason += " (check --model and that --base-url ends where /chat/completions is served, e.g. .../v1)"
    return PermanentError(reason)


_TAG = re.compile(r"<[^<>]{0,2000}>")
_HTML_DROP = re.compile(r"(?is)<(script|style)\b[^<>]{0,2000}>.{0,20000}?</\1\s*>")


def error_message(content: bytes) -> str:
    """The human message of an error body, whatever its shape: OpenAI `{"error": {"message"}}`, `{"error": "text"}`,
    FastAPI `{"detail": "..."}` / `{"detail": [{"loc", "msg"}]}`, `{"message": ...}`, plain text, or HTML (tags
    dropped). Always text, never a Python repr; bounded (the body was read to ERROR_BODY_BYTES at most)."""
    text = content[:ERROR_BODY_BYTES].decode("utf-8", "replace")
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        if "<" in text and ">" in text:
            text = _TAG.sub(" ", _HTML_DROP.sub(" ", text))
        return " ".join(text.split())
    return " ".join(_message_of(data).split())


def _message_of(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return "; ".join(_message_of(item) for item in data[:5])
    if not isinstance(data, dict):
        return orjson.dumps(data).decode()[:_BODY_EXCERPT]
    for name in ("error", "detail", "message", "msg", "error_message", "title"):
        value = data.get(name)
        if isinstance(value, dict):
            inner = value.get("message") or value.get("msg") or value.get("detail")
            if inner is not None:
                return _message_of(inner)
            return orjson.dumps(value).decode()[:_BODY_EXCERPT]
        if isinstance(value, list) and value:
            return "; ".join(_detail_item(item) for item in value[:5])
        if value not in (None, "", []):
            return str(value)
    return orjson.dumps(data).decode()[:_BODY_EXCERPT]


def _detail_item(item: Any) -> str:
    """One FastAPI validation error: `body.messages.0.content: field required`."""
    if not isinstance(item, dict):
        return _message_of(item)
    where = ".".join(str(part) for part in item.get("loc") or [])
    message = _message_of(item.get("msg") or item.get("message") or item)
    return f"{where}: {message}" if where else message


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date); None (the
    engine's own backoff) for a value that is not one: "later", negative, NaN, an unreadable date, or a wait over
    MAX_RETRY_AFTER (a huge value is a broken header, not a plan)."""
    wait = _seconds(headers.get("retry-after-ms"), 1000.0)
    if wait is None:
        wait = _seconds(headers.get("retry-after"), 1.0)
    return None if wait is None or wait > MAX_RETRY_AFTER else wait


def _seconds(value: str | None, per_second: float) -> float | None:
    if value is None or len(value) > 64:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return _http_date(value) if per_second == 1.0 else None
    if math.isnan(number) or number < 0:
        return None
    return number / per_second


def _http_date(value: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - time.time())


def parse_completion(content: bytes) -> Completion:
    """A 200 body; anything unreadable is transient (proxies and overloaded servers send such bodies)."""
    try:
        data = orjson.loads(content)
        choices = data["choices"]
        texts = [_choice_text(choice) for choice in choices]
        if not texts:
            raise ValueError("no choices")
        usage = data.get("usage") or {}
        finish = choices[0].get("finish_reason")
        return Completion(
            texts[0], None if finish is None else str(finish)[:80],
            Usage(_int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens"))),
            tuple(texts),
        )  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        excerpt = content[:80].decode("utf-8", "replace")
        raise TransientError(cut(f"malformed response ({type(exc).__name__}: {exc}): {excerpt!r}")) from None


def _choice_text(choice: dict[str, Any]) -> str:
    content = choice["message"]["content"]
    if content is None:  # a refusal or tool call: no text; the engine counts it as an `empty` failure
        return ""
    if not isinstance(content, str):
        raise TypeError(f"message content is {type(content).__name__}")
    return redact_secrets(content)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value < 2**53:
        return None
    return int(value)
