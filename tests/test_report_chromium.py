"""The report in a real headless Chromium: no console errors, the expected numbers, a working filter, a screenshot.

Needs Debian's `chromium` (apt-get install -y chromium); skipped with that message only when no binary is found.
The screenshot goes to $LONGSIFT_ARTIFACTS/report.png, else ci-artifacts/report.png under the repository root.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium_cdp import Chromium, find_chromium
from runfixture import EXPECTED, build_large_run, build_run

from longsift import layout
from longsift.analyze import analyze
from longsift.report import report

pytestmark = pytest.mark.chromium
REPO = Path(__file__).resolve().parents[1]

SET_FILTER = """(function (filters) {
  for (const [id, value] of Object.entries(filters)) {
    const control = document.getElementById(id);
    control.value = value;
    control.dispatchEvent(new Event(id === "filter-search" ? "input" : "change"));
  }
  const shown = Array.from(document.querySelectorAll("#items article.item")).filter(el => el.offsetParent !== null);
  return {
    visible: shown.length, matched: Number(document.getElementById("match-count").textContent),
    sets: shown.map(el => el.dataset.set), more: !document.getElementById("page-next").disabled,
  };
})(%s)"""
ALL = {"filter-comparison": "all", "filter-set": "all", "filter-policy": "paper", "filter-outcome": "all",
       "filter-search": ""}  # fmt: skip


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no headless Chromium on PATH: install Debian's chromium (apt-get install -y chromium) "
                    "to run the report's browser test")  # fmt: skip
    with Chromium(binary) as browser:
        yield browser


def open_report(chromium: Chromium, html: Path) -> None:
    chromium.events.clear()
    chromium.open(html.resolve().as_uri())


def apply(chromium: Chromium, **filters: str) -> dict:
    return chromium.evaluate(SET_FILTER % json.dumps({**ALL, **{f"filter-{k}": v for k, v in filters.items()}}))


def test_report_renders_in_chromium(chromium: Chromium, tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", two_judges=True)
    analyze([run], bootstrap=200)
    html = Path(report(run, output=tmp_path / "report.html")["html"])
    open_report(chromium, html)

    assert chromium.problems() == []  # no console errors or warnings, no exception, no CSP violation
    fetched = [url for url in chromium.requested_urls() if not url.startswith("data:")]
    assert fetched == [html.resolve().as_uri()]  # nothing but the page itself
    assert chromium.evaluate("document.title") == "longsift report: run"  # the hostile markup did not run
    assert chromium.evaluate("Array.from(document.images).every(img => img.complete && img.naturalWidth > 0)")

    cells = chromium.evaluate(
        "Array.from(document.querySelectorAll('table.outcomes tr[data-set=\"all\"] td')).map(td => td.innerText)"
    )
    cells = cells[:11]  # the first table is gpt-4's; palm-2's follows
    assert cells[:3] == ["6", "5", "1"]
    assert tuple(cells[3:7]) == EXPECTED["paper"]["all"] and tuple(cells[7:11]) == EXPECTED["strict"]["all"]
    alpacaeval = chromium.evaluate("document.getElementById('alpacaeval-table').innerText")
    lc = layout.read_json(run / "alpacaeval" / "synthetic.json")["length_controlled_winrate"]
    assert "n/a: LC needs the instruction-difficulty table" in alpacaeval and f"{lc:.2f}%" in alpacaeval

    assert apply(chromium)["visible"] == 12  # both judges' verdicts on the 6 prompts
    assert apply(chromium, comparison="1", outcome="win")["visible"] == 6  # palm-2 gives A every prompt
    assert apply(chromium, comparison="1", outcome="lose")["visible"] == 0
    filters = {"comparison": "0"}  # gpt-4 from here on
    koala = apply(chromium, set="koala", **filters)
    assert (koala["visible"], koala["matched"], set(koala["sets"])) == (3, 3, {"koala"})
    assert apply(chromium, outcome="win", **filters)["visible"] == 3  # paper: k1, k2, v2
    assert apply(chromium, policy="strict", outcome="win", **filters)["visible"] == 2  # strict: k1, v2
    assert apply(chromium, policy="strict", set="vicuna", outcome="tie", **filters)["visible"] == 1  # v1
    assert apply(chromium, outcome="failed", **filters)["visible"] == 1  # v3
    assert apply(chromium, outcome="flipped", **filters)["visible"] == 2  # k2, v1
    assert apply(chromium, search="koala/k3", **filters)["visible"] == 1
    assert apply(chromium)["visible"] == 12
    assert chromium.problems() == []  # filtering threw nothing either

    artifacts = Path(os.environ.get("LONGSIFT_ARTIFACTS") or REPO / "ci-artifacts")
    chromium.screenshot(artifacts / "report.png")
    assert (artifacts / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_pages_through_many_prompts(chromium: Chromium, tmp_path: Path) -> None:
    run = build_large_run(tmp_path / "run", 60)
    open_report(chromium, Path(report(run)["html"]))
    assert chromium.problems() == []
    first = apply(chromium)
    assert (first["visible"], first["matched"], first["more"]) == (25, 60, True)
    assert chromium.evaluate("document.getElementById('page-where').textContent") == "page 1 of 3"
    assert chromium.evaluate("document.getElementById('page-prev').disabled")
    ids = "Array.from(document.querySelectorAll('#items article.item .where')).map(e => e.textContent)"
    page_one = chromium.evaluate(ids)
    chromium.evaluate("document.getElementById('page-next').click()")
    assert chromium.evaluate("document.getElementById('browser').dataset.page") == "2"
    page_two = chromium.evaluate(ids)
    assert len(page_two) == 25 and not set(page_one) & set(page_two)  # a new page, not more of the same
    chromium.evaluate("document.getElementById('page-next').click()")
    assert chromium.evaluate("document.querySelectorAll('#items article.item').length") == 10
    assert chromium.evaluate("document.getElementById('page-next').disabled")
    chromium.evaluate("document.getElementById('page-prev').click()")
    assert chromium.evaluate(ids) == page_two
    losses = apply(chromium, outcome="lose")  # every third prompt: 20, all on one page, back at page 1
    assert (losses["visible"], losses["matched"], losses["more"]) == (20, 20, False)
    assert chromium.problems() == []
