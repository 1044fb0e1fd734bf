"""`--parse paper`: the paper's own reading of judge replies, checked against a transcription of its scripts.

The reference below restates, from the scripts' text (tml-epfl/long-is-more-for-alignment), what they do with a
reply: evaluation_gpt4.py / evaluation_palm2.py `parse_score` (first line, commas, split on " ", float(), any
exception -> [-1, -1]) and utils/result_graph.py (int() of both scores, +1/-1 per order summed per prompt, win
if >= 1, lose if <= -1, else tie). Replies of many shapes go through the real local server in both orders on
five test sets; summary.json's paper table must equal the reference per test set.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import orjson
import pytest

from longsift.judge.pairwise import judge_pairwise
from longsift.judge.parsers import gpt4_script_scores, palm2_script_scores, parse_score_pair
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.llm.settings import LLMSettings
from longsift.llm.types import Completion
from longsift.records import Generation

# ---- the reference: the scripts' reading, restated --------------------------------------------------------------


def reference_gpt4_parse(review: str) -> list[float]:
    """evaluation_gpt4.py parse_score."""
    try:
        line = review.split("\n")[0]
        line = line.replace(",", " ")
        pieces = line.split(" ")
        if len(pieces) != 2:
            raise ValueError("Invalid score pair.")
        return [float(pieces[0]), float(pieces[1])]
    except Exception:
        return [-1, -1]


def reference_palm2_parse(review: str) -> list[float]:
    """evaluation_palm2.py parse_score: commas removed, then six labels, then one leading space."""
    try:
        line = review.split("\n")[0].replace(",", "")
        line = line.replace("**", "").replace("Score: ", "").replace("Assistant 1: ", "")
        line = line.replace("Assistant 2: ", "").replace("Assistant 1 Score: ", "").replace("Assistant 2 Score: ", "")
        if line[0] == " ":
            line = line[1:]
        pieces = line.split(" ")
        if len(pieces) != 2:
            raise ValueError("Invalid score pair.")
        return [float(pieces[0]), float(pieces[1])]
    except Exception:
        return [-1, -1]


def reference_result_graph(
    target_first: dict[str, list[list[float]]], base_first: dict[str, list[list[float]]]
) -> dict[str, dict[str, int]]:
    """result_graph.py result_process: per test set, the stored scores of the two files, index by index.

    `base_first[set][i]` is the score pair of the file where the base model was Assistant 1 (models[0]),
    `target_first[set][i]` the one where the target was (models[1]); the target is our model A.
    """
    table = {}
    for test_set in base_first:
        res = [0] * len(base_first[test_set])
        for m, data in enumerate((base_first[test_set], target_first[test_set])):
            for i, score in enumerate(data):
                if m == 0:
                    base, target = score
                else:
                    target, base = score
                if int(target) > int(base):
                    res[i] += 1
                elif int(target) < int(base):
                    res[i] -= 1
        table[test_set] = {
            "win": sum(r >= 1 for r in res),
            "tie": sum(r == 0 for r in res),
            "lose": sum(r <= -1 for r in res),
        }
    return table


# ---- replies: first lines judges write, and odd ones --------------------------------------------------------------

WHY = "\nAssistant 1 is more detailed; Assistant 2 misses a step."
CORPUS = [
    "8 9" + WHY, "9 8" + WHY, "8.5 8" + WHY, "8 8.5" + WHY, "8. 9." + WHY, "11 3" + WHY, "-1 5" + WHY,
    "1e1 5" + WHY, "Assistant 1 is better than Assistant 2.", "", "Assistant 1: 7, Assistant 2: 9" + WHY,
    "8, 9" + WHY, "**8** **9**" + WHY, "8,9" + WHY, "8  9" + WHY, " 8 9" + WHY, "8 9 " + WHY, "8\t9" + WHY,
    "\n8 9" + WHY, "8 9\r\nBoth fine.", "7/10 8/10" + WHY, "Score: 8 9" + WHY, "+8 -9" + WHY, "1_0 9" + WHY,
    "\u0668 \u0669" + WHY, "0x8 9" + WHY, "8e0 9e-0" + WHY, "10 10" + WHY, "1 1", "0.9 0.1" + WHY, "-0.5 0.5",
    "9.99 9" + WHY, "Assistant 1 Score: 6, Assistant 2 Score: 8" + WHY, "**Assistant 1: 8** **Assistant 2: 6**",
    "8,,9" + WHY, "8 , 9" + WHY, "1e308 1e307" + WHY, "5\u00a06" + WHY, "   " + WHY, "7 8\n\n9 2", "Scores: 7 8",
    "8 9." + WHY, "9\n8", "-8 -9" + WHY, "8 9\u2028next", "1" * 300 + " 5" + WHY, "8 9\x00" + WHY, "６ ７" + WHY,
    "Assistant 2: 9 Assistant 1: 3", "3 , 4", "2 3\n", "4 4\n4 5", "10/10 1/10", "seven eight",
]  # fmt: skip
SETS = {"koala": 7, "lima": 6, "sinstruct": 5, "vicuna": 5, "wizardlm": 6}
ANSWER = re.compile(r"\[The Start of Assistant 1's Answer\]\n(\w+) answer to (\w+)/(\d+)")


def reply_for(eval_set: str, index: int, first_model: str) -> str:
    """Every corpus shape appears in both orders, against different partners, across the sets."""
    offset = sum(SETS[s] for s in SETS if s < eval_set) + index
    return CORPUS[(2 * offset + (first_model != "alpha")) % len(CORPUS)]


def write_generations(path: Path, model: str) -> Path:
    rows = [
        Generation(str(i), eval_set, model, (f"Question {i} of {eval_set}?",), (f"{model} answer to {eval_set}/{i}",))
        for eval_set, n in SETS.items()
        for i in range(n)
    ]
    path.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
    return path


def respond(request: ServedRequest) -> Completion:
    """Some replies come back cut off (finish_reason "length"): longsift's strict reading fails them, the
    paper's script never looked and read them like any other."""
    match = ANSWER.search(request.prompt)
    assert match is not None, request.prompt[:200]
    first_model, eval_set, index = match.groups()
    reply = reply_for(eval_set, int(index), first_model)
    cut = (int(index) + len(eval_set) + (first_model == "beta")) % 4 == 0
    return Completion(reply, finish_reason="length" if cut else "stop")


