"""The report's headline (HTML and terminal alike), the paper's reference rows, the AlpacaEval leaderboard placement,
the refinement section, the length-only judge's agreement, and the comparison of several runs."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from runfixture import DATA, MODEL_A, MODEL_B, build_run, recipe
from test_report import Page

from longsift import formats, layout
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.manifest import write_manifest
from longsift.outputs import write_jsonl
from longsift.pipeline import load_recipe, run_recipe
from longsift.records import Example, Judgment
from longsift.report import print_headline, report
from longsift.report.headline import reference
from longsift.report.render import compare

LEADERBOARD = DATA / "alpaca_eval" / "leaderboards" / "alpaca_eval_2__weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
# the paper's Table/Figure numbers (Zhao et al. 2024, Llama-2-7B): win / tie / lose % of longest-1k
PAPER = {("AlpaGasus-1k", "GPT-4"): (67.7, 16.5, 15.8), ("LIMA-1k", "GPT-4"): (46.3, 25.4, 28.3),
         ("Alpaca-52k", "GPT-4"): (72.4, 12.4, 15.2), ("AlpaGasus-1k", "PaLM-2"): (71.9, 20.8, 7.3),
         ("LIMA-1k", "PaLM-2"): (47.0, 26.9, 26.1), ("Alpaca-52k", "PaLM-2"): (78.1, 15.2, 6.7)}  # fmt: skip


def headline_rows(html: str, table_id: str) -> list[list[str]]:
    start = html.index(f'id="{table_id}"')
    return Page(html[html.rindex("<table", 0, start) : html.index("</table>", start) + 8]).rows[1:]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("headline") / "run")


def test_headline_has_intervals_sample_sizes_and_no_dash(run: Path, tmp_path: Path) -> None:
    html = Path(report(run, output=tmp_path / "r.html")["html"]).read_text()
    rows = headline_rows(html, "headline-pairwise")
    mine = [r for r in rows if r[0] == "this run"]
    paper = next(r for r in mine if r[3] == "paper")
    # 3 wins, 1 tie, 1 loss of 5 judged: Wilson 95% for 3/5 is 23.1-88.2, for 1/5 3.6-62.4 (textbook values)
    assert paper[4:8] == ["60.0% (23.1–88.2)", "20.0% (3.6–62.4)", "20.0% (3.6–62.4)", "5 judged of 6"]
    assert paper[2] == "gpt-4 · paper template"
    assert "small sample: n=5 < 30" in paper[8] and "1 of 6 prompts failed" in paper[8] and "unparseable" in paper[8]
    section = html[html.index('id="headline"') : html.index('id="judging"')]
    assert "—" not in section
    benchmarks = {(r[0], r[1]): r for r in headline_rows(html, "headline-benchmarks")}
    win = benchmarks[("AlpacaEval 2.0 win rate", "alpaca-7b")]
    assert win[2] == "2.59%" and win[4] == "805" and "rank" in win[5]
    lc = benchmarks[("AlpacaEval 2.0 LC win rate", "alpaca-7b")]
    assert lc[2] == "not computed" and "difficulty" in lc[3]  # missing, said in words
    assert benchmarks[("AlpacaEval 2.0 LC win rate", "synthetic")][2].endswith("%")
    mtbench = benchmarks[("MT-Bench (judge gpt-4)", MODEL_A)]
    assert mtbench[2] == "4.25 / 10" and "turn 1 5.00, turn 2 3.50" in mtbench[5] and "small sample" in mtbench[5]


def test_the_papers_numbers_are_reference_rows_from_one_data_file(run: Path, tmp_path: Path) -> None:
    html = Path(report(run, output=tmp_path / "r.html")["html"]).read_text()
    rows = [r for r in headline_rows(html, "headline-pairwise") if r[0] != "this run"]
    found = {(r[1].removeprefix("longest-1k vs "), r[2]): tuple(float(c.rstrip("%")) for c in r[4:7]) for r in rows}
    assert found == PAPER
    assert all(r[0] == "Zhao et al. 2024, Llama-2-7B" and r[7] == "1,030 prompts" for r in rows)
    assert len(reference()["rows"]) == 6  # kept as data (longsift/report/reference.yaml), not in code


def test_alpacaeval_result_is_placed_in_the_leaderboard(run: Path, tmp_path: Path) -> None:
    html = Path(report(run, output=tmp_path / "r.html")["html"]).read_text()
    with LEADERBOARD.open(newline="") as handle:
        board = list(csv.DictReader(handle))
    synthetic = layout.read_json(run / "alpacaeval" / "synthetic.json")
    above = sum(1 for r in board if r["length_controlled_winrate"] and
                float(r["length_controlled_winrate"]) > synthetic["length_controlled_winrate"])  # fmt: skip
    page = Page(html[html.index('id="leaderboard"') - 7 : html.index("</table>", html.index('id="leaderboard"'))])
    ours = [row for tag, attrs in page.tags if tag == "tr" and attrs.get("class") == "ours" for row in [attrs]]
    assert len(ours) == 2  # both results highlighted
    rows = page.rows[1:]
    assert len(rows) == len(board) + 2
    at = [r[1] for r in rows].index("synthetic")
    assert rows[at][0] == str(above + 1)  # its rank among the published rows, by LC win rate
    assert all(int(r[0]) <= above + 1 for r in rows[:at]) and all(int(r[0]) > above for r in rows[at + 1 :])
    assert f"rank {above + 1} of {len(board) + 1} by LC win rate" in html


def test_terminal_headline_prints_the_html_numbers(run: Path, tmp_path: Path) -> None:
    html = Path(report(run, output=tmp_path / "r.html")["html"]).read_text()
    console = Console(file=io.StringIO(), width=200, record=True)
    assert print_headline(run, console)
    text = console.export_text()
    for row in headline_rows(html, "headline-pairwise") + headline_rows(html, "headline-benchmarks"):
        for cell in row[2:5] if row[0] in ("this run", "AlpacaEval 2.0 win rate") else []:
            assert cell in text
    assert "60.0% (23.1–88.2)" in text and "small sample: n=5 < 30" in text and "paper: longest-1k vs LIMA-1k" in text


def test_run_ends_by_printing_the_headline(tmp_path: Path, cli) -> None:
    run = build_run(tmp_path / "run")
    path = tmp_path / "again.yaml"
    stages = [{"name": "analyze", "uses": "analyze", "with": {"bootstrap": 20}}]
    path.write_text(yaml.safe_dump({"name": "again", "run_dir": str(run), "data_dir": str(DATA), "stages": stages}))
    result = cli("run", str(path))
    assert "Pairwise judging" in result.stdout and "60.0% (23.1–88.2)" in result.stdout
    assert "AlpacaEval 2.0 win rate" in result.stdout


def test_demo_runs_get_a_banner(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    for stage in ("judge", "generate"):
        (copy / stage).symlink_to(run / stage, target_is_directory=True)
    state = copy / ".stages" / "local-llm"
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2}')
    write_manifest(state, command="tiny-model", stage="local-llm", options={}, inputs={}, outputs={"model": model},
                   path=state / "manifest.json", root=tmp_path)  # fmt: skip
    html = Path(report(copy, output=tmp_path / "r.html")["html"]).read_text()
    banner = html[html.index('id="demo-banner"') :]
    assert "Demo run." in banner[:400] and "stage &#x27;local-llm&#x27; builds a tiny random model" in banner[:600]
    html = Path(report(run, output=tmp_path / "plain.html")["html"]).read_text()
    assert 'id="demo-banner"' not in html


# --- refinement: the real refine stage against a scripted server: refined, unchanged and failed records -------


def refine_reply(request: ServedRequest) -> str:
    case = int(re.findall(r"Do case (\d+)", request.prompt)[0])
    if case % 3 == 0:
        return f"[Better Answer] the first answer {case} with extra detail and a clear example [End]"
    if case % 3 == 1:
        return f"[Better Answer] the first answer {case} [End]"  # the same text: unchanged
    return "I would rather not say."  # no [Better Answer]: failed, the original is kept


@pytest.fixture(scope="module")
def refined_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("refine")
    pool = folder / "pool.jsonl"
    formats.write([Example.from_alpaca(f"Do case {i}.", "", f"the first answer {i}", id=f"c{i}", row=i)
                   for i in range(9)], pool)  # fmt: skip
    run_dir = folder / "run"
    with LocalChatServer(refine_reply) as server:
        llm = {"base_url": server.base_url, "model": "gpt-4o-mini", "max_attempts": 1}
        run_recipe(load_recipe(recipe(run_dir, [
            {"name": "picked", "uses": "select", "with": {"source": str(pool), "k": 9}},
            {"name": "refined", "uses": "refine", "with": {"input": "${picked}", "llm": llm}},
        ])))  # fmt: skip
    return run_dir


def test_refinement_section_counts_statuses_and_marks_differences(refined_run: Path, tmp_path: Path) -> None:
    html = Path(report(refined_run, output=tmp_path / "r.html")["html"]).read_text()
    section = html[html.index('id="refinement"') : html.index('id="selection"')]
    page = Page(section)
    statuses = {r[0]: r[1:] for r in page.rows if r and r[0].startswith(("refined", "unchanged", "failed"))}
    assert statuses["refined"] == ["3", "33.3%"] and statuses["unchanged"] == ["3", "33.3%"]
    assert statuses["failed"] == ["3", "33.3%"]
    assert any(k.startswith("failed: ") and v[0] == "3" for k, v in statuses.items())  # by reason
    lengths = {r[0]: r[1:] for r in page.rows if r and r[0].startswith(("before", "after"))}
    assert lengths["before (refined only)"][0] == "4.0" and lengths["after (refined only)"][0] == "11.0"
    assert "<ins>with extra detail and a clear example</ins>" in section  # the added words, marked
    assert section.count('class="refine-example"') == 3
    assert 'href="#refinement"' in html


def test_length_only_judge_agreement_is_rendered_when_present(run: Path, tmp_path: Path) -> None:
    from longsift.analyze import analyze

    analyze([run], bootstrap=20)
    analysis = layout.read_json(layout.analysis_file(run))
    real = analysis["comparisons"][0]["policies"]["paper"]["length_only_agreement"]  # analyze writes it
    assert agreement_rows(report(run, output=tmp_path / "r.html")["html"])[1][3] == str(real["n"])
    # analyze's layout (comparisons[i].policies[p].length_only_agreement), as the demo's analysis writes it
    analysis["comparisons"][0]["policies"]["paper"]["length_only_agreement"] = {
        "n": 5, "agreement": 0.6, "agreement_pct": 60.0, "kappa": 0.1667, "chance": 0.52,
        "labels": ["win", "tie", "lose"], "confusion": [[3, 0, 0], [1, 0, 0], [0, 0, 1]],
    }  # fmt: skip
    layout.write_json(analysis, layout.analysis_file(run))
    rows = agreement_rows(report(run, output=tmp_path / "r.html")["html"])
    assert rows[1] == [f"{MODEL_A} vs {MODEL_B}", "gpt-4 · paper template", "paper", "5", "60.0%",
                       "0.167 (chance 52.0%)", "win: win 3; tie: win 1; lose: lose 1"]  # fmt: skip
    for comparison in analysis["comparisons"]:
        for policy in comparison["policies"].values():
            del policy["length_only_agreement"]
    analysis["length_judge"] = [{"judge": "gpt-4/paper", "n": 5, "kappa": None}]  # another layout: still shown
    layout.write_json(analysis, layout.analysis_file(run))
    try:
        rows = agreement_rows(report(run, output=tmp_path / "r.html")["html"])
    finally:
        layout.analysis_file(run).unlink()
    assert rows[0] == ["Where", "judge", "n", "kappa"] and rows[1][2:] == ["5", "not recorded"]


def agreement_rows(html_path: str) -> list[list[str]]:
    html = Path(html_path).read_text()
    start = html.index('id="length-judge-agreement"')
    return Page(html[html.rindex("<table", 0, start) : html.index("</table>", start)]).rows


# --- several runs ---------------------------------------------------------------------------------------------


def test_two_runs_compare_side_by_side_with_config_diff_and_timeline(run: Path, refined_run: Path, tmp_path: Path,
                                                                    cli) -> None:  # fmt: skip
    out = tmp_path / "compare.html"
    result = cli("report", str(run), str(refined_run), "-o", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    page = Page(html)
    assert page.rows[0] != ["Comparison", "Judge", "Policy", "run", "run"]  # two runs named apart
    pairwise = next(r for r in page.rows if r[:3] == [f"{MODEL_A} vs {MODEL_B}", "gpt-4 · paper template", "paper"])
    assert pairwise[3].startswith("win 60.0% (23.1–88.2)") and pairwise[4] == "not in this run"
    diff = {r[0]: r[1:] for r in page.rows if r and r[0].startswith(("judge.", "refined.", "picked."))}
    assert diff["refined.uses"] == ["(no such stage option)", "refine"]
    assert diff["judge.template"] == ['"paper"', "(no such stage option)"]
    timeline = [r for r in page.rows if r and r[0] in ("judge", "refined", "all stages") and len(r) == 7]
    judge = next(r for r in timeline if r[0] == "judge")
    assert judge[4] == "12" and judge[6].startswith("$")  # 6 prompts x 2 orders (MT-Bench's 4 are its own stage's)
    assert next(r for r in timeline if r[0] == "all stages")[4] == "16"
    refine = next(r for r in timeline if r[0] == "refined")
    assert refine[4] == "9" and refine[1] == "refine"
    refused = cli("report", str(run), str(refined_run), check=False)  # several runs need -o
    assert refused.returncode == 2 and "-o compare.html" in refused.stderr


def test_compare_api_refuses_a_missing_run(tmp_path: Path) -> None:
    from longsift.errors import LongsiftError

    with pytest.raises(LongsiftError, match="is not a directory"):
        compare([tmp_path / "nope", tmp_path], tmp_path / "c.html")


def test_all_failed_judgments_and_a_local_judge_are_said_in_words(tmp_path: Path) -> None:
    judge = tmp_path / "models" / "local-llm"
    judge.mkdir(parents=True)
    (judge / "config.json").write_text('{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2}')
    run = tmp_path / "run"
    error = "unparseable reply: no two scores"
    judgments = [Judgment(f"p{i}", "koala", MODEL_A, MODEL_B, order, str(judge), "paper", None, status="failed",
                          error=error) for i in range(4) for order in ("ab", "ba")]  # fmt: skip
    write_jsonl(judgments, layout.judge_dir(run, MODEL_A, MODEL_B) / layout.JUDGMENTS)
    html = Path(report(run, output=tmp_path / "r.html")["html"]).read_text()
    [paper, strict] = [r for r in headline_rows(html, "headline-pairwise") if r[0] == "this run"]
    assert paper[2] == "local-llm (local llama, 2 layers, hidden 64) · paper template"  # not its path
    assert paper[4:8] == ["no verdict: all 4 failed", "none judged", "none judged", "0 judged of 4"]
    assert "4 of 4 prompts failed" in paper[8] and "8 unparseable" in paper[8]
    assert str(judge) not in html[html.index('id="headline"') : html.index('id="browser"')]
    assert "—" not in html[html.index('id="headline"') : html.index('id="judging"')]
    banner = html[html.index('id="demo-banner"') :][:600]
    assert "is a tiny local model" in banner
