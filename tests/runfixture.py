"""A small run directory whose judge, MT-Bench and AlpacaEval files are written by the real stages.

The generations are hand-made inputs; a recipe then runs the real `judge`, `mtbench` and `alpacaeval` steps
(the LLM judges are the project's local OpenAI-protocol server, scripted below), so the report and analyze tests
read exactly what the producing steps write. Only the training curve is still written by hand (training is the
one slow producer; its files are tested in test_train.py).

Verdicts per prompt (order ab, order ba) and what each policy makes of them (A's view):
    koala  k1  a, a      paper win   strict win
    koala  k2  a, tie    paper win   strict tie
    koala  k3  b, b      paper lose  strict lose
    vicuna v1  a, b      paper tie   strict tie   (order flipped the verdict)
    vicuna v2  a, a      paper win   strict win
    vicuna v3  a, fail   failed      failed
paper:  koala 2/0/1, vicuna 1/1/0 (+1 failed), all 3/1/1 of 5 judged -> 60/20/20 %, winning score 1 + 2/5 = 1.4
strict: koala 1/1/1, vicuna 1/1/0 (+1 failed), all 2/2/1 -> 40/40/20 %, winning score 1 + 1/5 = 1.2

MT-Bench (A's answers to questions 81, writing, and 111, math): the scripted grades 8, 6 and 2, 1 give turn 1
5.00, turn 2 3.50, overall 4.25, writing 7.00, math 1.50.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import yaml
from conftest import DATA

from longsift import layout
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.outputs import write_jsonl
from longsift.pipeline import load_recipe, run_recipe
from longsift.records import Generation

MODEL_A, MODEL_B = "longest-1k", "org/alpagasus-1k"
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\"> & </pre>"
VERDICTS = {
    ("koala", "k1"): ("a", "a"), ("koala", "k2"): ("a", "tie"), ("koala", "k3"): ("b", "b"),
    ("vicuna", "v1"): ("a", "b"), ("vicuna", "v2"): ("a", "a"), ("vicuna", "v3"): ("a", None),
}  # fmt: skip
EXPECTED = {
    "paper": {"all": ("60.0% (3)", "20.0% (1)", "20.0% (1)", "1.400"), "koala": ("66.7% (2)", "0.0% (0)", "33.3% (1)")},
    "strict": {"all": ("40.0% (2)", "40.0% (2)", "20.0% (1)", "1.200")},
}


def answer(model: str, eval_set: str, prompt_id: str) -> str:
    """A's answers are long, B's short, except k3 where B rambles; k1 carries hostile markup."""
    words = 60 if model == MODEL_A else 20
    if prompt_id == "k3":
        words = 10 if model == MODEL_A else 80
    text = " ".join(f"w{i}" for i in range(words))
    return f"{HOSTILE} {text}" if prompt_id == "k1" else f"{model} answers {eval_set}/{prompt_id}: {text}"


MTBENCH_GRADES = {(81, 1): 8, (81, 2): 6, (111, 1): 2, (111, 2): 1}
ANSWER_1 = re.compile(r"\[The Start of Assistant 1's Answer\]\n(.*?)\n\n\[The End of Assistant 1's Answer\]", re.S)
QUESTION = re.compile(r"Question (\w+) about (\w+)\?")
MT_MARK = re.compile(r"answer (\d+) turn (\d)")


def gpt4_reply(request: ServedRequest) -> str:
    """The scripted judge: VERDICTS for pairwise prompts (paper template), MTBENCH_GRADES for MT-Bench ones."""
    marks = [(int(q), int(t)) for q, t in MT_MARK.findall(request.prompt)]
    if marks:
        return f"Fair.\nRating: [[{MTBENCH_GRADES[max(marks, key=lambda m: m[1])]}]]"
    prompt_id, eval_set = QUESTION.findall(request.prompt)[0]
    first = ANSWER_1.search(request.prompt)
    order = "ab" if first and first.group(1) == answer(MODEL_A, eval_set, prompt_id) else "ba"
    verdict = VERDICTS[(eval_set, prompt_id)][0 if order == "ab" else 1]
    if verdict is None:
        return "garbled"
    winner_first = (verdict == "a") == (order == "ab")
    line = "8 8" if verdict == "tie" else ("9 7" if winner_first else "7 9")
    return f"{line}\nExplanation for {prompt_id} {order}: {HOSTILE}"


def palm_reply(request: ServedRequest) -> str:
    """A second judge that prefers A in both orders on every prompt: 6 wins under both policies."""
    prompt_id, eval_set = QUESTION.findall(request.prompt)[0]
    first = ANSWER_1.search(request.prompt)
    a_first = bool(first) and first.group(1) == answer(MODEL_A, eval_set, prompt_id)  # type: ignore[union-attr]
    return ("9 2" if a_first else "2 9") + f"\npalm prefers A on {prompt_id}"


def alpacaeval_inputs(folder: Path, data_dir: Path) -> tuple[Path, Path, Path]:
    """Annotation files: alpaca-7b's real ones (no LC without the difficulty table) and a synthetic study with
    its df_gamed.csv (tests/test_alpacaeval.py), which gives an LC win rate."""
    from test_alpacaeval import ANNOTATIONS, alpaca_7b_weights, synthetic_study, write_study

    folder.mkdir(parents=True, exist_ok=True)
    annotations, gamed, _ = synthetic_study(data_dir, alpaca_7b_weights(data_dir), seed=1)
    synthetic, table = write_study(folder, annotations, gamed)
    return data_dir / ANNOTATIONS, synthetic, table


def mtbench_answers(path: Path) -> Path:
    rows = [
        {
            "question_id": q,
            "answer_id": f"id{q}",
            "model_id": MODEL_A,
            "tstamp": 0.0,
            "choices": [{"index": 0, "turns": [f"answer {q} turn 1", f"answer {q} turn 2"]}],
        }
        for q in (81, 111)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def recipe(run_dir: Path, stages: list[dict[str, Any]]) -> Path:
    path = run_dir.parent / f"{run_dir.name}-recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "fixture", "run_dir": str(run_dir), "data_dir": str(DATA),
                                    "stages": stages}))  # fmt: skip
    return path


def build_run(run_dir: Path, *, with_summary: bool = True, two_judges: bool = False) -> Path:
    generations = {
        model: [Generation(p, s, model, (f"Question {p} about {s}? {HOSTILE}",), (answer(model, s, p),))
                for (s, p) in VERDICTS]
        for model in (MODEL_A, MODEL_B)
    }  # fmt: skip
    for model, records in generations.items():
        write_jsonl(records, layout.generation_file(run_dir, model))
    a, b = (str(layout.generation_file(run_dir, m)) for m in (MODEL_A, MODEL_B))
    inputs = run_dir.parent / f"{run_dir.name}-inputs"
    alpaca_7b, synthetic, table = alpacaeval_inputs(inputs, DATA)
    with LocalChatServer(gpt4_reply) as server:
        llm = {"base_url": server.base_url, "model": "gpt-4", "max_attempts": 1}
        run_recipe(load_recipe(recipe(run_dir, [
            {"name": "judge", "uses": "judge", "with": {"a": a, "b": b, "template": "paper", "llm": llm}},
            {"name": "mtbench", "uses": "mtbench", "with": {"answers": str(mtbench_answers(inputs / "mt.jsonl")),
                                                            "llm": llm}},
            {"name": "alpaca-7b", "uses": "alpacaeval", "with": {"annotations": str(alpaca_7b)}},
            {"name": "synthetic", "uses": "alpacaeval", "with": {"annotations": str(synthetic),
                                                                 "difficulty": str(table)}},
        ])))  # fmt: skip
    folder = layout.judge_dir(run_dir, MODEL_A, MODEL_B)
    if two_judges:  # a second judge's real judgments join the first's in one file (the report splits them)
        other = run_dir.parent / f"{run_dir.name}-palm"
        with LocalChatServer(palm_reply) as server:
            llm = {"base_url": server.base_url, "model": "palm-2", "max_attempts": 1}
            run_recipe(load_recipe(recipe(other, [
                {"name": "judge", "uses": "judge", "with": {"a": a, "b": b, "template": "paper", "llm": llm}},
            ])))  # fmt: skip
        with (folder / layout.JUDGMENTS).open("ab") as handle:
            handle.write((layout.judge_dir(other, MODEL_A, MODEL_B) / layout.JUDGMENTS).read_bytes())
    if not with_summary or two_judges:
        (folder / layout.SUMMARY).unlink()
    loss = [{"step": s, "epoch": s / 10, "loss": 2.0 / (1 + s)} for s in range(1, 21)]
    layout.write_json(loss, run_dir / "train" / MODEL_A / layout.LOSS_JSON)
    layout.write_json({"learning_rate": 1e-5, "epochs": 15, "neftune_alpha": 5}, run_dir / "train" / MODEL_A /
                      layout.TRAIN_CONFIG)  # fmt: skip
    return run_dir


def build_large_run(run_dir: Path, n: int) -> Path:
    """`n` koala prompts, every third one lost by A (paper and strict alike), judged by the real judge step."""
    generations = {m: [Generation(f"p{i}", "koala", m, (f"q{i}",), (f"{m} says {i}",)) for i in range(n)]
                   for m in (MODEL_A, MODEL_B)}  # fmt: skip
    for model, records in generations.items():
        write_jsonl(records, layout.generation_file(run_dir, model))

    def reply(request: ServedRequest) -> str:
        first = ANSWER_1.search(request.prompt)
        model, number = first.group(1).rsplit(" says ", 1) if first else ("", "0")
        a_wins = int(number) % 3 != 0
        return "9 7" if (model == MODEL_A) == a_wins else "7 9"

    a, b = (str(layout.generation_file(run_dir, m)) for m in (MODEL_A, MODEL_B))
    with LocalChatServer(reply) as server:
        llm = {"base_url": server.base_url, "model": "gpt-4", "max_attempts": 1, "concurrency": 16}
        run_recipe(load_recipe(recipe(run_dir, [
            {"name": "judge", "uses": "judge", "with": {"a": a, "b": b, "template": "paper", "llm": llm}},
        ])))  # fmt: skip
    return run_dir


def cache_rows(run_dir: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of `query` on RUN_DIR/cache/llm.sqlite, read-only; none while the cache or its table does not exist
    yet (the kill tests read it while the run that writes it is alive)."""
    path = run_dir / "cache" / "llm.sqlite"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(query).fetchall()
    except sqlite3.OperationalError:  # created, no table yet
        return []
