"""The score stage: AlpaGasus's LLM rating of each answer's accuracy, 0-5, for selection by score.

Every input record gives one output record, in input order, response untouched, with `metadata.score_status`
`scored` (and `metadata.score`, a float) or `failed` (and `metadata.score_error`; no score, so score-based
selection never picks it). AlpaGasus wrote -1 for a reply it could not read; a failure here is not a score.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift.llm.dryrun import DryRunReport
from longsift.llm.settings import LLMSettings
from longsift.llm.task import TaskResult
from longsift.records import Example
from longsift.refine import passes
from longsift.refine.fields import Failure, prompt_fields
from longsift.refine.options import ScoreOptions
from longsift.refine.rating import parse_score

PROMPT = "score-alpagasus"
ALPAGASUS_THRESHOLD = 4.5


@dataclass
class ScoreReport(passes.PassReport):
    scores: list[float] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return len(self.scores)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def histogram(self) -> dict[float, int]:
        return dict(sorted(Counter(self.scores).items()))

    def summary(self) -> str:
        """One line with the counts, for the end of a run."""
        scores = self.scores
        spread = f"mean {statistics.fmean(scores):.2f}, median {statistics.median(scores):g}" if scores else "n/a"
        at_threshold = sum(s >= ALPAGASUS_THRESHOLD for s in scores)
        return (
            f"score: {self.total} records: {self.scored} scored, {self.failed} failed; scores {spread}; "
            f"{at_threshold} at or above {ALPAGASUS_THRESHOLD}; {self.calls_note()}"
        )


@dataclass
class ScoreResult:
    records: list[Example]
    report: ScoreReport
    dry_run: DryRunReport | None = None


def score(
    records: Iterable[Example], settings: LLMSettings, options: ScoreOptions | None = None, *,
    output: str | Path | None = None, **fields: Any,
) -> ScoreResult:  # fmt: skip
    """Rate every record's last answer with the AlpaGasus prompt (or `prompt`, a file with the same contract);
    `options` (a ScoreOptions, or its fields as keywords) mean what they mean for refine."""
    opts = options if options is not None else ScoreOptions.from_keywords(fields, "score")
    prompt, max_prompt_tokens = opts.prompt, opts.max_prompt_tokens
    records = list(records)
    task = passes.load_task(prompt or PROMPT, parse_score, opts.max_tokens, packaged=prompt is None)
    variants = [(task, prompt_fields(r)) for r in records]
    done = passes.run(variants, settings, chars_per_token=opts.chars_per_token, max_prompt_tokens=max_prompt_tokens,
                      resample=opts.resample, output=output, description="score")  # fmt: skip
    report = ScoreReport(total=len(records), token_basis=done.token_basis, max_prompt_tokens=max_prompt_tokens)
    report.truncated, report.over_budget = passes.cut_counts(done.prepared)
    if done.dry_run is not None:
        return ScoreResult([], report, done.dry_run)
    report.rounds = done.rounds
    scored = [_apply(r, item, o, report) for r, item, o in zip(records, done.prepared, done.outcomes, strict=True)]
    return ScoreResult(scored, report)


def _apply(record: Example, item: passes.Prepared, outcome: TaskResult, report: ScoreReport) -> Example:
    extra: dict[str, Any] = {}
    if item.truncated:
        extra["score_truncated"] = True
    if not outcome.ok:
        report.failures.append(Failure(record.id, record.row, outcome.status, outcome.error or "", outcome.raw))
        metadata = {k: v for k, v in record.metadata.items() if k != "score"}  # a stale score must not survive
        return Example(record.id, record.messages, record.source, record.row, metadata).with_metadata(
            **extra, score_status="failed", score_error=outcome.error
        )
    report.scores.append(outcome.value)
    return record.with_metadata(**extra, score=outcome.value, score_status="scored")
