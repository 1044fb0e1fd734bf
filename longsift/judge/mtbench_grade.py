"""MT-Bench single-answer grading, as FastChat's `gen_judgment.py --mode single` does it, on the LLM engine.

Every question is graded twice: turn 1 with `single-v1` (or `single-math-v1` with the reference answer for math,
reasoning and coding), turn 2 with the `-multi-turn` variant that shows the whole conversation. The judge ends
with "Rating: [[x]]" (1-10). Temperature 0, max_tokens 2048 as FastChat. Differences from FastChat, on purpose:
a reply without a rating is retried (new samples only with `resample`) and then counted as failed, apart from
the scores (FastChat writes -1 and averages the rest without saying how many failed); the judge's calls are
cached, so a rerun or a resumed run pays nothing for what it already has.

References: FastChat uses its GPT-4 reference answers (`reference_answer/gpt-4.jsonl`); `reference="inline"`
prefers the human-written `reference` field that later question files carry, else the GPT-4 answer.
File reading/writing and show_result-style scores live in `longsift.judge.mtbench_files`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from longsift.errors import ConfigError, DataError, ParseError
from longsift.formats.rows import iter_jsonl
from longsift.judge.mtbench_files import (
    NEED_REFERENCE_CATEGORIES,
    Answer,
    JudgePrompt,
    ModelScores,
    Question,
    SingleJudgment,
    read_answers,
    read_judge_prompts,
    read_judgments,
    read_questions,
    score_judgments,
    single_prompt_name,
    write_judgments,
)
from longsift.judge.options import MTBenchOptions
from longsift.llm.settings import LLMSettings
from longsift.outputs import write_bytes
from longsift.records import Generation, Message

ReferenceSource = Literal["gpt-4", "inline"]
# FastChat's patterns (llm_judge/common.py: "[[8.5]]", else "[8.5]"), in an equivalent form whose quantifiers
# cannot backtrack (possessive), so that any reply is read in linear time.
RATING = re.compile(r"\[\[(\d++(?:\.\d*+)?)\]\]")
RATING_FALLBACK = re.compile(r"\[(\d++(?:\.\d*+)?)\]")
MAX_RATING_CHARS = 16
HIGHEST_RATING = 10.0
EVAL_SET = "mtbench"
SAMPLING = {"temperature": 0.0, "max_tokens": 2048}  # FastChat's for GPT-4 judges


@dataclass(frozen=True, slots=True)
class GradeItem:
    """One judge call: one answer's turn 1 or turn 2."""

    question: Question
    answer: Answer
    turn: int
    prompt: JudgePrompt
    reference: tuple[str, ...] | None = None

    @property
    def id(self) -> str:
        return f"{self.answer.model_id}/{self.question.question_id}/turn{self.turn}"

    def user_prompt(self) -> str:
        q, a = self.question.turns, self.answer.turns
        values = {"question": q[0], "answer": a[0]} if self.turn == 1 else {}
        if self.turn == 2:
            values = {"question_1": q[0], "question_2": q[1], "answer_1": a[0], "answer_2": a[1]}
        if self.reference is not None:
            values |= {"ref_answer_1": self.reference[0], "ref_answer_2": self.reference[-1]}
        try:
            return self.prompt.prompt_template.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"judge prompt {self.prompt.name!r} cannot be filled: {exc!r}") from None

    def messages(self) -> list[Message]:
        system = [Message("system", self.prompt.system_prompt)] if self.prompt.system_prompt else []
        return [*system, Message("user", self.user_prompt())]

    def fields(self) -> dict[str, str]:
        """For the PromptTask whose two sections are just {system} and {user}."""
        return {"system": self.prompt.system_prompt, "user": self.user_prompt()}


def references(
    questions: Iterable[Question], reference_answers: Mapping[int, Answer], source: ReferenceSource = "gpt-4"
) -> dict[int, tuple[str, ...]]:
    """Reference turns for every question whose category needs one; ConfigError if any is missing."""
    found, missing = {}, []
    for question in questions:
        if question.category not in NEED_REFERENCE_CATEGORIES:
            continue
        file_answer = reference_answers.get(question.question_id)
        if source == "inline" and question.reference:
            found[question.question_id] = question.reference
        elif file_answer is not None:
            found[question.question_id] = file_answer.turns
        else:
            missing.append(question.question_id)
    if missing:
        raise ConfigError(f"no reference answer for MT-Bench question(s) {missing}: pass a reference answer file")
    return found


