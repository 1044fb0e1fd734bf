"""`report(run_dir, output, markdown)`: one self-contained HTML page (and a Markdown summary) of a run.

Self-contained: CSS and JS inline, plots as data: SVGs, and a Content-Security-Policy that forbids any network
access and any script but ours (allowed by its SHA-256), so even a model output that slipped through escaping
could not run.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from longsift.errors import LongsiftError
from longsift.outputs import write_text
from longsift.report import sections
from longsift.report.browser import browser
from longsift.report.collect import RunData, collect
from longsift.report.headline import Headline, headline
from longsift.report.leaderboard import placements
from longsift.report.markdown import markdown as render_markdown
from longsift.report.markup import Html, esc, join, tag
from longsift.report.names import demo_models

# (anchor, title, has-data test, what is missing when it is absent)
CONTENTS = (
    (
        "headline",
        "Headline",
        lambda d: bool(d.comparisons or d.alpacaeval or d.mtbench or d.openllm),
        "results to headline",
    ),
    ("judging", "Pairwise judging", lambda d: bool(d.comparisons), "pairwise judgments (judge/)"),
    ("alpacaeval", "AlpacaEval", lambda d: bool(d.alpacaeval), "AlpacaEval results (alpacaeval/)"),
    ("mtbench", "MT-Bench", lambda d: bool(d.mtbench), "MT-Bench scores (mtbench/)"),
    ("length-bias", "Length bias", lambda d: bool(d.analysis), "length analysis (analyze/analysis.json)"),
    ("refinement", "Refinement", lambda d: bool(d.refined), "refined selection (select/, refine_status)"),
    ("selection", "Selection", lambda d: bool(d.selection_files or d.selection_summary), "selection (select/)"),
    ("training", "Training", lambda d: bool(d.training), "training curves (train/)"),
    ("browser", "Prompt browser", lambda d: any(c.outcomes for c in d.comparisons), "per-prompt judgments"),
)


OPTIONAL = {"headline", "refinement"}  # shown when there is something to show, never listed as absent


def _static(name: str) -> str:
    return resources.files("longsift.report").joinpath("static", name).read_text(encoding="utf-8")


def absent_parts(data: RunData) -> list[str]:
    missing = [what for anchor, _, present, what in CONTENTS if anchor not in OPTIONAL and not present(data)]
    if not data.generations:
        missing.append("generations (generate/)")
    return missing


def run_headline(data: RunData) -> Headline:
    """The headline of a run: what the HTML page shows first and `longsift run` prints last."""
    llms = [c.judge.rpartition("/")[0] for c in data.comparisons] + [str(r.get("judge") or "") for r in
                                                                     data.mtbench.values()]  # fmt: skip
    return headline(data, demo_models(data.run_dir, llms), placements(data.alpacaeval))


def render_html(data: RunData, title: str) -> str:
    nav = [tag("a", name, href=f"#{anchor}", class_=None if present(data) else "missing")
           for anchor, name, present, _ in CONTENTS if present(data) or anchor not in OPTIONAL]  # fmt: skip
    missing = absent_parts(data)
    overview: list[Any] = []
    if missing:
        overview.append(tag("p", [tag("strong", "Absent from this run: "), "; ".join(missing) + "."], class_="absent",
                                  id="absent-list"))  # fmt: skip
    if data.notes:
        overview.append(tag("div", [tag("strong", "Notes"), tag("ul", [tag("li", n) for n in data.notes])],
                            class_="notes", id="notes"))  # fmt: skip
    body: list[Any] = [
        sections.headline_section(run_headline(data)), sections.judging(data), sections.alpacaeval(data),
        sections.mtbench(data), sections.length_bias(data),
        sections.refinement(data) if data.refined else None, sections.selection(data),
        sections.training(data),
        browser(data),
    ]  # fmt: skip
    return page(title, str(data.run_dir), nav, [*overview, *body])


def page(title: str, meta: str, nav: list[Any], main: list[Any]) -> str:
    """The whole document: inline CSS and script, the CSP that allows only that script, no network."""
    from longsift import __version__

    script, style = _static("report.js"), _static("report.css")
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; "
           "form-action 'none'; base-uri 'none'")  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = tag("header", [tag("h1", title), tag("div", f"{meta} · longsift {__version__} · {stamp}",
                                                  class_="meta")], class_="page")  # fmt: skip
    document = join([
        Html("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"),
        Html(f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'),
        Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        tag("title", title), Html(f"<style>{style}</style></head><body>"),
        header, tag("nav", nav, class_="toc"), tag("main", main),
        Html(f"<script>{script}</script></body></html>\n"),
    ])  # fmt: skip
    return str(document)


def report(
    run_dir: Path, output: Path | None = None, markdown: Path | None = None, title: str | None = None
) -> dict[str, Any]:
    """Render RUN_DIR into `output` (default RUN_DIR/report.html) and, if asked, a Markdown summary."""
    data = collect(Path(run_dir))
    title = title or f"longsift report: {Path(run_dir).resolve().name}"
    output = Path(output) if output else Path(run_dir) / "report.html"
    write_text(output, render_html(data, title))
    written = {"html": str(output), "markdown": None, "absent": absent_parts(data), "notes": data.notes}
    if markdown is not None:
        write_text(markdown, render_markdown(data, title, absent_parts(data), run_headline(data)))
        written["markdown"] = str(markdown)
    return written


def compare(runs: list[Path], output: Path, title: str | None = None) -> dict[str, Any]:
    """Several runs on one page (longsift.report.compare): results side by side, config diff, stage timelines."""
    from longsift.report.compare import compare_body

    runs = [Path(run) for run in runs]
    for run in runs:
        if not run.is_dir():
            raise LongsiftError(f"{run} is not a directory; give run directories a recipe or the stages wrote")
    title = title or "longsift comparison: " + " vs ".join(run.resolve().name for run in runs)
    body, notes = compare_body(runs)
    nav = [
        tag("a", name, href=f"#{anchor}")
        for anchor, name in (
            ("side-by-side", "Results side by side"),
            ("config", "Configuration differences"),
            ("timeline", "Stage timeline"),
            ("headlines", "Each run"),
        )
    ]
    overview = [tag("div", [tag("strong", "Notes"), tag("ul", [tag("li", n) for n in notes])], class_="notes",
                    id="notes")] if notes else []  # fmt: skip
    write_text(output, page(title, " · ".join(str(run) for run in runs), nav, [*overview, *body]))
    return {"html": str(output), "markdown": None, "absent": [], "notes": notes}
