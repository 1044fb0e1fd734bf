"""MT-Bench files in FastChat's layout (`fastchat/llm_judge/data/mt_bench/`) and FastChat's way of scoring them.

- `question.jsonl`: question_id, category, turns (two user turns), optional reference;
- `model_answer/<model>.jsonl` and `reference_answer/gpt-4.jsonl`: question_id, answer_id, model_id,
  choices [{index, turns}], tstamp;
- `judge_prompts.jsonl`: name, type, system_prompt, prompt_template, description, category, output_format;
- `model_judgment/<judge>_single.jsonl`: one line per judged turn with question_id, model,
  judge [judge_model, prompt_name], user_prompt, judgment, score, turn, tstamp, appended as judgments arrive.

Scores follow FastChat's `show_result.py --mode single`: a score of -1 is a failed judgment and is left out;
turn scores are the mean per model and turn, the overall score the mean of every remaining judgment
(not the mean of the two turn means); a category's score is the mean over both turns of its questions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift import layout
from longsift.errors import DataError
from longsift.outputs import write_text

FAILED_SCORE = -1.0
NEED_REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})  # FastChat's NEED_REF_CATS


@dataclass(frozen=True, slots=True)
class Question:
    question_id: int
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    question_id: int
    model_id: str
    turns: tuple[str, ...]
    answer_id: str = ""
    tstamp: float = 0.0


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    name: str
    type: str
    system_prompt: str
    prompt_template: str
    description: str = ""
    category: str = ""
    output_format: str = ""


@dataclass(frozen=True, slots=True)
class SingleJudgment:
    question_id: int
    model: str
    judge: tuple[str, str]  # (judge model, judge prompt name)
    user_prompt: str
    judgment: str
    score: float  # -1 when the rating could not be read
    turn: int
    tstamp: float

    @property
    def failed(self) -> bool:
        return self.score == FAILED_SCORE

    def to_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id, "model": self.model, "judge": list(self.judge),
            "user_prompt": self.user_prompt, "judgment": self.judgment, "score": self.score, "turn": self.turn,
            "tstamp": self.tstamp,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SingleJudgment:
        judge_model, prompt_name = data["judge"]
        return cls(
            int(data["question_id"]), str(data["model"]), (str(judge_model), str(prompt_name)),
            str(data.get("user_prompt", "")), str(data.get("judgment", "")), float(data["score"]),
            int(data["turn"]), float(data.get("tstamp", 0.0)),
        )  # fmt: skip


def _read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(str(path), f"invalid JSON: {exc}", line=line_no) from None
    return rows


def _records(path: str | Path, build: Any) -> list[Any]:
    out = []
    for line_no, data in _read_jsonl(path):
        try:
            out.append(build(data))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(str(path), f"unexpected record ({type(exc).__name__}: {exc})", line=line_no) from None
    return out


def read_questions(path: str | Path) -> list[Question]:
    def build(data: dict[str, Any]) -> Question:
        reference = data.get("reference")
        return Question(
            int(data["question_id"]), str(data["category"]), tuple(data["turns"]),
            tuple(reference) if reference else None,
        )  # fmt: skip

    return _records(path, build)


def read_answers(path: str | Path) -> dict[int, Answer]:
    """A model's answers (or FastChat's reference answers) by question id; the first choice is used."""

    def build(data: dict[str, Any]) -> Answer:
        return Answer(
            int(data["question_id"]), str(data.get("model_id", "")), tuple(data["choices"][0]["turns"]),
            str(data.get("answer_id", "")), float(data.get("tstamp", 0.0)),
        )  # fmt: skip

    return {answer.question_id: answer for answer in _records(path, build)}


def read_judge_prompts(path: str | Path) -> dict[str, JudgePrompt]:
    fields = JudgePrompt.__dataclass_fields__

    def build(data: dict[str, Any]) -> JudgePrompt:
        return JudgePrompt(**{key: str(value) for key, value in data.items() if key in fields})

    return {prompt.name: prompt for prompt in _records(path, build)}


def single_prompt_name(category: str, multi_turn: bool) -> str:
    """FastChat's judge prompt: reference-guided for math, reasoning and coding; `-multi-turn` for turn 2."""
    name = "single-math-v1" if category in NEED_REFERENCE_CATEGORIES else "single-v1"
    return name + "-multi-turn" if multi_turn else name


def write_judgments(judgments: Iterable[SingleJudgment], path: str | Path, append: bool = True) -> int:
    """Append (or write, whole or not at all) judgments one JSON line each, as FastChat's `play_a_match_single`."""
    lines = [json.dumps(judgment.to_dict(), ensure_ascii=False) + "\n" for judgment in judgments]
    if not append:
        write_text(path, "".join(lines))
        return len(lines)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
    return len(lines)


def read_judgments(path: str | Path) -> list[SingleJudgment]:
    return _records(path, SingleJudgment.from_dict)


@dataclass(frozen=True, slots=True)
class ModelScores:
    model: str
    turn_scores: dict[int, float]  # turn -> mean score
    overall: float | None
    categories: dict[str, float] = field(default_factory=dict)
    n_judged: int = 0
    n_failed: int = 0
    category_turns: dict[str, dict[int, float]] = field(default_factory=dict)  # category -> turn -> mean

    def to_layout(self) -> dict[str, Any]:
        """The scores as `mtbench/<model>.json` holds them (`longsift.layout.mtbench_scores`)."""
        return layout.mtbench_scores(
            self.overall, self.turn_scores, self.categories, self.category_turns, self.n_judged, self.n_failed
        )


def score_judgments(
    judgments: Iterable[SingleJudgment], questions: Iterable[Question] | None = None
) -> dict[str, ModelScores]:
    """Per-model turn, overall and (given the questions) per-category means, failed (-1) judgments left out."""
    category_of = {q.question_id: q.category for q in questions or ()}
    kept: dict[str, list[SingleJudgment]] = defaultdict(list)
    failed: dict[str, int] = defaultdict(int)
    for judgment in judgments:
        if judgment.failed:
            failed[judgment.model] += 1
        else:
            kept[judgment.model].append(judgment)
    results = {}
    for model in sorted(set(kept) | set(failed)):
        rows = kept[model]
        by_turn, by_category = defaultdict(list), defaultdict(list)
        by_category_turn: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for judgment in rows:
            by_turn[judgment.turn].append(judgment.score)
            if judgment.question_id in category_of:
                by_category[category_of[judgment.question_id]].append(judgment.score)
                by_category_turn[category_of[judgment.question_id]][judgment.turn].append(judgment.score)
        results[model] = ModelScores(
            model, {turn: _mean(scores) for turn, scores in sorted(by_turn.items())},
            _mean([j.score for j in rows]) if rows else None,
            {category: _mean(scores) for category, scores in sorted(by_category.items())},
            len(rows), failed[model],
            {c: {t: _mean(s) for t, s in sorted(turns.items())} for c, turns in sorted(by_category_turn.items())},
        )  # fmt: skip
    return results


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
