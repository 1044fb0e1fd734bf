"""The one redaction step: every text that came from a server or a client error passes here before it is stored,
logged, printed or written (cache rows, failure lists, record metadata, judgments, summaries, exports, console).

What is removed: the value of every API-key variable in use (read from the environment at the moment of redaction,
so a key is never copied into longsift's own state), `Authorization: ...`, `Bearer ...`, `api-key` / `x-api-key`
headers, `sk-...`-style key patterns and `user:password@` in URLs. Servers and proxies echo request headers in
their error bodies; this is where such an echo stops.

Answers (completion text) get only the exact key values removed (`redact_secrets`): the header patterns would also
rewrite an honest answer about HTTP authentication.
"""

from __future__ import annotations

import os
import re
import threading

MARK = "[REDACTED]"
DEFAULT_KEY_ENVS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY")
MIN_SECRET_CHARS = 4  # shorter "keys" (e.g. "x" for a local server) are no secret and would shred every text

_key_envs: set[str] = set(DEFAULT_KEY_ENVS)
_lock = threading.Lock()

_VALUE = r"[^\s\"',;}\[\]]+"  # up to a quote, separator or bracket; never "[": a redacted value stays as it is
_SCHEME = r"(?:(?:bearer|basic|token|digest)\s{1,8})?+"  # possessive: the scheme is kept, never taken as the value
PATTERNS = (
    # Authorization: Bearer xyz / "authorization": "Basic xyz" / Proxy-Authorization=...
    re.compile(rf"(?i)((?:proxy-)?authorization[\"']?\s{{0,8}}[:=]\s{{0,8}}[\"']?{_SCHEME}){_VALUE}"),
    re.compile(rf"(?i)((?:x-)?api[-_]?key[\"']?\s{{0,8}}[:=]\s{{0,8}}[\"']?){_VALUE}"),
    re.compile(r"(?i)(\bbearer\s{1,8})[A-Za-z0-9._~+/=\-]+"),
    re.compile(r"()\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(\bhttps?://)[^/\s@:\[\]]+:[^/\s@\[\]]+(?=@)"),  # user:password@ in a URL
)


def register_key_env(name: str) -> None:
    """Also redact the value of environment variable `name` (the one `--api-key-env` names)."""
    with _lock:
        _key_envs.add(name)


def secrets() -> list[str]:
    """The key values in use now, longest first (so a key containing another is removed whole)."""
    with _lock:
        names = list(_key_envs)
    values = {os.environ.get(name) or "" for name in names}
    return sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)


def redact_secrets(text: str) -> str:
    """Only the exact key values: for answers, which must otherwise stay as the model wrote them."""
    for secret in secrets():
        if secret in text:
            text = text.replace(secret, MARK)
    return text


def redact(text: str) -> str:
    """Key values, then credential headers and key patterns. Apply before cutting a text short: a cut key would
    no longer be recognised."""
    text = redact_secrets(text)
    for pattern in PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MARK, text)
    return text


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)
