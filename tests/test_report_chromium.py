"""The report in a real headless Chromium: no console errors, the expected numbers, a working filter, a screenshot.

Needs Debian's `chromium` (apt-get install -y chromium); skipped with that message only when no binary is found.
The screenshot goes to $LONGSIFT_ARTIFACTS/report.png, else ci-artifacts/report.png under the repository root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from chromium_cdp import Chromium
from runfixture import EXPECTED, build_large_run, build_run

from longsift import layout
from longsift.analyze import analyze
from longsift.outputs import write_jsonl
from longsift.records import Generation, Judgment
from longsift.report import report
from longsift.report.render import compare

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

    headline = chromium.evaluate("document.getElementById('headline').innerText")
    assert "—" not in headline and "60.0% (23.1–88.2)" in headline and "Zhao et al. 2024" in headline
    assert_leaderboard_sorts_and_filters(chromium)
    assert chromium.problems() == []
    screenshot(chromium, "report.png")


def screenshot(chromium: Chromium, name: str) -> None:
    """Kept as a CI artifact: $LONGSIFT_ARTIFACTS (or $CI_ARTIFACTS), else ci-artifacts/ in the repository."""
    artifacts = Path(os.environ.get("LONGSIFT_ARTIFACTS") or os.environ.get("CI_ARTIFACTS") or REPO / "ci-artifacts")
    chromium.screenshot(artifacts / name)
    assert (artifacts / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


COLUMN = """(function (index) {
  return Array.from(document.querySelectorAll("#leaderboard tbody tr")).filter(r => !r.hidden)
    .map(r => r.cells[index].dataset.value === undefined ? r.cells[index].textContent : r.cells[index].dataset.value);
})(%d)"""


def assert_leaderboard_sorts_and_filters(chromium: Chromium) -> None:
    assert chromium.evaluate("document.querySelectorAll('#leaderboard tr.ours').length") == 2
    win_rate = 3  # Rank, Model, LC win rate, Win rate, ...
    chromium.evaluate(f"document.querySelectorAll('#leaderboard thead th')[{win_rate}].click()")
    values = [float(v) for v in chromium.evaluate(COLUMN % win_rate) if v != ""]
    assert len(values) > 200 and values == sorted(values)  # ascending
    chromium.evaluate(f"document.querySelectorAll('#leaderboard thead th')[{win_rate}].click()")
    values = [float(v) for v in chromium.evaluate(COLUMN % win_rate) if v != ""]
    assert values == sorted(values, reverse=True)
    chromium.evaluate("document.querySelectorAll('#leaderboard thead th')[1].click()")  # by model name
    names = chromium.evaluate(COLUMN % 1)
    assert names == sorted(names, key=lambda n: n.lower()) or names[0].lower() <= names[-1].lower()
    chromium.evaluate("""(function () { const box = document.getElementById('leaderboard-search');
      box.value = 'gpt4'; box.dispatchEvent(new Event('input')); })()""")  # fmt: skip
    shown = chromium.evaluate(COLUMN % 1)
    assert shown and all("gpt4" in n.lower() or n in ("alpaca-7b", "synthetic") for n in shown)
    assert {"alpaca-7b", "synthetic"} <= set(shown)  # the run's rows stay in view


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


def build_paper_sized_run(run_dir: Path, n: int = 1030) -> Path:
    """The paper's 1,030 test prompts over its five sets, both orders judged: hand-made judgments (the judge step's
    own file format), so the browser test needs no 2,060 LLM calls."""
    sets = ("vicuna", "koala", "wizardlm", "sinstruct", "lima")
    prompts = [(sets[i % 5], f"p{i}") for i in range(n)]
    for model in ("longest-1k", "alpagasus-1k"):
        write_jsonl([Generation(p, s, model, (f"question {p} of {s}",), (f"{model} answers {p} " + "word " * 40,))
                     for s, p in prompts], layout.generation_file(run_dir, model))  # fmt: skip
    verdicts = ("a", "b", "tie")
    judgments = [Judgment(p, s, "longest-1k", "alpagasus-1k", order, "gpt-4", "paper", verdicts[(i + k) % 3],
                          raw=f"reply {p} {order}") for i, (s, p) in enumerate(prompts)
                 for k, order in enumerate(("ab", "ba"))]  # fmt: skip
    write_jsonl(judgments, layout.judge_dir(run_dir, "longest-1k", "alpagasus-1k") / layout.JUDGMENTS)
    return run_dir


DOM_SIZE = "document.getElementsByTagName('*').length"


def test_a_thousand_prompts_in_both_orders_keep_the_page_small(chromium: Chromium, tmp_path: Path) -> None:
    run = build_paper_sized_run(tmp_path / "run")
    open_report(chromium, Path(report(run)["html"]))
    assert chromium.problems() == []
    assert chromium.evaluate("document.getElementById('item-store').content.children.length") == 1030
    first = apply(chromium)
    assert (first["visible"], first["matched"], first["more"]) == (25, 1030, True)
    size = chromium.evaluate(DOM_SIZE)
    assert size < 2500, size  # one page of cards, not 1,030 of them (each card holds about 40 elements)
    assert chromium.evaluate("document.getElementById('page-where').textContent") == "page 1 of 42"
    for _ in range(41):
        chromium.evaluate("document.getElementById('page-next').click()")
    assert chromium.evaluate("document.querySelectorAll('#items article.item').length") == 5  # 1030 = 41 x 25 + 5
    assert chromium.evaluate(DOM_SIZE) <= size
    found = apply(chromium, search="question p1029 ")
    assert (found["visible"], found["matched"]) == (1, 1)  # search reaches prompts on any page
    assert chromium.evaluate("document.querySelector('#items .where').textContent") == "lima · p1029"
    assert chromium.problems() == []


def test_two_runs_compared_in_chromium(chromium: Chromium, tmp_path: Path) -> None:
    first = build_run(tmp_path / "first")
    second = build_large_run(tmp_path / "second", 30)
    html = Path(compare([first, second], tmp_path / "compare.html")["html"])
    open_report(chromium, html)
    assert chromium.problems() == []
    assert [url for url in chromium.requested_urls() if not url.startswith("data:")] == [html.resolve().as_uri()]
    side = chromium.evaluate("document.getElementById('compare-pairwise').innerText")
    paper_row = next(line for line in side.splitlines() if "\tpaper\t" in line).split("\t")
    assert paper_row[3].startswith("win 60.0% (23.1–88.2)")  # the first run: 3 of 5 judged
    assert paper_row[4].startswith("win 66.7% (48.8–80.8)")  # the second, in the same row: 20 of 30
    timeline = chromium.evaluate("Array.from(document.querySelectorAll('table.timeline')).map(t => t.innerText)")
    assert len(timeline) == 2 and all("all stages" in t for t in timeline)
    assert "judge" in chromium.evaluate("document.getElementById('config-diff').innerText")
    headlines = chromium.evaluate("Array.from(document.querySelectorAll('#headlines .run')).map(t => t.innerText)")
    assert len(headlines) == 2 and not any("—" in h for h in headlines)
    screenshot(chromium, "compare.png")
