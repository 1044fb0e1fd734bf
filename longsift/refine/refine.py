"""The refine stage: ask an LLM to criticise each answer and write a better one that keeps its content (the paper's
"introspection" refinement), and put the better answer in place of the original.

Every input record gives exactly one output record, in input order, with `metadata.refine_status`:
- `refined`: the reply parsed and differs from the answer shown (after whitespace normalisation): replaced;
- `unchanged`: the better answer equals the answer shown: the original is kept;
- `failed`: over the prompt budget, the call failed, the reply was no answer (cut off at max_tokens: `truncated`;
  null or empty: `empty`; too long: `oversized`; see longsift.llm.outcomes), or it did not parse: the original
  is kept and `metadata.refine_error` says why (its first word is the kind). A cut-off reply is never a refinement.
`metadata.original_response` always holds the original answer, so no response is ever lost or left empty.
Multi-turn records: the last assistant turn is refined, shown with the user turn before it.

How this differs from the paper's scripts (refinement/refine_responses.py and _postprocess.py):
- prompts: the same two texts (an instruction with an input gets its own system prompt), byte for byte, as
  prompt files;
- budget: the script cut `n - 2048` characters when instruction + input + output came to n > 2048 Llama-2 tokens;
  here the answer is cut in tokens until the whole prompt fits (see budget.py). The script also capped the reply at
  min(2048, 4050 - prompt tokens); here the prompt file's max_tokens (2048) or --max-tokens;
- failures: the post-processing kept the original when it found no (or several) `[Better Answer]`, counting them
  only in a printed total (and, as released, appended nothing to the list it saved); here every record says
  what happened, failures are listed, and a later run retries call failures from where it stopped.
`compat="paper"` switches the budget and the reply reading back to the scripts' (README, "Reproducing the paper
exactly").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift.llm.dryrun import DryRunReport
from longsift.llm.parsers import Parser
from longsift.llm.settings import LLMSettings
from longsift.llm.task import PromptTask, TaskResult
from longsift.llm.tokens import TokenCounter
from longsift.records import Example
from longsift.refine import passes
from longsift.refine.better_answer import parse_better_answer
from longsift.refine.budget import paper_char_cut
from longsift.refine.fields import Failure, prompt_fields
from longsift.refine.options import RefineOptions
from longsift.refine.paper_postprocess import parse_paper_better_answer

PROMPT = "refine-paper"
PROMPT_WITH_INPUT = "refine-paper-input"
STATUSES = ("refined", "unchanged", "failed")


@dataclass
class RefineReport(passes.PassReport):
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    ratios: list[float] = field(default_factory=list)  # refined / original characters, refined records only

    def ratio_mean(self) -> float | None:
        return statistics.fmean(self.ratios) if self.ratios else None

    def ratio_median(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    def summary(self) -> str:
        """One line with the counts, for the end of a run."""
        counts = self.counts
        mean, median = self.ratio_mean(), self.ratio_median()
        ratio = "n/a" if mean is None else f"mean {mean:.2f}, median {median:.2f}"
        return (
            f"refine: {self.total} records: {counts['refined']} refined, {counts['unchanged']} unchanged, "
            f"{counts['failed']} failed; length refined/original (chars): {ratio}; {self.calls_note()}"
        )


@dataclass
class RefineResult:
    records: list[Example]
    report: RefineReport
    dry_run: DryRunReport | None = None


def load_prompts(
    prompt: str | Path | None = None, max_tokens: int | None = None, parser: Parser = parse_better_answer
) -> tuple[PromptTask, PromptTask]:
    """(without input, with input): the paper's two prompts, or one user prompt file for both."""
    if prompt is not None:
        task = passes.load_task(prompt, parser, max_tokens)
        return task, task
    return (
        passes.load_task(PROMPT, parser, max_tokens, packaged=True),
        passes.load_task(PROMPT_WITH_INPUT, parser, max_tokens, packaged=True),
    )


def refine(
    records: Iterable[Example], settings: LLMSettings, options: RefineOptions | None = None, *,
    output: str | Path | None = None, **fields: Any,
) -> RefineResult:  # fmt: skip
    """Refine every record's last answer, with `options` (a RefineOptions, or its fields as keywords):
    `settings.tokenizer` counts tokens (else `chars_per_token`); `max_tokens` overrides the prompt's completion
    limit; `resample` gives unparseable replies new samples; `output` places the default cache beside it;
    `settings.dry_run` only estimates the cost; `compat="paper"` cuts answers in characters and reads replies as
    the paper's scripts did (budget.paper_char_cut, paper_postprocess)."""
    opts = options if options is not None else RefineOptions.from_keywords(fields, "refine")
    max_prompt_tokens, chars_per_token, compat = opts.max_prompt_tokens, opts.chars_per_token, opts.compat
    records = list(records)
    parser = parse_paper_better_answer if compat == "paper" else parse_better_answer
    plain, with_input = load_prompts(opts.prompt, opts.max_tokens, parser)
    values_list = uncut = [prompt_fields(record) for record in records]
    paper_cuts = 0
    if compat == "paper" and max_prompt_tokens is not None:
        values_list, paper_cuts = _paper_cut(uncut, settings, chars_per_token, max_prompt_tokens)
    variants = [(with_input if values["input"] else plain, values) for values in values_list]
    budget = None if compat == "paper" else max_prompt_tokens
    done = passes.run(variants, settings, chars_per_token=chars_per_token, max_prompt_tokens=budget,
                      resample=opts.resample, output=output, description="refine")  # fmt: skip
    report = RefineReport(total=len(records), token_basis=done.token_basis, max_prompt_tokens=max_prompt_tokens)
    report.truncated, report.over_budget = passes.cut_counts(done.prepared)
    report.truncated += paper_cuts
    if done.dry_run is not None:
        return RefineResult([], report, done.dry_run)
    report.rounds = done.rounds
    refined = [
        _apply(record, item, outcome, report, cut_in_chars=cut["answer"] != whole["answer"])
        for record, item, outcome, cut, whole in zip(
            records, done.prepared, done.outcomes, values_list, uncut, strict=True
        )  # fmt: skip
    ]
    return RefineResult(refined, report)


def _paper_cut(
    values_list: list[dict[str, Any]], settings: LLMSettings, chars_per_token: float, budget: int
) -> tuple[list[dict[str, Any]], int]:
    counter = TokenCounter.load(settings.tokenizer, chars_per_token)
    cut = []
    for values in values_list:
        answer = paper_char_cut(values["instruction"], values["input"], values["answer"], counter, budget)
        cut.append({**values, "answer": answer, "output": answer})
    return cut, sum(c["answer"] != v["answer"] for c, v in zip(cut, values_list, strict=True))


def _apply(
    record: Example, item: passes.Prepared, outcome: TaskResult, report: RefineReport, cut_in_chars: bool = False
) -> Example:
    original = record.responses[-1]
    extra: dict[str, Any] = {"original_response": original}
    if item.truncated or cut_in_chars:
        extra["refine_truncated"] = True
    if not outcome.ok:
        report.counts["failed"] += 1
        report.failures.append(Failure(record.id, record.row, outcome.status, outcome.error or "", outcome.raw))
        return record.with_metadata(**extra, refine_status="failed", refine_error=outcome.error)
    better: str = outcome.value
    if normalise(better) == normalise(item.shown):
        report.counts["unchanged"] += 1
        return record.with_metadata(**extra, refine_status="unchanged")
    report.counts["refined"] += 1
    report.ratios.append(len(better) / max(1, len(original)))
    return record.with_response(better, **extra, refine_status="refined")


def normalise(text: str) -> str:
    return " ".join(text.split())
