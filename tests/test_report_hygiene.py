"""The Markdown summary renders hostile names as text, and side files are never listed as selections."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from longsift import layout
from longsift.analyze import analyze
from longsift.outputs import write_jsonl
from longsift.records import Generation, Judgment
from longsift.report import report
from longsift.report.collect import collect
from longsift.report.markdown import md_text

MODEL_A = "<script>alert('a')</script>|x"
MODEL_B = '<img src=x onerror="alert(1)"> [click](javascript:alert(2)) ![i](http://e.test/i.png)'
JUDGE = "judge | <b>bold</b> *em* `code` ~~s~~ \\ <!-- c -->\n# not a heading"
SET = "koala<iframe src=//e.test>"
SUBSET = "<svg onload=alert(3)>|[x](y)"


class Tags(HTMLParser):
    """Every tag in rendered HTML, and every table row's cell count."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.rows: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append(0)
        elif tag in ("td", "th"):
            self.rows[-1] += 1


def hostile_run(run: Path) -> Path:
    for model in (MODEL_A, MODEL_B):
        records = [Generation(p, SET, model, (f"q {p}",), (f"{model} says {p} " * (3 if model == MODEL_A else 1),))
                   for p in ("p1", "p2", "p3")]  # fmt: skip
        write_jsonl(records, layout.generation_file(run, model))
    judgments = [
        Judgment(p, SET, MODEL_A, MODEL_B, order, JUDGE, "paper", verdict)  # type: ignore[arg-type]
        for p, verdict in (("p1", "a"), ("p2", "b"), ("p3", "tie")) for order in ("ab", "ba")
    ]  # fmt: skip
    write_jsonl(judgments, layout.judge_dir(run, MODEL_A, MODEL_B) / layout.JUDGMENTS)
    layout.write_json({"model": MODEL_B, "win_rate": 3.0, "standard_error": 0.5, "n_total": 805,
                       "length_controlled_winrate": None}, run / "alpacaeval" / "b.json")  # fmt: skip
    layout.write_json({"model": MODEL_A, "overall": 4.0, "turn_1": 5.0, "turn_2": 3.0}, run / "mtbench" / "a.json")
    layout.write_json([{"step": 1, "loss": 1.5}], run / "train" / "m<b>" / layout.LOSS_JSON)
    subset = [{"instruction": f"q{i}", "input": "", "output": "word " * (i + 1)} for i in range(3)]
    layout.write_json(subset, run / "select" / f"{SUBSET}.json")
    return run


def test_markdown_escapes_every_value_from_the_data(tmp_path: Path) -> None:
    run = hostile_run(tmp_path / "run")
    analyze([run], unit="words", bootstrap=10)
    written = report(run, output=tmp_path / "r.html", markdown=tmp_path / "r.md", title="<h1>t</h1> | [x](y)")
    markdown = Path(written["markdown"]).read_text()
    assert "<" not in markdown  # no raw HTML at all: every < from the data is an entity
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    tags = Tags()
    tags.feed(rendered)
    assert tags.tags <= {"h1", "h2", "p", "strong", "table", "thead", "tbody", "tr", "th", "td"}, tags.tags
    widths = [n for n in tags.rows]
    assert tags.rows and all(n in (3, 4, 5, 6, 7, 9) for n in widths)  # 9: the headline's pairwise table
    for table in re.findall(r"<table>.*?</table>", rendered, flags=re.S):
        counts = {table_row.count("<td") + table_row.count("<th") for table_row in re.findall(r"<tr>.*?</tr>",
                                                                                              table, re.S)}  # fmt: skip
        assert len(counts) == 1, table  # a '|' in a name never adds a cell
    text = re.sub(r"<[^>]+>", "", rendered)
    assert "Selection profile" in markdown
    for name in (MODEL_A, MODEL_B, SET, SUBSET, " ".join(JUDGE.split()), "<h1>t</h1> | [x](y)"):
        escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        assert escaped in text, name  # shown as its own text


@pytest.mark.parametrize(
    "value",
    ["<script>x</script>", "a|b", "[l](javascript:x)", "![i](u)", "*b* _i_", "`c`", "~~s~~", "a\\|b", "&lt;", "x\ny"],
)
def test_md_text_renders_as_the_literal_value(value: str) -> None:
    rendered = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(md_text(value))
    literal = " ".join(value.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert rendered == f"<p>{literal.replace(chr(34), '&quot;')}</p>\n"


def test_side_files_are_not_selections(tmp_path: Path) -> None:
    select = tmp_path / "run" / "select"
    select.mkdir(parents=True)
    real = ["longest.json", "random.jsonl", "x.v1.json", "pool.jsonl.gz", "subset.parquet", "a.quarantine.json"]
    side = ["longest.manifest.json", "longest.quarantine.jsonl", "random.failures.jsonl", "x.v1.manifest.json",
            "pool.quarantine.jsonl.gz", ".longsift-tmp-longest.json.abc123", "longest.json.partial", "manifest.json",
            "summary.json", "llm-cache.sqlite", "llm-cache.sqlite-wal", ".hidden.json", "notes.txt"]  # fmt: skip
    for name in real + side:
        (select / name).write_text("[]")
    (select / "folder.json").mkdir()
    assert [p.name for p in collect(tmp_path / "run").selection_files] == sorted(real)
    html = Path(report(tmp_path / "run", output=tmp_path / "r.html")["html"]).read_text()
    for name in side:
        assert f"<code>{name}</code>" not in html
    assert "<code>longest.json</code>" in html
