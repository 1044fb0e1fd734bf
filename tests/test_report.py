"""The HTML and Markdown report, read back with the standard library's HTML parser (the browser test is apart)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from runfixture import EXPECTED, HOSTILE, MODEL_A, MODEL_B, build_run

from longsift import formats, layout
from longsift.analyze import analyze
from longsift.manifest import write_manifest
from longsift.records import Example
from longsift.report import plots, report


class Page(HTMLParser):
    """Collects tags with their attributes, script bodies, and the text of each table row."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.rows: list[list[str]] = []
        self._in_script = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    run = build_run(tmp_path_factory.mktemp("report") / "run")
    analyze([run], bootstrap=200)
    written = report(run, output=run / "out" / "report.html", markdown=run / "out" / "report.md")
    return run, Path(written["html"]).read_text(), Path(written["markdown"]).read_text()


def test_headline_tables_show_the_hand_computed_numbers(rendered: tuple[Path, str, str]) -> None:
    run, html, _ = rendered
    page = Page(html)
    all_row = next(r for r in page.rows if r[0] == "all" and len(r) == 12)
    # Test set, Prompts, Judged, Failed | paper Win Tie Lose WS | strict Win Tie Lose WS
    assert all_row[1:4] == ["6", "5", "1"]
    assert tuple(all_row[4:8]) == EXPECTED["paper"]["all"]
    assert tuple(all_row[8:12]) == EXPECTED["strict"]["all"]
    koala = next(r for r in page.rows if r[0] == "koala" and len(r) == 12)
    assert tuple(koala[4:7]) == EXPECTED["paper"]["koala"]
    alpaca = {r[0]: r for r in page.rows if len(r) == 7 and r[0] in ("alpaca-7b", "synthetic") and r[1].endswith("%")}
    # alpaca-7b's real annotations scored by the alpacaeval step: the leaderboard's 2.59, no LC without df_gamed
    assert alpaca["alpaca-7b"][1] == "2.59%"
    assert alpaca["alpaca-7b"][3] == "n/a: LC needs the instruction-difficulty table"
    lc = layout.read_json(run / "alpacaeval" / "synthetic.json")["length_controlled_winrate"]
    assert alpaca["synthetic"][3] == f"{lc:.2f}%"
    # the MT-Bench step's scores, per turn (scripted grades in runfixture)
    mtbench = next(r for r in page.rows if r[0] == MODEL_A and r[1] == "gpt-4")
    assert mtbench[2:6] == ["5.00", "3.50", "4.25", "0"]
    assert next(r for r in page.rows if r[0] == "math")[1] == "1.50"
    bias = next(r for r in page.rows if r[0] == "paper" and len(r) == 6)
    assert bias[1].startswith("70.0% (") and bias[3].startswith("100.0%")  # as in test_analyze_cli
    training = next(r for r in page.rows if r[0] == MODEL_A and len(r) == 6 and r[1] == "20")
    assert training[3:5] == ["1.0000", "0.0952"]  # loss 2 / (1 + step): step 1 -> 1.0, step 20 -> 0.0952


