"""Built-in evaluation sets, read from the shared data layouts (see shared/data/README.md).

    pairwise   the paper's 1,030 pairwise test prompts = koala 180 + lima 300 + sinstruct 252 + vicuna 80 + wizardlm 218
    alpacaeval AlpacaEval's 805 instructions (alpaca_eval/alpaca_eval_805.jsonl)
    mtbench    MT-Bench's 80 two-turn questions (mt_bench/question.jsonl)

Prompt ids are `<set>_<row>` (0-based row in the file), except MT-Bench's `mtbench_<question_id>`. The data root is
`data_dir`, else $LONGSIFT_DATA, else the checkout's ../shared/data (longsift.layout.data_dir). An eval "set" may
also be a training-format file (any layout `longsift.load` reads): its user turns become the prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from longsift.errors import DataError
from longsift.records import EvalPrompt
from longsift.registry import Registry

Loader = Callable[[Path], list[EvalPrompt]]
EVAL_SETS: Registry[Loader] = Registry("eval set")
PAIRWISE_SETS = ("koala", "lima", "sinstruct", "vicuna", "wizardlm")
EXPECTED_COUNTS = {"koala": 180, "lima": 300, "sinstruct": 252, "vicuna": 80, "wizardlm": 218, "alpacaeval": 805,
                   "mtbench": 80}  # fmt: skip


def data_root(data_dir: str | Path | None = None) -> Path:
    from longsift.layout import data_dir as resolve  # one rule: --data-dir, $LONGSIFT_DATA, the checkout's

    return resolve(data_dir or None)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(str(path), "eval set file not found: pass --data-dir or set LONGSIFT_DATA to the data folder")
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield line_no - 1, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise DataError(str(path), f"invalid JSON: {exc}", line=line_no) from None


def _text(path: Path, row: int, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(str(path), "empty or non-string prompt", row=row)
    return value


def _single_turn(
    path: Path, name: str, field: str, meta: Callable[[dict[str, Any], int], dict[str, Any]]
) -> list[EvalPrompt]:
    """A set of one-turn prompts: the turn is `field` of each row; ids are `<name>_<row>`."""
    return [EvalPrompt(f"{name}_{row}", name, (_text(path, row, data[field]),), meta(data, row))
            for row, data in _rows(path)]  # fmt: skip


@EVAL_SETS.register("koala")
def koala(root: Path) -> list[EvalPrompt]:
    return _single_turn(root / "test" / "koala_test_set.jsonl", "koala", "prompt",
                        lambda data, _: {"source_id": data.get("id")})  # fmt: skip


@EVAL_SETS.register("lima")
def lima(root: Path) -> list[EvalPrompt]:
    path = root / "test" / "lima_test.jsonl"
    prompts = []
    for row, data in _rows(path):
        turns = tuple(_text(path, row, turn) for turn in data["conversations"])
        prompts.append(EvalPrompt(f"lima_{row}", "lima", turns, {"source": data.get("source", "")}))
    return prompts


@EVAL_SETS.register("sinstruct")
def sinstruct(root: Path) -> list[EvalPrompt]:
    """Self-Instruct's user-oriented tasks: the instruction plus its one instance input (as the paper's scripts)."""
    path = root / "test" / "sinstruct_test_set.jsonl"
    prompts = []
    for row, data in _rows(path):
        instruction = _text(path, row, data["instruction"])
        instances = data.get("instances") or [{}]
        input_text = str(instances[0].get("input") or "")
        turn = f"{instruction}\n\n{input_text}" if input_text else instruction
        meta = {"instruction": instruction, "input": input_text, "source_id": data.get("id"),
                "motivation_app": data.get("motivation_app")}  # fmt: skip
        prompts.append(EvalPrompt(f"sinstruct_{row}", "sinstruct", (turn,), meta))
    return prompts


@EVAL_SETS.register("vicuna")
def vicuna(root: Path) -> list[EvalPrompt]:
    return _single_turn(root / "test" / "vicuna_test_set.jsonl", "vicuna", "text",
                        lambda data, _: {"question_id": data.get("question_id"),
                                         "category": data.get("category")})  # fmt: skip


@EVAL_SETS.register("wizardlm")
def wizardlm(root: Path) -> list[EvalPrompt]:
    return _single_turn(root / "test" / "wizardlm_test_set.jsonl", "wizardlm", "Instruction",
                        lambda data, _: {"source_id": data.get("idx"), "skill": data.get("Skill"),
                                         "difficulty": data.get("Difficulty")})  # fmt: skip


@EVAL_SETS.register("pairwise")
def pairwise(root: Path) -> list[EvalPrompt]:
    return [prompt for name in PAIRWISE_SETS for prompt in EVAL_SETS.get(name)(root)]


@EVAL_SETS.register("alpacaeval")
def alpacaeval(root: Path) -> list[EvalPrompt]:
    return _single_turn(root / "alpaca_eval" / "alpaca_eval_805.jsonl", "alpacaeval", "instruction",
                        lambda data, row: {"dataset": data.get("dataset"),
                                           "index": data.get("index", row)})  # fmt: skip


@EVAL_SETS.register("mtbench")
def mtbench(root: Path) -> list[EvalPrompt]:
    """MT-Bench: two turns each; the second is asked after the model's own first answer."""
    path = root / "mt_bench" / "question.jsonl"
    prompts = []
    for row, data in _rows(path):
        turns = tuple(_text(path, row, turn) for turn in data["turns"])
        meta = {"question_id": data["question_id"], "category": data.get("category")}
        if data.get("reference"):
            meta["reference"] = data["reference"]
        prompts.append(EvalPrompt(f"mtbench_{data['question_id']}", "mtbench", turns, meta))
    return prompts


EVAL_SETS.register("self-instruct", sinstruct)


def paper_question(eval_set: str, turns: Sequence[str]) -> str:
    """A test prompt as the paper's scripts put it into a prompt (`--compat paper`): they read LIMA's
    `conversations` list and formatted the list itself (evaluation_gpt4.py `prompt_template.format(question=...)`,
    generate_test.py's f-string), i.e. Python's str() of a list: "['How can I ...']" (or ["I'm ..."] when a turn
    holds a quote). Every other set's prompt is its text."""
    if eval_set == "lima":
        return str(list(turns))
    return turns[0]


def prompts_from_file(path: str | Path) -> list[EvalPrompt]:
    """Prompts from a training-format file: each example's user turns (its answers are not used)."""
    from longsift.formats.load import load

    name = Path(path).name.split(".")[0]
    prompts = []
    for example in load(path):
        turns = tuple(m.content for m in example.messages if m.role == "user")
        meta: dict[str, Any] = {"source_id": example.id}
        if "instruction" in example.metadata:
            meta.update(instruction=example.instruction, input=example.input)
        if example.system is not None:
            meta["system"] = example.system
        prompts.append(EvalPrompt(f"{name}_{example.row if example.row >= 0 else example.id}", name, turns, meta))
    return prompts


def load_eval_set(name: str, data_dir: str | Path | None = None) -> list[EvalPrompt]:
    """One or more built-in sets ("koala", "pairwise", "koala,vicuna") or a data file of examples."""
    if name not in EVAL_SETS and Path(name).exists():
        return prompts_from_file(name)
    root = data_root(data_dir)
    return [prompt for part in name.split(",") for prompt in EVAL_SETS.get(part.strip())(root)]
