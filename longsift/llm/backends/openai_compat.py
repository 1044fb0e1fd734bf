"""Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, Azure v1, vLLM, llama.cpp, Ollama) over httpx.

The key is read from the environment when the client opens and lives only in that client's memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx
import orjson

from longsift.llm.backends.base import PermanentError, RemoteBackend, TransientError
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion, Usage

RETRYABLE_STATUS = {408, 409, 429} | set(range(500, 600))
_BODY_EXCERPT = 300


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
            response = await client.post(
                "/chat/completions", content=orjson.dumps(self.body(request)),
                headers={"Content-Type": "application/json"}, timeout=timeout,
            )  # fmt: skip
        except httpx.TimeoutException:
            raise TransientError(f"timeout after {timeout:g}s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"connection error: {type(exc).__name__}: {exc}"[:_BODY_EXCERPT]) from None
        finally:
            self._clients.put_nowait(client)
        if response.status_code != 200:
            raise classify_status(response, self.api_key_env)
        return parse_completion(response.content)

    async def list_models(self, timeout: float) -> list[str]:
        client = await self._clients.get()
        try:
            response = await client.get("/models", timeout=timeout)
            response.raise_for_status()
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return []
        finally:
            self._clients.put_nowait(client)


def classify_status(response: httpx.Response, api_key_env: str) -> Exception:
    status = response.status_code
    reason = f"HTTP {status}: {error_message(response)}"
    if status in RETRYABLE_STATUS:
        return TransientError(reason, retry_after(response.headers), rate_limited=status == 429)
    if status in (401, 403):
        reason += f" (check the key in ${api_key_env} and the --base-url)"
    elif status == 404:
        reason += " (check --model and that --base-url ends where /chat/completions is served, e.g. .../v1)"
    return PermanentError(reason)


def error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        text = str(message or data)
    except ValueError:
        text = response.text
    return " ".join(text.split())[:_BODY_EXCERPT] or response.reason_phrase


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def parse_completion(content: bytes) -> Completion:
    """A 200 body; anything unreadable is transient (proxies and overloaded servers send such bodies)."""
    try:
        data = orjson.loads(content)
        choices = data["choices"]
        texts = [_choice_text(choice) for choice in choices]
        if not texts:
            raise ValueError("no choices")
        usage = data.get("usage") or {}
        return Completion(
            texts[0], choices[0].get("finish_reason"),
            Usage(_int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens"))),
            tuple(texts),
        )  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        excerpt = content[:80].decode("utf-8", "replace")
        raise TransientError(f"malformed response ({type(exc).__name__}: {exc}): {excerpt!r}") from None


def _choice_text(choice: dict[str, Any]) -> str:
    content = choice["message"]["content"]
    if content is None:  # a refusal or tool call: no text, which is an answer (the parser decides)
        return ""
    if not isinstance(content, str):
        raise TypeError(f"message content is {type(content).__name__}")
    return content


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None
