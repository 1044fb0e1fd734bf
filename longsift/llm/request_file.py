"""`longsift llm run`: chat requests from a JSON-lines file, answers to another, in input order.

Each input line is {"id": ..., "messages": [{"role", "content"}, ...]} or {"id": ..., "prompt": "..."}
(optionally with "system"); a line may carry its own "sampling" object over the command's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from longsift.errors import DataError
from longsift.formats.rows import open_binary
from longsift.llm.engine import RunReport
from longsift.llm.types import ChatRequest, Sampling
from longsift.records import ROLES, Message


def read_requests(path: str | Path, sampling: Sampling) -> list[ChatRequest]:
    path = Path(path)
    requests: list[ChatRequest] = []
    with open_binary(path) as stream:
        for line_no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                requests.append(_request(orjson.loads(line), sampling, len(requests)))
            except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
                raise DataError(
                    str(path), f"not a chat request ({exc}); want messages or prompt", line=line_no
                ) from None
    return requests


def _request(data: dict[str, Any], sampling: Sampling, row: int) -> ChatRequest:
    if "messages" in data:
        messages = [Message(m["role"], str(m["content"])) for m in data["messages"]]
    else:
        messages = ([Message("system", str(data["system"]))] if data.get("system") else []) + [
            Message("user", str(data["prompt"]))
        ]
    bad = [m.role for m in messages if m.role not in ROLES]
    if bad or not messages:
        raise ValueError(f"roles must be system/user/assistant, got {bad or 'no messages'}")
    if "sampling" in data:
        sampling = Sampling.from_dict({**sampling.to_dict(), **data["sampling"]})
    return ChatRequest(tuple(messages), sampling, tag=str(data.get("id", row)))


def result_rows(report: RunReport) -> Iterable[dict[str, Any]]:
    for result in report:
        done = result.completion
        yield {
            "id": result.request.tag, "status": result.status, "text": result.text,
            "finish_reason": done.finish_reason if done else None, "error": result.error,
            "attempts": result.attempts, "cached": result.cached,
            "prompt_tokens": done.usage.prompt_tokens if done else None,
            "completion_tokens": done.usage.completion_tokens if done else None, "cost": result.cost,
        }  # fmt: skip


def write_results(report: RunReport, path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for row in result_rows(report):
            out.write(orjson.dumps(row) + b"\n")
    tmp.replace(path)
    return len(report)
