"""`longsift analyze` on the synthetic run directory (numbers derived in tests/runfixture.py terms) and the
selection profile on the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from runfixture import MODEL_A, MODEL_B, build_run

from longsift import formats, layout
from longsift.analyze import analyze
from longsift.formats.load import load_all
from longsift.pipeline import load_recipe, run_recipe
from longsift.records import Example

# Word counts of the fixture's answers: HOSTILE is 5 whitespace words, "<model> answers <set>/<id>:" is 3.
# A: k1 5 + 60 = 65, k2 v1 v2 v3 3 + 60 = 63, k3 3 + 10 = 13 -> mean 330 / 6 = 55
# B: k1 5 + 20 = 25, k2 v1 v2 v3 3 + 20 = 23, k3 3 + 80 = 83 -> mean 200 / 6 = 33.33
# Judged prompts (v3 failed): A is longer everywhere but k3, where the longer B wins.


def test_analyze_a_run_directory_from_the_cli(tmp_path: Path, cli) -> None:
    run = build_run(tmp_path / "run")
    source = [Example.from_alpaca(f"task {i}", "", " ".join(["w"] * (i + 1)), id=str(i), row=i) for i in range(4)]
    formats.write(source, tmp_path / "pool.jsonl")  # responses of 1, 2, 3, 4 words: mean 2.5
    select_in_run(run, tmp_path / "pool.jsonl", "words")  # the real select step: 3 and 4 words, mean 3.5

    result = cli("analyze", str(run), "--bootstrap", "200")
    assert "wrote" in result.stderr
    analysis = json.loads((run / "analyze" / "analysis.json").read_text())
    assert analysis["unit"]["name"] == "words"
    models = analysis["lengths"]["models"]
    assert models[MODEL_A]["all"]["mean"] == 55.0 and models[MODEL_B]["all"]["mean"] == pytest.approx(200 / 6)
    [comparison] = analysis["comparisons"]
    paper, strict = comparison["policies"]["paper"], comparison["policies"]["strict"]
    # paper: k1 win, k2 win, k3 lose, v1 tie, v2 win -> (3 + 0.5) / 5; strict: k2 becomes a tie -> (2 + 1) / 5
    assert paper["overall"]["win_rate"] == 70.0 and strict["overall"]["win_rate"] == 60.0
    assert paper["longer_answer_wins"] == {
        "decided": 4, "equal_length": 0, "longer_won": 4, "shorter_won": 0, "longer_share": 100.0,
    }  # fmt: skip
    assert paper["a_longer_share"] == 80.0 and paper["skipped"] == {"failed": 1, "missing_length": 0}
    # relative differences: k1 40/65, k2 v1 v2 40/63 (all in [0.5, 1]), k3 -70/83 (in [-1, -0.5))
    top = paper["by_length_difference"][-1]
    assert (top["n"], top["win_rate"]) == (4, 87.5)  # 3 wins and a tie
    assert paper["by_length_difference"][0]["win_rate"] == 0.0
    assert paper["length_matched"]["n"] == 0  # no pair within 10%
    # flips: k2 (a, tie) and v1 (a, b) of 5 judged; 7 of the 10 sided judgments went to the answer shown first
    [position] = analysis["position_bias"]
    assert position["flip_rate"] == 40.0 and position["first_position_share"] == 70.0
    selection = analysis["selection"]
    assert selection["source"]["response"]["mean"] == 2.5
    assert selection["subsets"]["longest-2"]["response"]["mean"] == 3.5
    assert selection["subsets"]["longest-2"]["mean_ratio"] == pytest.approx(3.5 / 2.5)


def test_analyze_bare_files_prints_json(tmp_path: Path, cli) -> None:
    run = build_run(tmp_path / "run")
    judgments = layout.judge_dir(run, MODEL_A, MODEL_B)  # a folder holding judgments.jsonl
    generation_a, generation_b = (layout.generation_file(run, m) for m in (MODEL_A, MODEL_B))
    result = cli("analyze", str(judgments), "-g", str(generation_a), "-g", str(generation_b), "--by", "chars",
                 "--bootstrap", "50")  # fmt: skip
    analysis = json.loads(result.stdout)
    assert (analysis["unit"]["name"], analysis["unit"]["description"], analysis["unit"]["source"]) == (
        "chars", "characters", "asked",
    )  # fmt: skip
    old = cli("analyze", str(judgments), "-g", str(generation_a), "--unit", "chars", "--bootstrap", "50")
    assert json.loads(old.stdout)["unit"]["name"] == "chars"  # the former option name still works, and says so
    assert [line for line in old.stderr.splitlines() if "deprecated" in line] == [
        "warning: --unit is deprecated, use --by"
    ]
    text = layout.read_generations(generation_a)[-1].outputs[0]  # v3
    assert analysis["lengths"]["models"][MODEL_A]["by_eval_set"]["vicuna"]["max"] == len(text)
    assert not (run / "analyze").exists()  # bare files: nothing written without -o


def test_analyze_errors_are_one_line(tmp_path: Path, cli) -> None:
    result = cli("analyze", str(tmp_path / "nothing-here"), check=False)
    assert result.returncode == 2 and "neither a run directory nor a judgments file" in result.stderr
    result = cli("analyze", "--selection", str(tmp_path / "x.json"), "--by", "tokens", check=False)
    assert result.returncode == 2 and "needs a tokenizer" in result.stderr
    bad = tmp_path / "judgments.jsonl"
    bad.write_text('{"prompt_id": "1"}\n')
    result = cli("analyze", str(bad), check=False)
    assert result.returncode == 2 and "judgments.jsonl:1" in result.stderr and "Judgment" in result.stderr


def select_in_run(run: Path, source: Path, by: str, k: int = 2) -> None:
    """The pipeline's select step into RUN/select (it writes the subset, summary.json and manifest.json)."""
    recipe = run.parent / "select-recipe.yaml"
    stage = {"name": f"longest-{k}", "uses": "select", "with": {"source": str(source), "k": k, "by": by}}
    recipe.write_text(yaml.safe_dump({"name": "s", "run_dir": str(run), "stages": [stage]}))
    run_recipe(load_recipe(recipe))