def settings(server: LocalChatServer, tmp_path: Path) -> LLMSettings:
    return LLMSettings(base_url=server.base_url, model="judge-m", concurrency=4, progress=False,
                       cache=tmp_path / "cache.sqlite")  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write_generations(tmp_path / "a.jsonl", "alpha"), write_generations(tmp_path / "b.jsonl", "beta")


def test_corpus_is_varied_and_holds_every_named_shape() -> None:
    assert len(set(CORPUS)) == len(CORPUS) >= 40
    assert all(not math.isnan(x) and not math.isinf(x) for r in CORPUS for x in reference_gpt4_parse(r))
    assert all(not math.isnan(x) and not math.isinf(x) for r in CORPUS for x in reference_palm2_parse(r))
    # both readings disagree with the strict one on many of them (the point)
    unreadable = sum(reference_gpt4_parse(r) == [-1, -1] for r in CORPUS)
    assert 15 <= unreadable <= len(CORPUS) - 15


@pytest.mark.parametrize(
    ("template", "reference"), [("paper", reference_gpt4_parse), ("paper-palm2", reference_palm2_parse)]
)
def test_paper_reading_gives_result_graph_per_test_set(files, tmp_path: Path, template: str, reference) -> None:  # type: ignore[no-untyped-def]
    a, b = files
    with LocalChatServer(respond) as server:
        result = judge_pairwise(a, b, tmp_path / template, template=template, llm=settings(server, tmp_path),
                                parse="paper")  # fmt: skip
    target_first = {s: [reference(reply_for(s, i, "alpha")) for i in range(n)] for s, n in SETS.items()}
    base_first = {s: [reference(reply_for(s, i, "beta")) for i in range(n)] for s, n in SETS.items()}
    expected = reference_result_graph(target_first, base_first)
    summary = orjson.loads((tmp_path / template / "summary.json").read_bytes())
    assert summary["parse"] == "paper"
    for eval_set, counts in expected.items():
        row = summary["paper"][eval_set]
        assert {k: row[k] for k in ("win", "tie", "lose")} == counts, eval_set
        assert row["failed"] == 0 and row["n"] == SETS[eval_set]
    total = {k: sum(c[k] for c in expected.values()) for k in ("win", "tie", "lose")}
    assert {k: summary["paper"]["all"][k] for k in total} == total
    # the same replies under the strict reading are in `readings`, and disagree somewhere
    assert summary["readings"]["paper"]["paper"] == summary["paper"]
    strict = summary["readings"]["strict"]["paper"]["all"]
    assert strict["failed"] > 0 and strict["n"] == sum(SETS.values())
    # judgments keep the script's stored scores: [-1, -1] for an unreadable reply, with a note
    unreadable = [j for j in result.judgments if j.metadata.get("reading_note")]
    assert unreadable and all(j.score_a == j.score_b == -1.0 and j.verdict == "tie" for j in unreadable)


