"""The options of `report` (and the recipe step), declared once (see `longsift.options`)."""

from __future__ import annotations

from pathlib import Path

from longsift.lengths import UNITS_HELP
from longsift.options import Options, option


class ReportOptions(Options):
    output: Path | None = option(None, "HTML file (default RUN_DIR/report.html).", flags=("-o", "--output"),
                                 recipe=False)  # fmt: skip
    markdown: Path | None = option(None, "Also write a Markdown summary here.", recipe=False)
    title: str | None = option(None, "Page title (default: the run directory's name).")
    by: str | None = option(
        None, UNITS_HELP + " Given, the run is analyzed again in it first; without it the report shows "
        "RUN_DIR/analyze/analysis.json as it is.", recipe=False,
    )  # fmt: skip
    tokenizer: str | None = option(None, "Tokenizer for --by tokens.", recipe=False)
