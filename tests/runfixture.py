"""A small synthetic run directory with hand-made records, and the numbers the report must show for it.

Verdicts per prompt (order ab, order ba) and what each policy makes of them (A's view):
    koala  k1  a, a      paper win   strict win
    koala  k2  a, tie    paper win   strict tie
    koala  k3  b, b      paper lose  strict lose
    vicuna v1  a, b      paper tie   strict tie   (order flipped the verdict)
    vicuna v2  a, a      paper win   strict win
    vicuna v3  a, fail   failed      failed
paper:  koala 2/0/1, vicuna 1/1/0 (+1 failed), all 3/1/1 of 5 judged -> 60/20/20 %, winning score 1 + 2/5 = 1.4
strict: koala 1/1/1, vicuna 1/1/0 (+1 failed), all 2/2/1 -> 40/40/20 %, winning score 1 + 1/5 = 1.2
"""

from __future__ import annotations

from pathlib import Path

from longsift import layout
from longsift.records import Generation, Judgment
from longsift.verdicts import POLICIES, prompt_outcomes, tally

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


def judgments() -> list[Judgment]:
    out = []
    for (eval_set, prompt_id), verdicts in VERDICTS.items():
        for order, verdict in zip(("ab", "ba"), verdicts, strict=True):
            failed = verdict is None
            out.append(Judgment(
                prompt_id, eval_set, MODEL_A, MODEL_B, order, "gpt-4", "paper", verdict,  # type: ignore[arg-type]
                score_a=None if failed else 8.5, score_b=None if failed else 8.0,
                raw="garbled" if failed else f"8.5 8\nExplanation for {prompt_id} {order}: {HOSTILE}",
                status="failed" if failed else "ok", error="unparseable reply" if failed else None,
            ))  # fmt: skip
    return out


def second_judge() -> list[Judgment]:
    """A judge "palm-2" that prefers A in both orders on every prompt: 6 wins under both policies."""
    return [
        Judgment(p, s, MODEL_A, MODEL_B, order, "palm-2", "paper", "a", raw=f"palm prefers A on {p}")
        for (s, p) in VERDICTS for order in ("ab", "ba")
    ]  # fmt: skip


def build_run(run_dir: Path, *, with_summary: bool = True, two_judges: bool = False) -> Path:
    generations = {
        model: [Generation(p, s, model, (f"Question {p} about {s}? {HOSTILE}",), (answer(model, s, p),))
                for (s, p) in VERDICTS]
        for model in (MODEL_A, MODEL_B)
    }  # fmt: skip
    for model, records in generations.items():
        layout.write_jsonl(records, layout.generation_file(run_dir, model))
    folder = layout.judge_dir(run_dir, MODEL_A, MODEL_B)
    records = judgments()
    layout.write_jsonl(records + (second_judge() if two_judges else []), folder / layout.JUDGMENTS)
    if with_summary and not two_judges:
        outcomes = prompt_outcomes(records)
        layout.write_json({policy: tally(outcomes, policy) for policy in POLICIES}, folder / layout.SUMMARY)
    no_lc = {"win_rate": 6.0012, "standard_error": 0.7311, "discrete_win_rate": 5.5901, "n_total": 805,
             "avg_length": 1432, "length_controlled_winrate": None}  # fmt: skip
    layout.write_json(no_lc, run_dir / "alpacaeval" / "a.json")  # no "model" key: named after the file
    layout.write_json({"model": MODEL_B, "win_rate": 3.16, "standard_error": 0.55, "discrete_win_rate": 2.9,
                       "n_total": 805, "avg_length": 900, "length_controlled_winrate": 4.25},
                      run_dir / "alpacaeval" / "b.json")  # fmt: skip
    layout.write_json({"model": MODEL_A, "judge": "gpt-4", "overall": 4.25, "turn_1": 5.0, "turn_2": 3.5,
                       "categories": {"writing": {"score": 6.0}, "math": {"score": 1.5}}, "n_failed": 0},
                      run_dir / "mtbench" / f"{layout.slug(MODEL_A)}.json")  # fmt: skip
    loss = [{"step": s, "epoch": s / 10, "loss": 2.0 / (1 + s)} for s in range(1, 21)]
    layout.write_json(loss, run_dir / "train" / MODEL_A / layout.LOSS_JSON)
    layout.write_json({"learning_rate": 1e-5, "epochs": 15, "neftune_alpha": 5}, run_dir / "train" / MODEL_A /
                      layout.TRAIN_CONFIG)  # fmt: skip
    return run_dir


def build_large_run(run_dir: Path, n: int) -> Path:
    """`n` koala prompts, every third one lost by A (paper and strict alike), for paging through the browser."""
    generations = {m: [Generation(f"p{i}", "koala", m, (f"q{i}",), (f"{m} says {i}",)) for i in range(n)]
                   for m in (MODEL_A, MODEL_B)}  # fmt: skip
    for model, records in generations.items():
        layout.write_jsonl(records, layout.generation_file(run_dir, model))
    verdicts = ["b" if i % 3 == 0 else "a" for i in range(n)]
    records = [Judgment(f"p{i}", "koala", MODEL_A, MODEL_B, order, "gpt-4", "paper", v)  # type: ignore[arg-type]
               for i, v in enumerate(verdicts) for order in ("ab", "ba")]  # fmt: skip
    layout.write_jsonl(records, layout.judge_dir(run_dir, MODEL_A, MODEL_B) / layout.JUDGMENTS)
    return run_dir
