"""PromptTask: the shape shared by refinement, LLM scoring and every judge.

A task is a prompt file (template + default sampling), a way to get placeholder values from a record, and a
parser. `run_task` sends one request per record through the engine, parses each reply, and keeps the raw
completion beside the value. Parsing reads the cache: fixing a parser and running again costs no new call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from longsift.errors import ConfigError
from longsift.llm.engine import Engine, RunStats, run_coroutine
from longsift.llm.parsers import PARSERS, Parser, safe_parse
from longsift.llm.prompt_file import PromptFile, placeholder_names, read_prompt_file
from longsift.llm.types import CallResult, ChatRequest, Sampling
from longsift.records import Message

TaskStatus = Literal["ok", "parse_failed", "call_failed", "over_budget", "skipped"]
Fields = Callable[[Any], Mapping[str, Any]]
DEFAULT_RESAMPLE_TEMPERATURE = 0.7


@dataclass(frozen=True)
class PromptTask:
    name: str
    sections: tuple[tuple[str, str], ...]  # (role, template)
    parser: Parser
    sampling: Sampling = field(default_factory=Sampling)
    fields: Fields | None = None  # record -> placeholder values; default: mapping keys or attributes
    expected_output_tokens: int | None = None
    resample_temperature: float = DEFAULT_RESAMPLE_TEMPERATURE
    source: str = ""
    description: str = ""
    inputs: Fields | None = None  # record -> ChatRequest.inputs (what reference backends read), default none

    @classmethod
    def from_file(cls, path: str | Path, *, parser: Parser | None = None, fields: Fields | None = None) -> PromptTask:
        """Load a prompt file; `parser` overrides the one its header names (a stage's parser contract)."""
        return cls.from_prompt(read_prompt_file(path), parser=parser, fields=fields)

    @classmethod
    def packaged(cls, name: str, *, parser: Parser | None = None, fields: Fields | None = None) -> PromptTask:
        """A prompt shipped in longsift/prompts/NAME.toml."""
        resource = resources.files("longsift").joinpath("prompts", f"{name}.toml")
        if not resource.is_file():
            raise ConfigError(f"no packaged prompt {name!r} (looked for longsift/prompts/{name}.toml)")
        with resources.as_file(resource) as path:
            return cls.from_file(path, parser=parser, fields=fields)

    @classmethod
    def from_prompt(cls, prompt: PromptFile, *, parser: Parser | None = None, fields: Fields | None = None):
        header = prompt.header
        if parser is None:
            if "parser" not in header:
                raise ConfigError(f"{prompt.path}: no parser: name one in the header (parser: text) or pass one")
            parser = PARSERS.get(str(header["parser"]))
        try:
            sampling = Sampling.from_dict(header.get("sampling") or {})
            expected = header.get("expected_output_tokens")
            expected = None if expected is None else int(expected)
            resample_temperature = float(header.get("resample_temperature", DEFAULT_RESAMPLE_TEMPERATURE))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{prompt.path}: bad sampling parameters: {exc}") from None
        return cls(
            name=str(header.get("name") or Path(prompt.path).stem), sections=prompt.sections, parser=parser,
            sampling=sampling, fields=fields, expected_output_tokens=expected,
            resample_temperature=resample_temperature, source=prompt.path,
            description=str(header.get("description") or ""),
        )  # fmt: skip

    @cached_property
    def placeholders(self) -> frozenset[str]:
        return frozenset(n for _, body in self.sections for n in placeholder_names(body, self.source))

    def but(self, **changes: Any) -> PromptTask:
        return replace(self, **changes)

    def values(self, record: Any) -> dict[str, Any]:
        if self.fields is not None:
            given = self.fields(record)
        elif isinstance(record, Mapping):
            given = record
        else:
            given = {name: getattr(record, name) for name in self.placeholders if hasattr(record, name)}
        missing = sorted(self.placeholders - set(given))
        if missing:
            raise ConfigError(
                f"prompt {self.name!r} ({self.source}) needs {missing} but record {record_id(record)!r} has no such "
                "field; pass fields=... to map the record to the prompt's placeholders"
            )
        return dict(given)

    def format(self, record: Any) -> tuple[Message, ...]:
        values = self.values(record)
        return tuple(Message(role, body.format_map(values)) for role, body in self.sections)  # type: ignore[arg-type]

    def request(self, record: Any, sampling: Sampling | None = None) -> ChatRequest:
        inputs = None if self.inputs is None else self.inputs(record)
        return ChatRequest(self.format(record), sampling or self.sampling, tag=record_id(record), inputs=inputs)

    def requests(self, records: Iterable[Any]) -> list[ChatRequest]:
        return [self.request(record) for record in records]

    def resample(self, request: ChatRequest, round: int) -> ChatRequest:
        """A new sample for a reply that did not parse: another seed (and some temperature if it was greedy),
        so it has its own cache key and a chance of a different answer."""
        base = self.sampling
        temperature = base.temperature if base.temperature > 0 else self.resample_temperature
        return replace(request, sampling=base.but(seed=(base.seed or 0) + round, temperature=temperature))

    def parse(self, text: str) -> Any:
        return self.parser(text)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One record's outcome. `raw` is the completion the value came from (or the last one tried); every
    completion tried is in `raws`. A call failure keeps the engine's reason in `error`."""

    record: Any
    status: TaskStatus
    value: Any = None
    raw: str | None = None
    error: str | None = None
    raws: tuple[str, ...] = ()
    calls: tuple[CallResult, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def attempts(self) -> int:
        """HTTP attempts over every completion tried (retries and resamples)."""
        return sum(call.attempts for call in self.calls)


@dataclass
class TaskReport:
    results: list[TaskResult]
    rounds: list[RunStats] = field(default_factory=list)  # one engine run per sampling round

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> TaskResult:
        return self.results[index]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("ok", "parse_failed", "call_failed", "skipped"), 0)  # over_budget: only if any
        for result in self.results:
            counts[result.status] = counts.get(result.status, 0) + 1
        return counts

    @property
    def sent(self) -> int:
        return sum(stats.sent for stats in self.rounds)

    @property
    def cost(self) -> float | None:
        costs = [stats.cost for stats in self.rounds]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def summary(self) -> str:
        counts = self.counts()
        cost = self.cost
        return (
            f"{len(self.results)} records: {counts['ok']} ok, {counts['parse_failed']} unparseable, "
            f"{counts['call_failed']} call failures, {counts['skipped']} skipped; {self.sent} calls sent, "
            f"spent {'$?' if cost is None else f'${cost:.4f}'}"
        )


@dataclass(frozen=True, slots=True)
class Ask:
    """One record's question: the task that words and parses it, and its request, or why none is sent
    (`refused`: the record ends `over_budget` with that reason, nothing sent)."""

    record: Any
    task: PromptTask
    request: ChatRequest | None
    refused: str | None = None


async def arun_asks(
    asks: Sequence[Ask], engine: Engine, *, resample_on_parse_error: int = 0, description: str = "LLM calls"
) -> TaskReport:
    """The one LLM pass loop: send every request, parse each reply, give unparseable ones up to
    `resample_on_parse_error` new samples; results in input order, one engine run per round."""
    results = [
        TaskResult(ask.record, "skipped") if ask.request is not None
        else TaskResult(ask.record, "over_budget", error=ask.refused)
        for ask in asks
    ]  # fmt: skip
    report = TaskReport(results)
    pending = [i for i, ask in enumerate(asks) if ask.request is not None]
    for round in range(resample_on_parse_error + 1):
        batch = [_request(asks[i], round) for i in pending]
        run = await engine.run(batch, description if round == 0 else f"{description} (resample {round})")
        report.rounds.append(run.stats)
        retry = []
        for i, call in zip(pending, run.results, strict=True):
            results[i] = _outcome(asks[i].task, call, results[i])
            if results[i].status == "parse_failed":
                retry.append(i)
        pending = retry
        if not pending:
            break
    return report


def run_asks(
    asks: Sequence[Ask], engine: Engine, *, resample_on_parse_error: int = 0, description: str = "LLM calls"
) -> TaskReport:
    return run_coroutine(
        arun_asks(list(asks), engine, resample_on_parse_error=resample_on_parse_error, description=description)
    )


async def arun_task(
    task: PromptTask, records: Sequence[Any], engine: Engine, *, resample_on_parse_error: int = 0,
    description: str | None = None,
) -> TaskReport:  # fmt: skip
    asks = [Ask(record, task, task.request(record)) for record in records]
    return await arun_asks(
        asks, engine, resample_on_parse_error=resample_on_parse_error, description=description or task.name
    )


def run_task(
    task: PromptTask, records: Iterable[Any], engine: Engine, *, resample_on_parse_error: int = 0,
    description: str | None = None,
) -> TaskReport:  # fmt: skip
    """Ask `task` about every record; results in record order. Parse failures get up to
    `resample_on_parse_error` new samples (0: reported as parse_failed, never guessed)."""
    coroutine = arun_task(
        task, list(records), engine, resample_on_parse_error=resample_on_parse_error, description=description
    )
    return run_coroutine(coroutine)


def _request(ask: Ask, round: int) -> ChatRequest:
    assert ask.request is not None
    return ask.request if round == 0 else ask.task.resample(ask.request, round)


def _outcome(task: PromptTask, call: CallResult, before: TaskResult) -> TaskResult:
    record, calls = before.record, (*before.calls, call)
    if not call.ok or call.text is None:
        status: TaskStatus = "skipped" if call.status == "skipped" else "call_failed"
        # A cut-off reply is kept for audit; a resample that could not be sent keeps the earlier unparseable one.
        raw = call.text if call.text is not None else before.raw
        return TaskResult(record, status, None, raw, call.error, before.raws, calls)
    raws = (*before.raws, call.text)
    parsed, value = safe_parse(task.parser, call.text)
    if not parsed:
        return TaskResult(record, "parse_failed", None, call.text, value, raws, calls)
    return TaskResult(record, "ok", value, call.text, None, raws, calls)


def record_id(record: Any) -> str:
    if isinstance(record, Mapping):
        return str(record.get("id", ""))
    return str(getattr(record, "id", "") or getattr(record, "prompt_id", ""))