# responses whose NLTK token counts differ from their word counts: (words, nltk tokens)
PUNCTUATED = [("Yes.", 1, 2), ("Well, I can't say.", 4, 7), ("Go (now) [fast]!", 3, 8), ("a b c d e f", 6, 6)]


def punctuated_pool(path: Path) -> Path:
    examples = [Example.from_alpaca(f"task {i}", "", text, id=str(i), row=i) for i, (text, _, _) in
                enumerate(PUNCTUATED)]  # fmt: skip
    formats.write(examples, path)
    return path


def test_analyze_by_nltk_counts_the_papers_unit(tmp_path: Path, cli) -> None:
    pool = punctuated_pool(tmp_path / "pool.jsonl")
    result = cli("analyze", "--selection", str(pool), "--by", "nltk", "--bootstrap", "10")
    profile = json.loads(result.stdout)["selection"]
    assert profile["unit"]["name"] == "nltk" and profile["unit"]["counts"] == "len(nltk.word_tokenize(text))"
    assert profile["subsets"]["pool"]["response"]["mean"] == sum(t for _, _, t in PUNCTUATED) / 4
    words = json.loads(cli("analyze", "--selection", str(pool), "--by", "words").stdout)["selection"]
    assert words["subsets"]["pool"]["response"]["mean"] == sum(w for _, w, _ in PUNCTUATED) / 4


def test_analyze_defaults_to_the_unit_the_selection_was_made_in(tmp_path: Path, cli) -> None:
    pool = punctuated_pool(tmp_path / "pool.jsonl")
    # a run: the select step by nltk keeps "Go (now) [fast]!" (8) and "Well, I can't say." (7); by words it would
    # keep "a b c d e f" (6) and "Well, ..." (4)
    run = build_run(tmp_path / "run")
    select_in_run(run, pool, "nltk")
    analysis = analyze([run], bootstrap=10)
    assert (analysis["unit"]["name"], analysis["unit"]["source"]) == ("nltk", "selection")
    assert analysis["selection"]["subsets"]["longest-2"]["response"]["mean"] == (8 + 7) / 2
    assert analysis["selection"]["source"]["response"]["mean"] == sum(t for _, _, t in PUNCTUATED) / 4
    asked = analyze([run], by="chars", bootstrap=10)
    assert (asked["unit"]["name"], asked["unit"]["source"]) == ("chars", "asked")
    # a subset written by `longsift select` carries its unit in NAME.manifest.json
    subset = tmp_path / "alone" / "longest.json"
    cli("select", str(pool), "-o", str(subset), "--k", "2", "--preset", "paper", "--quiet")
    profile = json.loads(cli("analyze", "--selection", str(subset)).stdout)
    assert (profile["unit"]["name"], profile["unit"]["source"]) == ("nltk", "selection")
    assert profile["selection"]["subsets"]["longest"]["response"]["mean"] == (8 + 7) / 2


def test_selection_profile_on_the_shared_pool_and_lima(data_dir: Path, alpaca_pool: Path, tmp_path: Path) -> None:
    """Fig. 1b on the data we have: the public Alpaca pool (18.7k of the 52k), its longest 1,000 by words, LIMA."""
    pool, _ = load_all(alpaca_pool)
    words = [len(e.response.split()) for e in pool]
    longest_rows = sorted(sorted(range(len(pool)), key=lambda i: (-words[i], i))[:1000])
    formats.write([pool[i] for i in longest_rows], tmp_path / "pool-longest-1k.jsonl")
    lima = data_dir / "lima" / "fastchat_lima_1k.json"
    result = analyze(selection=[tmp_path / "pool-longest-1k.jsonl", lima], source=alpaca_pool, by="words")
    profile = result["selection"]
    assert profile["unit"]["name"] == "words"
    assert profile["source"]["n"] == len(pool)
    assert profile["source"]["response"]["mean"] == pytest.approx(sum(words) / len(words))
    longest, lima_row = profile["subsets"]["pool-longest-1k"], profile["subsets"]["fastchat_lima_1k"]
    assert longest["n"] == 1000 and lima_row["n"] == 1000
    assert longest["response"]["mean"] == pytest.approx(sum(words[i] for i in longest_rows) / 1000)
    assert longest["response"]["min"] == sorted(words)[-1000]  # the cut-off of the longest 1,000
    # the paper's ordering (51 < 257 < 531 tokens) holds in words on the shared data
    assert profile["source"]["response"]["mean"] < longest["response"]["mean"] < lima_row["response"]["mean"]
    means = [row["response"]["mean"] for row in (profile["source"], longest, lima_row)]
    print("\nmean words: pool {:.1f}, longest-1k {:.1f}, LIMA-1k {:.1f}".format(*means))