def test_the_named_shapes_read_as_the_paper_did() -> None:
    named = {  # reply: (paper's stored scores, longsift strict verdict or None for a failure)
        "8.5 8": ([8.5, 8.0], "first"), "8. 9.": ([8.0, 9.0], None), "11 3": ([11.0, 3.0], None),
        "-1 5": ([-1.0, 5.0], None), "1e1 5": ([10.0, 5.0], None), "I prefer the first.": ([-1, -1], None),
        "": ([-1, -1], None), "Assistant 1: 7, Assistant 2: 9": ([-1, -1], "second"), "8, 9": ([-1, -1], "second"),
        "**8** **9**": ([-1, -1], "second"),
    }  # fmt: skip
    for reply, (stored, strict) in named.items():
        assert reference_gpt4_parse(reply) == stored
        assert list(gpt4_script_scores(reply) or (-1, -1)) == stored
        try:
            verdict = parse_score_pair(reply).verdict
        except Exception:
            verdict = None
        assert verdict == strict, reply


@pytest.mark.parametrize("reply", CORPUS)
def test_script_readers_match_the_reference_on_every_shape(reply: str) -> None:
    assert list(gpt4_script_scores(reply) or (-1, -1)) == reference_gpt4_parse(reply)
    assert list(palm2_script_scores(reply) or (-1, -1)) == reference_palm2_parse(reply)


@pytest.mark.parametrize("reply", ["nan 5\nx", "5 -inf", "1e400 5", "Infinity 3"])
def test_scores_result_graph_cannot_count_are_failures_saying_so(files, tmp_path: Path, reply: str) -> None:  # type: ignore[no-untyped-def]
    a, b = files
    with pytest.raises((ValueError, OverflowError)):
        reference_result_graph({"koala": [reference_gpt4_parse(reply)]}, {"koala": [[1, 1]]})
    with LocalChatServer(lambda r: reply) as server:
        result = judge_pairwise(a, b, tmp_path / "o", llm=settings(server, tmp_path), parse="paper")
    assert all(j.status == "failed" and "result_graph.py cannot count" in (j.error or "") for j in result.judgments)
    assert result.summary["paper"]["all"]["failed"] == sum(SETS.values())