def test_page_is_self_contained_and_escapes_model_text(rendered: tuple[Path, str, str]) -> None:
    _, html, _ = rendered
    page = Page(html)
    # exactly our one script, allowed by its hash in the Content-Security-Policy; nothing loads from anywhere
    assert len(page.scripts) == 1
    [csp] = [a["content"] for a in page.find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in (csp or "") and "default-src 'none'" in (csp or "")
    sources = [a.get("src") or a.get("href") or "" for t, a in page.tags if t in ("img", "script", "link", "a")]
    embedded = ("data:image/svg+xml;base64,", "data:image/png;base64,", "#")
    assert all(s.startswith(embedded) for s in sources if s), sources
    assert not page.find("link") and "http://" not in html and "https://" not in html
    assert len(page.find("img", **{"class": "plot"})) >= 5  # outcomes, MT-Bench, lengths, length bias, loss
    # hostile markup from prompts, answers and judge replies shows up only as text
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;") >= 4
    assert len(page.find("article", **{"class": "item"})) == 6


def test_browser_rows_carry_the_filter_attributes(rendered: tuple[Path, str, str]) -> None:
    _, html, _ = rendered
    items = Page(html).find("article", **{"class": "item"})
    keyed = {(a["data-set"], a["data-paper"], a["data-strict"], a["data-flipped"]) for a in items}
    assert keyed == {
        ("koala", "win", "win", "0"), ("koala", "win", "tie", "1"), ("koala", "lose", "lose", "0"),
        ("vicuna", "tie", "tie", "1"), ("vicuna", "win", "win", "0"), ("vicuna", "failed", "failed", "0"),
    }  # fmt: skip
    assert "Explanation for k1 ab" in html and "unparseable reply" in html  # raw judge text and the failure reason


def test_markdown_summary(rendered: tuple[Path, str, str]) -> None:
    _, _, markdown = rendered
    assert markdown.startswith("# longsift report: run\n")
    assert "| all | 6 | 1 | 60.0% (3) | 20.0% (1) | 20.0% (1) | 1.400 |" in markdown
    assert "| all | 6 | 1 | 40.0% (2) | 40.0% (2) | 20.0% (1) | 1.200 |" in markdown
    assert "| alpaca-7b | 2.59% | 0.49 | n/a (needs the difficulty table) | 805 |" in markdown
    assert f"| {MODEL_A} | 5.00 | 3.50 | 4.25 |" in markdown
    assert "Absent from this run: selection (select/)." in markdown
    assert "Lengths in characters" in markdown  # no selection to take the unit from: the default unit, chars
    assert HOSTILE not in markdown  # no model text in the summary


def test_an_empty_run_says_what_is_absent(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    written = report(tmp_path / "run", markdown=tmp_path / "r.md")
    html = Path(written["html"]).read_text()
    assert Path(written["html"]) == tmp_path / "run" / "report.html"
    for missing in ("pairwise judgments (judge/)", "AlpacaEval results", "MT-Bench scores", "length analysis",
                    "selection (select/)", "training curves", "generations (generate/)"):  # fmt: skip
        assert missing in html and missing in Path(written["markdown"]).read_text()
    assert html.count('class="absent"') == 9  # the overview, the headline, and one per section


def test_summary_only_damaged_files_and_disagreements_become_notes(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run")
    folder = layout.judge_dir(run, MODEL_A, MODEL_B)
    summary = layout.read_json(folder / "summary.json")
    summary["paper"]["all"]["win"] = 99  # the judge stage's summary no longer matches its judgments
    layout.write_json(summary, folder / "summary.json")
    (run / "alpacaeval" / "broken.json").write_text("{not json")
    html = Path(report(run)["html"]).read_text()
    assert "summary.json disagrees with judgments.jsonl on paper/all" in html
    assert "could not read alpacaeval/broken.json" in html
    assert "60.0%" in html  # the table keeps the counts recomputed from the judgments

    (folder / "judgments.jsonl").unlink()  # only the summary is left: its table, and no browser
    html = Path(report(run)["html"]).read_text()
    assert re.search(r"source: summary\.json", html) and "99" in html
    assert 'class="item"' not in html and "no per-prompt judgments to browse" in html


def test_two_judges_get_two_tables_a_comparison_filter_and_an_agreement_table(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", two_judges=True)
    analyze([run], bootstrap=50)
    page = Page(Path(report(run)["html"]).read_text())
    assert len(page.find("table", **{"class": "outcomes"})) == 2
    palm = next(r for r in page.rows if r[0] == "all" and len(r) == 12 and r[2] == "6")
    assert palm[4] == "100.0% (6)" and palm[8] == "100.0% (6)"  # palm: no failure, A wins everything
    assert {a.get("value") for a in page.find("option")} >= {"all", "0", "1"}
    assert len(page.find("article", **{"class": "item"})) == 12  # each judge's verdicts on the 6 prompts
    # paper outcomes on the 5 prompts both judged: gpt win, win, lose, tie, win vs palm win x5 -> agree on 3;
    # palm only says "win", so chance agreement is gpt's win share 3/5 and kappa = (3/5 - 3/5) / (1 - 3/5) = 0
    agreement = next(r for r in page.rows if r[:3] == ["gpt-4 · paper template", "palm-2 · paper template", "paper"])
    assert agreement[3:] == ["5", "60.0%", "0.000"]


def test_selection_section_and_a_loss_png_without_loss_json(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run")
    source = [Example.from_alpaca(f"task {i}", "", " ".join(["w"] * (i + 1)), id=str(i), row=i) for i in range(4)]
    formats.write(source, tmp_path / "pool.jsonl")  # 1..4 words: mean 2.5
    formats.write(source[2:], run / "select" / "longest-2.json", "fastchat")  # 3 and 4 words: mean 3.5
    subset = run / "select" / "longest-2.json"
    write_manifest(subset, command="select", options={"k": 2}, inputs={"source": tmp_path / "pool.jsonl"},
                   outputs={"output": subset})  # fmt: skip
    layout.write_json({"k": 2, "cutoff": 3}, run / "select" / "summary.json")
    png = tmp_path / "run" / "train" / "other" / "loss.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(base64.b64decode(plots.loss_curves({"x": [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]})))
    analyze([run], by="words", bootstrap=50)
    html = Path(report(run)["html"]).read_text()
    page = Page(html)
    rows = {r[0]: r for r in page.rows if len(r) == 8}  # Set, Examples, Mean, Median, p90, instruction, ratio, quality
    assert rows["source"][1:3] == ["4", "2.5"] and rows["longest-2"][1:3] == ["2", "3.5"]
    assert rows["longest-2"][6] == "×1.40"  # 3.5 / 2.5
    assert "longest-2.json" in html and ["cutoff", "3"] in page.rows  # subset listed, summary shown as a table
    assert "selection (select/)" not in html  # no longer absent
    assert base64.b64encode(png.read_bytes()).decode() in html  # the train stage's own PNG, embedded


def test_report_cli(tmp_path: Path, cli) -> None:
    run = build_run(tmp_path / "run")
    result = cli("report", str(run), "-o", str(tmp_path / "r.html"), "--markdown", str(tmp_path / "r.md"))
    assert (tmp_path / "r.html").stat().st_size > 10_000 and (tmp_path / "r.md").is_file()
    assert "absent: length analysis (analyze/analysis.json); selection (select/)" in result.stderr
    by_nltk = cli("report", str(run), "-o", str(tmp_path / "n.html"), "--markdown", str(tmp_path / "n.md"), "--by",
                  "nltk")  # fmt: skip
    assert "absent: selection (select/)" in by_nltk.stderr  # the length analysis was made first, in NLTK tokens
    assert r"Lengths in NLTK word tokens (nltk.word\_tokenize)" in (tmp_path / "n.md").read_text()  # Markdown-escaped
    assert layout.read_json(layout.analysis_file(run))["unit"]["name"] == "nltk"
    failed = cli("report", str(tmp_path / "missing"), check=False)
    assert failed.returncode == 2 and "is not a directory" in failed.stderr
