"""Packaged judge templates reproduce their sources' prompts exactly; user template files are checked."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from longsift.errors import ConfigError, UnknownNameError
from longsift.judge.templates import PAIR_TEMPLATES, get_pair_template, load_template

QUESTION = "Give three tips for staying healthy. Use {braces} freely."
FIRST = "1. Eat well.\n2. Sleep {answer_2}."
SECOND = "Drink water."


def test_paper_prompt_is_the_papers_exact_text() -> None:
    # evaluation/evaluation_gpt4.py of tml-epfl/long-is-more-for-alignment, gen_prompt(ques, ans1, ans2)
    criteria = (
        "We would like to request your feedback on the performance of two AI assistants in response to the user "
        "question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of their "
        "responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates "
        "better overall performance.\nPlease first output a single line containing only two values indicating the "
        "scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent "
        "line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias and "
        "ensuring that the order in which the responses were presented does not affect your judgment."
    )
    expected_user = (
        f"[Question]\n{QUESTION}\n\n[The Start of Assistant 1's Answer]\n{FIRST}\n\n[The End of Assistant 1's "
        f"Answer]\n\n[The Start of Assistant 2's Answer]\n{SECOND}\n\n[The End of Assistant 2's Answer]\n\n"
        f"[System]\n{criteria}\n\n"
    )
    template = PAIR_TEMPLATES.get("paper")
    system, user = template.messages(QUESTION, FIRST, SECOND)
    assert (system.role, system.content) == ("system", PAPER_SYSTEM)
    assert (user.role, user.content) == ("user", expected_user)
    assert template.sampling == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256}
    assert template.parse("8.5 8\nReasons").verdict == "first"


PAPER_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."


def test_fastchat_pair_is_mt_bench_pair_v2(data_dir: Path) -> None:
    prompts = {row["name"]: row for row in map(orjson.loads, (data_dir / "mt_bench/judge_prompts.jsonl").open("rb"))}
    pair = prompts["pair-v2"]
    system, user = PAIR_TEMPLATES.get("fastchat-pair").messages(QUESTION, FIRST, SECOND)
    assert system.content == pair["system_prompt"]
    expected = pair["prompt_template"].format(question=QUESTION, answer_a=FIRST, answer_b=SECOND)
    assert user.content == expected
    assert PAIR_TEMPLATES.get("fastchat-pair").parse("... [[B]]").verdict == "second"


def test_alpacaeval_template_is_the_clf_prompt(data_dir: Path) -> None:
    raw = (data_dir / "alpaca_eval/evaluator/alpaca_eval_clf_gpt4_turbo_prompt.txt").read_text()
    system, user = PAIR_TEMPLATES.get("alpacaeval").messages(QUESTION, FIRST, SECOND)
    assert f"<|im_start|>system\n{system.content}\n<|im_end|>" in raw
    filled = raw.replace("{instruction}", QUESTION).replace("{output_1}", FIRST).replace("{output_2}", SECOND)
    assert f"<|im_start|>user\n{user.content}\n<|im_end|>" in filled
    assert '"output": """Drink water."""' in user.content
    assert PAIR_TEMPLATES.get("alpacaeval").parse("M").verdict == "second"


def test_answers_are_substituted_once_so_braces_in_them_are_safe() -> None:
    _, user = PAIR_TEMPLATES.get("paper").messages(QUESTION, FIRST, SECOND)
    assert "Sleep {answer_2}." in user.content and "Use {braces} freely." in user.content


def test_a_users_template_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'parser = "bracket-verdict"\n[sampling]\nmax_tokens = 64\n'
        "[prompt]\nuser = '''\nQ: {question}\nA: {answer_a}\nB: {answer_b}\nVerdict?'''\n"
    )
    template = get_pair_template(path)
    assert template.name == "mine" and template.sampling == {"max_tokens": 64}
    (user,) = template.messages("q", "one", "two")
    assert user.content == "Q: q\nA: one\nB: two\nVerdict?"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("parser = 'score-pair'\n[prompt]\nuser = '{question} {answer_1}'", "never shows the second answer"),
        ("parser = 'nope'\n[prompt]\nuser = '{question} {answer_1} {answer_2}'", "unknown parser 'nope'"),
        ("parser = 'score-pair'\n[sampling]\ntemp = 0\n[prompt]\nuser = '{question} {answer_1} {answer_2}'", "temp"),
        ("parser = 'score-pair'\ncolour = 1\n[prompt]\nuser = '{question} {answer_1} {answer_2}'", "colour"),
        ("parser = 'score-pair'", r"no \[prompt\] table"),
        ("parser = 'score-pair'\n[prompt]\nsystem = 'x'", "user is missing"),
        ("parser = ", "not a valid TOML prompt file"),
    ],
)
def test_bad_template_files_are_clear_errors(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason) as info:
        load_template(path)
    assert str(path) in str(info.value)


def test_unknown_template_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'paper'"):
        get_pair_template("papr")