def test_cli_parse_paper_and_the_template_without_a_paper_reading(cli, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = files
    with LocalChatServer(respond) as server:
        common = ["--model", "judge-m", "--base-url", server.base_url, "--no-progress"]
        done = cli("judge", "pairwise", str(a), str(b), "-o", str(tmp_path / "cli"), "--parse", "paper", *common)
        bad = cli("judge", "pairwise", str(a), str(b), "-o", str(tmp_path / "x"), "--parse", "paper",
                  "--template", "fastchat-pair", *common, check=False)  # fmt: skip
        wrong = cli("judge", "pairwise", str(a), str(b), "-o", str(tmp_path / "y"), "--parse", "lenient", *common,
                    check=False)  # fmt: skip
    assert "paper reading: judged 29 of 29 prompts (0 failed)" in done.stdout
    assert bad.returncode == 2 and "has no paper reading" in bad.stderr and "Traceback" not in bad.stderr
    assert wrong.returncode == 2 and "unknown --parse 'lenient'" in wrong.stderr


def test_report_shows_both_readings_and_the_difference_per_test_set(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The paper-study shape: each pair judged corrected and with compat paper by the recipe's judge step."""
    import yaml

    from longsift.pipeline import load_recipe, run_recipe

    a, b = files
    run = tmp_path / "run"
    with LocalChatServer(respond) as server:
        llm = {"model": "judge-m", "base_url": server.base_url, "concurrency": 4}
        judge = {"a": str(a), "b": str(b), "template": "paper", "llm": llm}
        stages = [{"name": "vs", "uses": "judge", "with": judge},
                  {"name": "vs-paper", "uses": "judge", "with": {**judge, "compat": "paper"}},
                  {"name": "report", "uses": "report"}]  # fmt: skip
        recipe = tmp_path / "study.yaml"
        recipe.write_text(yaml.safe_dump({"name": "study", "run_dir": str(run), "stages": stages}))
        run_recipe(load_recipe(recipe))
        lima = [e.request.prompt for e in server.log if "answer to lima/" in e.request.prompt]
    lima_questions = {prompt.split("\n")[1][:2] for prompt in lima}
    assert lima_questions == {"Qu", "['"}  # the plain question, and the paper's list
    html = next(run.rglob("report.html")).read_text(encoding="utf-8")
    assert "Paper reading vs strict reading" in html
    for folder in ("alpha__vs__beta", "alpha__vs__beta.paper"):
        summary = orjson.loads((run / "judge" / folder / "summary.json").read_bytes())
        assert summary["parse"] == ("paper" if folder.endswith(".paper") else "strict")
        block = html.split(f'data-folder="{folder}"', 1)[1].split("</table>", 1)[0]
        for eval_set in SETS:
            row = block.split(f"<td>{eval_set}</td>", 1)[1].split("</tr>", 1)[0]
            cells = re.findall(r"<td>([^<]*)</td>", row)
            strict = summary["readings"]["strict"]["paper"][eval_set]
            paper = summary["readings"]["paper"]["paper"][eval_set]
            assert cells[1:5] == [str(strict[k]) for k in ("win", "tie", "lose", "failed")]
            assert cells[5:9] == [str(paper[k]) for k in ("win", "tie", "lose", "failed")]
            assert cells[9].startswith(f"{paper['win'] - strict['win']:+d}")


def reference_graph_bars(result: dict[str, int], num_data: int) -> dict[str, int]:
    """result_graph.py graph(): the bar lengths of one test set."""
    win = int(result["win"] / num_data * 100)
    tie = int(result["tie"] / num_data * 100)
    return {"win": win, "tie": tie, "lose": 100 - win - tie}


def test_summary_holds_the_figures_truncated_percentages(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = files
    with LocalChatServer(respond) as server:
        result = judge_pairwise(a, b, tmp_path / "o", llm=settings(server, tmp_path), parse="paper")
    figure = result.summary["paper_figure_pct"]
    assert set(figure) == set(SETS)
    for eval_set, n in SETS.items():
        assert figure[eval_set] == reference_graph_bars(result.summary["paper"][eval_set], n)
    assert any(bars["lose"] != round(100 * result.summary["paper"][s]["lose"] / SETS[s]) for s, bars in figure.items())
