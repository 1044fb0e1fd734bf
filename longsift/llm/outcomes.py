"""When a reply counts as an answer, what a failure is called, and when a stage has failed as a whole.

A completion counts only when it finished and holds text within the size cap:
- `finish_reason` "stop" or an equivalent other servers send ("end_turn", "eos", "eos_token", "stop_sequence"), or
  no finish_reason at all (null or absent: older llama.cpp and some proxies never send one; the reply is then
  taken as finished, its parse decides);
- "length" (or "max_tokens", "model_length") is a cut-off reply: failure `truncated`;
- any other finish_reason ("content_filter", "tool_calls", ...) is failure `unfinished`;
- null or empty (whitespace-only) content is failure `empty`; a reply over --max-reply-chars is `oversized`.
`truncated` and `unfinished` are final failures: the same request gets the same reply, so the cache keeps the
reply (status failed) and reruns do not pay for it again; a larger --max-tokens is a new request, and
--retry-failed asks again. `empty` and `oversized` are recorded as failures that the next run retries. None of
them is retried within the run.
The same test is applied to cached answers, so a cache written before these rules were enforced is re-judged.

Failures are kinds (the vocabulary below) plus a redacted text; a run's failures are summarised by kind.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from longsift.errors import ConfigError, LongsiftError
from longsift.llm.types import Completion

FINISHED = frozenset({"stop", "end_turn", "eos", "eos_token", "stop_sequence"})
CUT_OFF = frozenset({"length", "max_tokens", "model_length"})

# The failure kinds, each a short word a summary can count.
TRUNCATED, EMPTY, OVERSIZED, UNFINISHED = "truncated", "empty", "oversized", "unfinished"
HTTP, TIMEOUT, CONNECTION, MALFORMED = "http", "timeout", "connection", "malformed"
MODEL_NOT_FOUND, LOCAL_ERROR, PARSE = "model_not_found", "local_error", "unparseable"
FINAL_FAILURES = frozenset({TRUNCATED, UNFINISHED})
DEFAULT_MAX_FAILED = 0.5


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: str
    reason: str


def check_completion(completion: Completion, max_chars: int | None) -> Rejection | None:
    """Why `completion` is not an answer, or None when it is one."""
    finish = completion.finish_reason
    if finish is not None and finish not in FINISHED:
        if finish in CUT_OFF:
            reason = f"truncated: the reply was cut off (finish_reason {finish!r}); raise --max-tokens"
            return Rejection(TRUNCATED, reason)
        return Rejection(UNFINISHED, f"unfinished: finish_reason {finish[:40]!r} is not a finished answer")
    if max_chars is not None:
        longest = max(len(text) for text in completion.choices)
        if longest > max_chars:
            return Rejection(OVERSIZED, f"oversized: a reply of {longest:,} characters (limit {max_chars:,})")
    if any(not text.strip() for text in completion.choices):
        return Rejection(EMPTY, "empty: the reply has no text (null or empty content)")
    return None


def parse_max_failed(value: str | float | int | None) -> float | int:
    """--max-failed: a fraction of the records (0.5, "50%") or a count ("10"); integers of 1 or more are counts."""
    if value is None:
        return DEFAULT_MAX_FAILED
    if isinstance(value, int | float) and not isinstance(value, bool):
        number: float = value
        text = str(value)
    else:
        text = str(value).strip()
        try:
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ConfigError(f"--max-failed must be a fraction (0.5, 50%) or a count (10), got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"--max-failed must be 0 or more, got {value!r}")
    is_count = not text.endswith("%") and number >= 1 and float(number).is_integer() and "." not in text
    if is_count:
        return int(number)
    if number > 1:
        raise ConfigError(f"--max-failed as a fraction must lie in 0..1, got {value!r}")
    return float(number)


class StageFailed(LongsiftError):
    """Too many of a stage's records failed: outputs are written, the exit status says it failed."""

    exit_code = 1


_KIND = re.compile(r"(HTTP \d{3}|[A-Za-z_][A-Za-z_ ]{0,40}?)\s*+(?:[:(]|\bafter\b|$)")
_STAGE_PREFIXES = {"call failed": None, "call_failed": None, "unparseable reply": PARSE, "parse_failed": PARSE}
SKIPPED = frozenset({"skipped", "not sent"})


def failure_kind(error: str | None) -> str:
    """The kind of an engine failure text: "truncated: ..." -> truncated, "HTTP 500: ..." -> http 500,
    "timeout after 2s" -> timeout, "malformed response (...)" -> malformed response."""
    match = _KIND.match(error or "")
    return match.group(1).strip().lower() if match else "unknown"


def record_failure_kind(status: str, error: str | None) -> str | None:
    """The kind of a record's failure in a stage (None: not attempted, by choice, so not a failure):
    parse failures are `unparseable`, call failures their engine kind, prompts over budget `over_budget`."""
    if status in SKIPPED:
        return None
    if status in ("parse_failed", "unparseable"):
        return PARSE
    if status == "over_budget":
        return "over_budget"
    text = error or ""
    for prefix, kind in _STAGE_PREFIXES.items():  # judge texts: "call failed: truncated: ...", "unparseable reply: .."
        if text.startswith(prefix + ":"):
            return kind or failure_kind(text[len(prefix) + 1 :].strip())
    if text.startswith("not sent"):
        return None
    return failure_kind(text)


def check_stage(stage: str, total: int, kinds: Iterable[str], max_failed: float | int) -> str | None:
    """The one-line verdict on a stage: None when it passed, else why it failed (every record failed, or more
    than `max_failed`, a fraction of `total` or a count). Raise StageFailed with it after writing the outputs."""
    counted = Counter(kinds)
    failed = sum(counted.values())
    if total == 0 or failed == 0:
        return None
    limit = max_failed if isinstance(max_failed, int) else max_failed * total
    if failed < total and failed <= limit:
        return None
    shown = ", ".join(f"{n} {kind}" for kind, n in counted.most_common(6))
    what = "every record failed" if failed == total else f"more than --max-failed {_limit_text(max_failed)} failed"
    return f"{stage}: {failed} of {total} failed ({what}): {shown}"


def _limit_text(max_failed: float | int) -> str:
    return str(max_failed) if isinstance(max_failed, int) else f"{max_failed:g} ({max_failed:.0%})"


def raise_if_failed(stage: str, total: int, kinds: Iterable[str], max_failed: float | int) -> None:
    verdict = check_stage(stage, total, kinds, max_failed)
    if verdict is not None:
        raise StageFailed(verdict)