def grade_items(
    questions: Iterable[Question], answers: Mapping[int, Answer], prompts: Mapping[str, JudgePrompt],
    refs: Mapping[int, tuple[str, ...]], turns: tuple[int, ...] = (1, 2),
) -> tuple[list[GradeItem], list[int]]:  # fmt: skip
    """Items for every answered question and turn, and the ids of questions the answers lack."""
    items, unanswered = [], []
    for question in questions:
        answer = answers.get(question.question_id)
        if answer is None:
            unanswered.append(question.question_id)
            continue
        for turn in turns:
            if turn > len(question.turns):
                continue
            if len(answer.turns) < turn:
                raise DataError(answer.model_id, f"question {question.question_id} has no answer to turn {turn}")
            name = single_prompt_name(question.category, multi_turn=turn == 2)
            if name not in prompts:
                raise ConfigError(f"the judge prompts have no {name!r} (FastChat's judge_prompts.jsonl has it)")
            reference = refs.get(question.question_id) if question.category in NEED_REFERENCE_CATEGORIES else None
            items.append(GradeItem(question, answer, turn, prompts[name], reference))
    return items, unanswered


def parse_rating(reply: str) -> float:
    """FastChat's reading of a single-grade reply: the first "[[x]]", else the first "[x]"; x in 0-10.

    FastChat evaluates x with ast.literal_eval and records -1 when nothing matches; here x is read with float()
    after a length check (a 5,000-digit "[[999…9]]" is a failure, not a crash), a reply without a rating raises
    ParseError so the failure is counted apart, and a rating above 10 (which FastChat would average in) is
    rejected.
    """
    match = RATING.search(reply) or RATING_FALLBACK.search(reply)
    if match is None:
        raise ParseError("no [[rating]] in the reply", reply)
    text = match.group(1)
    if len(text) > MAX_RATING_CHARS:
        raise ParseError(f"a rating of {len(text):,} characters is not a rating in 0-10", reply)
    value = float(text)
    if not 0.0 <= value <= HIGHEST_RATING:
        raise ParseError(f"rating {text} is outside 0-{HIGHEST_RATING:g}", reply)
    return value


def grade_task(max_tokens: int | None = None) -> Any:
    """One PromptTask for every item: each item brings its own FastChat prompt; the parser reads [[rating]]."""
    from longsift.llm.task import PromptTask
    from longsift.llm.types import Sampling

    sampling = Sampling.from_dict(SAMPLING if max_tokens is None else {**SAMPLING, "max_tokens": max_tokens})
    return PromptTask(
        name="mtbench-single", sections=(("system", "{system}"), ("user", "{user}")), parser=parse_rating,
        sampling=sampling, fields=GradeItem.fields, source="FastChat judge_prompts.jsonl",
        description="MT-Bench single-answer grading, [[rating]] 1-10",
    )  # fmt: skip


def to_single_judgment(item: GradeItem, result: Any, judge: str, tstamp: float) -> SingleJudgment:
    """FastChat's judgment line; a failure keeps FastChat's score -1 (its show_result leaves those out)."""
    score = float(result.value) if result.ok else -1.0
    return SingleJudgment(
        item.question.question_id, item.answer.model_id, (judge, item.prompt.name), item.user_prompt(),
        result.raw or "", score, item.turn, tstamp,
    )  # fmt: skip


