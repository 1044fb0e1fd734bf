"""The options of `analyze` (and the recipe step), declared once (see `longsift.options`)."""

from __future__ import annotations

from pathlib import Path

from longsift.lengths import UNITS_HELP
from longsift.options import Options, option

DEFAULT_TOLERANCE = 0.10  # the same as analyze.length_bias's (a test checks): importing that pulls numpy into --help


class AnalyzeOptions(Options):
    generations: list[Path] = option([], "Generation JSONL files (repeatable).", flags=("--generations", "-g"),
                                     recipe=False)  # fmt: skip
    selection: list[Path] = option([], "A selected subset to profile (repeatable).", recipe=False)
    source: Path | None = option(None, "The corpus the subsets were selected from.", recipe=False)
    by: str | None = option(None, UNITS_HELP + " Default: the unit the run's selection was made in, else chars.",
                            deprecated=("--unit",))  # fmt: skip
    tokenizer: str | None = option(None, "Tokenizer path, tokenizer.json or hub id.")
    tolerance: float = option(DEFAULT_TOLERANCE, "Length-matched: |len_a - len_b| / max <= tolerance.")
    bootstrap: int = option(1000, "Bootstrap resamples for confidence intervals.", ge=0)
    seed: int = option(0, "Seed of the bootstrap.")
    output: Path | None = option(
        None, "analysis.json path (default: RUN_DIR/analyze/analysis.json; bare files print JSON to stdout).",
        flags=("-o", "--output"), recipe=False,
    )  # fmt: skip
