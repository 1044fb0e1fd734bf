"""Empty is an error: a command whose output would hold zero records says why and what to do, exits 2 and writes
nothing. `--allow-empty` (declared once here, the same on every writing command) lets a script accept it.

    from longsift import empty

    def select(..., allow_empty: bool = empty.flag()) -> None:
        empty.check(len(records), "select", output, "no record has a score", "run `longsift score` first",
                    allow_empty)

A streamed output is checked as it is written: `empty.guarded(records, ...)` raises at the end of an iteration
that yielded nothing, inside the writer's `atomic_output`, so the temporary file is removed and nothing lands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from longsift.errors import LongsiftError
from longsift.options import Options, cli_option, option

T = TypeVar("T")


class AllowEmpty(Options):
    allow_empty: bool = option(
        False, "Accept an output with zero records (for scripts); without it an empty output is an error (exit 2) "
        "and nothing is written.", flags=("--allow-empty",), recipe=False,
    )  # fmt: skip


class EmptyOutputError(LongsiftError):
    """The output would hold zero records (the CLI prints `error: ...` and exits 2)."""


def flag() -> Any:
    """The `--allow-empty` option of a command (its own parameter: `allow_empty: bool = empty.flag()`)."""
    return cli_option(AllowEmpty, "allow_empty")


def message(command: str, output: str | Path | None, reason: str, fix: str) -> str:
    where = f" {output}" if output is not None else ""
    return f"{command}: nothing to write to{where}: {reason}; {fix} (or pass --allow-empty to write an empty output)"


def check(count: int, command: str, output: str | Path | None, reason: str, fix: str, allow_empty: bool) -> None:
    """Raise EmptyOutputError when `count` is zero and an empty output was not allowed; call before writing."""
    if count == 0 and not allow_empty:
        raise EmptyOutputError(message(command, output, reason, fix))


def guarded(
    items: Iterable[T], command: str, output: str | Path | None, explain: Callable[[], tuple[str, str]],
    allow_empty: bool,
) -> Iterator[T]:  # fmt: skip
    """`items`, raising EmptyOutputError after the last one when there was none; `explain()` gives (reason, fix),
    asked only then (a stream's counts are known at its end)."""
    count = 0
    for item in items:
        count += 1
        yield item
    if count == 0 and not allow_empty:
        reason, fix = explain()
        raise EmptyOutputError(message(command, output, reason, fix))


def source_reason(source: str, read: int, quarantined: int, reasons: dict[str, int] | None = None) -> tuple[str, str]:
    """(reason, fix) when a source gave no usable record: it is empty, or every row was quarantined."""
    if read == 0:
        return f"{source} holds no rows", "check the path (and --input-format)"
    common = ", ".join(f"{why} {n}" for why, n in sorted((reasons or {}).items(), key=lambda kv: -kv[1])[:3])
    shown = f" ({common})" if common else ""
    if quarantined >= read:
        return (f"every one of the {read} rows of {source} failed the schema{shown}",
                "check --input-format; a file of prompts without responses is an eval set, not a corpus")  # fmt: skip
    return f"no usable record among the {read} rows of {source}{shown}", "check the source and the options"


def why_none_selected(summary: Any, options: Any) -> tuple[str, str]:
    """(reason, fix) of a selection of zero records, from its summary: the source, the filter or the method."""
    if summary.rows_kept == 0:
        return source_reason(summary.source, summary.rows_read, summary.rows_quarantined)
    dropped = ", ".join(f"{why} {n}" for why, n in sorted(summary.dropped.items()))
    if summary.method.get("method") in ("llm-score", "top-score"):
        if summary.dropped.get("no LLM score", 0) >= summary.rows_kept:
            return (
                f"none of the {summary.rows_kept} records has a score (metadata.score)",
                "score them first: `longsift score SOURCE -o scored.jsonl --model M`, then select scored.jsonl",
            )
        return (f"no record of {summary.rows_kept} scores at or above the threshold ({dropped})",
                "lower --threshold")  # fmt: skip
    if options.k == 0:
        return "--k is 0", "give --k 1 or more"
    return (f"no record of {summary.rows_kept} passes the length filter" + (f" ({dropped})" if dropped else ""),
            "widen --min-response-length/--max-response-length")  # fmt: skip