def read_model_answers(path: str | Path, model: str | None = None) -> dict[int, Answer]:
    """FastChat answer JSONL (question_id, choices[0].turns) or our generation file (eval_set mtbench; the question
    id from metadata.question_id, else the prompt id, "mtbench_81" or "81")."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "answer file not found")
    with path.open(encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "")
    if '"choices"' in first:
        answers = read_answers(path)
    else:
        answers = {}
        for raw in iter_jsonl(path):
            try:
                generation = Generation.from_dict(raw.data or {})
                if generation.eval_set != EVAL_SET:
                    continue
                question_id = int(
                    generation.metadata.get("question_id") or generation.prompt_id.removeprefix("mtbench_")
                )
            except (KeyError, TypeError, ValueError) as exc:
                reason = raw.error or f"neither a FastChat answer nor an MT-Bench generation ({exc!r})"
                raise DataError(str(path), reason, line=raw.line) from None
            answers[question_id] = Answer(question_id, generation.model, generation.outputs)
    if not answers:
        raise DataError(str(path), "no MT-Bench answers in the file")
    name = model or next(iter(answers.values())).model_id or path.stem
    return {qid: Answer(qid, name, a.turns, a.answer_id, a.tstamp) for qid, a in answers.items()}


def mtbench_paths(
    data_dir: str | Path | None = None, questions: str | Path | None = None,
    reference_answers: str | Path | None = None, judge_prompts: str | Path | None = None,
) -> dict[str, Path]:  # fmt: skip
    """MT-Bench files: each given path, else its place under `data_dir` (longsift.layout.data_dir's default)."""
    from longsift.layout import data_dir as resolve

    root = resolve(data_dir or None, required=False) / "mt_bench"
    return {
        "questions": Path(questions or root / "question.jsonl"),
        "reference_answers": Path(reference_answers or root / "reference_answer_gpt-4.jsonl"),
        "judge_prompts": Path(judge_prompts or root / "judge_prompts.jsonl"),
    }


@dataclass
class MTBenchResult:
    judgments: list[SingleJudgment]
    scores: dict[str, Any]
    output_dir: Path
    dry_run: Any = None


def judge_mtbench(
    answers: str | Path, output_dir: str | Path, *, llm: LLMSettings | None = None, data_dir: str | Path | None = None,
    options: MTBenchOptions | None = None, **fields: Any,
) -> MTBenchResult:  # fmt: skip
    """Grade one model's MT-Bench answers (both turns); write FastChat's `model_judgment/<judge>_single.jsonl`
    and `scores.json` (turn 1, turn 2, overall, per category; failures counted and listed) to `output_dir`.

    The options are `MTBenchOptions` (longsift/judge/options.py: the `judge mtbench` flags, the recipe step's
    keys): the model as `options`, or its fields as keywords (`reference="inline"`, `model_name=...`)."""
    from longsift.llm.dryrun import dry_run
    from longsift.llm.engine import Engine
    from longsift.llm.task import run_task

    base = options.model_dump(exclude_unset=True) if options is not None else {}
    options = MTBenchOptions.from_keywords({**base, **fields}, "judge_mtbench()")
    reference, resample, max_tokens = options.reference, options.resample, options.max_tokens
    settings = llm or LLMSettings()
    paths = mtbench_paths(data_dir, options.questions, options.reference_answers, options.judge_prompts)
    question_list = read_questions(paths["questions"])
    refs = references(question_list, read_answers(paths["reference_answers"]), reference)  # type: ignore[arg-type]
    model_answers = read_model_answers(answers, options.model_name)
    items, unanswered = grade_items(question_list, model_answers, read_judge_prompts(paths["judge_prompts"]), refs)
    task = grade_task(max_tokens)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Engine.from_settings(settings, out) as engine:
        if settings.dry_run:
            return MTBenchResult([], {}, out, dry_run(task.requests(items), engine))
        run = run_task(task, items, engine, resample_on_parse_error=resample, description="MT-Bench grading")
    judge, tstamp = settings.require_model(), time.time()
    judgments = [to_single_judgment(item, result, judge, tstamp) for item, result in zip(items, run, strict=True)]
    model_name = next(iter(model_answers.values())).model_id
    merge_judgment_file(out / "model_judgment" / f"{judge.replace('/', '_')}_single.jsonl", judgments)
    scored = score_judgments(judgments, question_list).get(model_name)
    failed = [
        {"question_id": item.question.question_id, "turn": item.turn, "error": f"{result.status}: {result.error}"}
        for item, result in zip(items, run, strict=True)
        if not result.ok
    ]
    scores = {
        "model": model_name, "judge": judge, "reference": reference,
        **(scored or ModelScores(model_name, {}, None)).to_layout(),
        "n_judged": len(judgments) - len(failed), "n_failed": len(failed), "failed": failed,
        "unanswered": unanswered, "calls": {"sent": run.sent, "cost_usd": run.cost, **run.counts()},
        "inputs": {name: str(path) for name, path in paths.items()} | {"answers": str(answers)},
    }  # fmt: skip
    write_bytes(out / "scores.json", orjson.dumps(scores, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return MTBenchResult(judgments, scores, out)


def merge_judgment_file(path: Path, judgments: list[SingleJudgment]) -> None:
    """FastChat keeps every model's judgments in one file per judge: replace this model's lines, keep the rest."""
    mine = {(j.model, j.judge) for j in judgments}
    kept = [j for j in read_judgments(path) if (j.model, j.judge) not in mine] if path.is_file() else []
    write_judgments([*kept, *judgments], path, append=False)
