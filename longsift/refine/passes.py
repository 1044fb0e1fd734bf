"""One LLM request per record, under a prompt token budget, parsed, with failures kept: what refine and score share.

Each record picks a prompt variant (refinement has one for instructions with an input and one without) and gives
the placeholder values; one field (the answer) is cut so the whole prompt fits the budget. Requests run through
the LLM layer's one pass loop (longsift.llm.task.arun_asks: cache, retries, concurrency, progress, new samples for
a reply that does not parse); every record ends with a TaskResult, in input order. A record is never dropped:
over budget, call failure and parse failure are outcomes with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift.llm.dryrun import DryRunReport, dry_run
from longsift.llm.engine import Engine, RunStats
from longsift.llm.parsers import Parser
from longsift.llm.settings import LLMSettings
from longsift.llm.task import Ask, PromptTask, TaskResult, run_asks
from longsift.llm.tokens import TokenCounter
from longsift.llm.types import ChatRequest
from longsift.refine.budget import fit_answer
from longsift.refine.fields import ANSWER_FIELDS, Failure


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record's request, or why there is none. `shown` is the budgeted field as the prompt shows it."""

    task: PromptTask
    request: ChatRequest | None
    shown: str
    truncated: bool
    prompt_tokens: int | None


def load_task(prompt: str | Path, parser: Parser, max_tokens: int | None = None, packaged: bool = False) -> PromptTask:
    """A packaged prompt (by name) or a prompt file, read with the stage's parser; `max_tokens` overrides its limit."""
    task = PromptTask.packaged(str(prompt), parser=parser) if packaged else PromptTask.from_file(prompt, parser=parser)
    return task.but(sampling=task.sampling.but(max_tokens=max_tokens)) if max_tokens else task


def prepare(
    variants: Sequence[tuple[PromptTask, Mapping[str, Any]]],
    fields: Sequence[str],
    counter: TokenCounter,
    budget: int | None,
) -> list[Prepared]:
    """Build each record's request from (prompt variant, placeholder values), cutting the answer so the prompt fits
    `budget` tokens. `fields` name the answer's placeholders (aliases, e.g. answer and output): all get the cut."""
    prepared = []
    for task, values in variants:

        def render(text: str, task: PromptTask = task, values: Mapping[str, Any] = values) -> ChatRequest:
            return task.request({**values, **dict.fromkeys(fields, text)})

        def measure(text: str) -> int:
            return counter.count_messages(render(text).messages)

        text = str(values[fields[0]])
        fitted = fit_answer(text, measure, counter, budget) if budget is not None else None
        if budget is not None and fitted is None:
            prepared.append(Prepared(task, None, "", False, None))
            continue
        shown = fitted.text if fitted else text
        truncated = fitted is not None and fitted.truncated
        prepared.append(Prepared(task, render(shown), shown, truncated, fitted.tokens if fitted else None))
    return prepared


@dataclass
class Pass:
    """One pass over every record: its outcomes in input order, or only a cost estimate for a dry run."""

    prepared: list[Prepared]
    token_basis: str
    outcomes: list[TaskResult] = field(default_factory=list)
    rounds: list[RunStats] = field(default_factory=list)
    dry_run: DryRunReport | None = None


def run(
    variants: Sequence[tuple[PromptTask, Mapping[str, Any]]], settings: LLMSettings, *, chars_per_token: float,
    max_prompt_tokens: int | None, resample: int, output: str | Path | None, description: str,
) -> Pass:  # fmt: skip
    """Count tokens, cut answers to the budget, then call the LLM (or estimate the cost when `settings.dry_run`)."""
    counter = TokenCounter.load(settings.tokenizer, chars_per_token)
    prepared = prepare(variants, ANSWER_FIELDS, counter, max_prompt_tokens)
    with Engine.from_settings(settings, output) as engine:
        if settings.dry_run:
            return Pass(prepared, counter.describe(), dry_run=estimate(prepared, engine, counter))
        outcomes, rounds = execute(prepared, engine, resample_on_parse_error=resample, description=description)
    return Pass(prepared, counter.describe(), outcomes, rounds)


def cut_counts(prepared: Sequence[Prepared]) -> tuple[int, int]:
    """(answers cut to fit, prompts over budget even without an answer)."""
    return sum(p.truncated for p in prepared), sum(p.request is None for p in prepared)


def budget_note(truncated: int, max_prompt_tokens: int | None, token_basis: str) -> str:
    if max_prompt_tokens is None:
        return "no prompt token budget"
    return f"{truncated} answers cut to {max_prompt_tokens} prompt tokens, {token_basis}"


def estimate(prepared: Sequence[Prepared], engine: Engine, counter: TokenCounter) -> DryRunReport:
    """The dry run: calls, cached, tokens and cost of the requests, nothing sent."""
    requests = [p.request for p in prepared if p.request is not None]
    expected = [p.task.expected_output_tokens for p in prepared if p.request is not None]
    per_call = max((e for e in expected if e is not None), default=None)
    return dry_run(requests, engine, counter, per_call)


def execute(
    prepared: Sequence[Prepared], engine: Engine, *, resample_on_parse_error: int = 0, description: str = "LLM calls"
) -> tuple[list[TaskResult], list[RunStats]]:
    """Send, parse, resample unparseable replies (the LLM layer's one pass loop); outcomes in input order and the
    engine's stats per round. A prompt over budget is never sent: its outcome is `over_budget`."""
    asks = [Ask(p.shown, p.task, p.request, None if p.request else _over_budget(p)) for p in prepared]
    report = run_asks(asks, engine, resample_on_parse_error=resample_on_parse_error, description=description)
    return report.results, report.rounds


def _over_budget(item: Prepared) -> str:
    return f"the prompt is over the token budget even with an empty answer (prompt {item.task.name!r})"


@dataclass
class PassReport:
    """What every LLM pass over a corpus reports (refine and score add their own counts)."""

    total: int = 0
    truncated: int = 0  # answers cut to fit the prompt budget
    over_budget: int = 0  # prompts over budget even without an answer: failed, never sent
    failures: list[Failure] = field(default_factory=list)
    rounds: list[RunStats] = field(default_factory=list)
    token_basis: str = ""
    max_prompt_tokens: int | None = None

    @property
    def sent(self) -> int:
        return total(self.rounds, "sent")

    @property
    def cached(self) -> int:
        return total(self.rounds, "cached")

    def calls_note(self) -> str:
        """The end of a summary line: the prompt budget, calls sent and cached, what they cost."""
        spent = cost(self.rounds)
        return (f"{budget_note(self.truncated, self.max_prompt_tokens, self.token_basis)}; {self.sent} calls sent, "
                f"{self.cached} cached, spent {'$?' if spent is None else f'${spent:.4f}'}")  # fmt: skip


def total(rounds: Sequence[RunStats], name: str) -> int:
    return sum(getattr(stats, name) for stats in rounds)


def cost(rounds: Sequence[RunStats]) -> float | None:
    costs = [stats.cost for stats in rounds]
    return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
