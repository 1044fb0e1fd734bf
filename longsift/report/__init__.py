"""One self-contained HTML report (and a Markdown summary) of whatever a run directory holds.

`layout` is the run-directory contract every stage writes to; `render_report` reads a run directory and writes the
HTML page (plots embedded as PNG, no network at view time) and optionally Markdown. Matplotlib loads only when
rendering.
"""

from longsift.report import layout

__all__ = ["layout", "report"]


def report(run_dir, output=None, markdown=None, title=None):  # type: ignore[no-untyped-def]
    """See longsift.report.render.report (imported lazily: rendering pulls in matplotlib)."""
    from longsift.report.render import report as render

    return render(run_dir, output=output, markdown=markdown, title=title)
