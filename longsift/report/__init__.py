"""One self-contained HTML report (and a Markdown summary) of whatever a run directory holds.

`report` reads a run directory (its contract is `longsift.layout`) and writes the HTML
page (plots embedded as PNG, no network at view time) and optionally Markdown. Rendering loads matplotlib, so it
is imported only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["report"]


def report(
    run_dir: Path, output: Path | None = None, markdown: Path | None = None, title: str | None = None
) -> dict[str, Any]:
    """Render RUN_DIR into `output` (default RUN_DIR/report.html) and, if asked, a Markdown summary."""
    from longsift.report.render import report as render

    return render(run_dir, output=output, markdown=markdown, title=title)
