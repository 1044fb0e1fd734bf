"""The packaged prompts, byte for byte as the paper's scripts built them: what the local server received against a
transcription of each script's prompt function (tml-epfl/long-is-more-for-alignment: refinement/
refine_responses.py gen_prompt_no_input / gen_prompt_input; evaluation/evaluation_gpt4.py and
evaluation_palm2.py gen_prompt with their question lookup), restated here from the scripts' text."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from longsift.evalsets import load_eval_set
from longsift.judge.pairwise import judge_pairwise
from longsift.llm.server import LocalChatServer
from longsift.llm.settings import LLMSettings
from longsift.records import Example, Generation
from longsift.refine import refine

# ---- refinement/refine_responses.py ----------------------------------------------------------------------------

REFINE_ASK_2 = (
    "2. Based on the reason you provided, please generate a better answer while preserving the same content. To "
    "achieve that, you may want to adjust the level of details, add bullet points, or use comprehensive words, etc. "
    "The answer should be in the format of [Better Answer] your answer [End] \n"
)
REFINE_LENSES = "Analyse based on the Helpfulness, Relevance, Accuracy, Level of Details, and Structure. \n"


def gen_prompt_no_input(ins: str, outp: str) -> tuple[str, str]:
    sys_prompt = (
        "You are a helpful, precise but picky assistant for checking the quality of the answer to a given instruction."
    )
    template = (
        "[Instruction]\n{ins}\n\n[The Start of Answer]\n{outp}\n\n[The End of Answer]\n\n[System]\n{criteria}\n\n"
    )
    criteria = (
        "We would like you to answer several questions related to the quality of the answer to the given "
        "instruction. \n" + "1. Why this answer is not good for the given instruction? " + REFINE_LENSES + REFINE_ASK_2
    )  # fmt: skip
    return sys_prompt, template.format(ins=ins, outp=outp, criteria=criteria)


def gen_prompt_input(ins: str, inp: str, outp: str) -> tuple[str, str]:
    sys_prompt = (
        "You are a helpful and precise assistant for checking the quality of the answer to a given instruction and "
        "its input."
    )
    template = (
        "[Instruction]\n{ins}\n\n[The Start of Input]\n{inp}\n\n[The End of Input]\n\n[The Start of Answer]\n{outp}\n\n"
        "[The End of Answer]\n\n[System]\n{criteria}\n\n"
    )
    criteria = (
        "We would like you to answer several questions related to the quality of the answer to the given instruction "
        "and corresponding input. \n" + "1. Why this answer is not good for the given instruction and corresponding "
        "input? " + REFINE_LENSES + REFINE_ASK_2
    )  # fmt: skip
    return sys_prompt, template.format(ins=ins, inp=inp, outp=outp, criteria=criteria)


def script_refine_messages(row: dict[str, str], cut_output: str | None = None) -> list[dict[str, str]]:
    """The script's message for one Alpaca row; `cut_output`: the output after the script's cut (not re-stripped)."""
    ins, outp = row["instruction"].strip(), row["output"].strip()
    inp = row["input"].strip() if "input" in row else ""
    outp = outp if cut_output is None else cut_output
    system, user = gen_prompt_no_input(ins, outp) if inp == "" else gen_prompt_input(ins, inp, outp)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


REFINE_ROWS = [
    {"instruction": "Name a primary colour. ", "input": "", "output": " Red is one.\n"},
    {"instruction": "Translate to French.", "input": "  Good morning {friend}\n", "output": "Bonjour {name}"},
    {"instruction": "\tList two {x} items\n", "input": "", "output": "1. a\n2. b\n\n"},
    {"instruction": "Sum: {0}+{1}", "input": "2 and 3", "output": "5 \r\n"},
]


def test_refine_prompts_are_the_scripts_byte_for_byte(tmp_path: Path) -> None:
    records = [Example.from_alpaca(r["instruction"], r["input"], r["output"], id=f"r{i}", row=i)
               for i, r in enumerate(REFINE_ROWS)]  # fmt: skip
    with LocalChatServer(lambda r: "[Better Answer] x [End]") as server:
        refine(records, LLMSettings(model="m", base_url=server.base_url, progress=False, cache=tmp_path / "c.sqlite"))
        received = sorted((e.request.messages for e in server.log), key=lambda m: m[1]["content"])
        bodies = [e.request.body for e in server.log]
    expected = sorted((script_refine_messages(r) for r in REFINE_ROWS), key=lambda m: m[1]["content"])
    assert received == expected
    assert all(b["temperature"] == 0 and b["top_p"] == 1.0 for b in bodies)
    assert all(m[1]["content"].endswith("[Better Answer] your answer [End] \n\n\n") for m in received)


# ---- evaluation/evaluation_gpt4.py and evaluation_palm2.py -------------------------------------------------------

JUDGE_CRITERIA = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user question "
    "displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of their responses. Each "
    "assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall "
    "performance.\nPlease first output a single line containing only two values indicating the scores for Assistant "
    "1 and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a "
    "comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order in which "
    "the responses were presented does not affect your judgment."
)
JUDGE_TEMPLATE = (
    "[Question]\n{question}\n\n[The Start of Assistant 1's Answer]\n{answer_1}\n\n[The End of Assistant 1's Answer]"
    "\n\n[The Start of Assistant 2's Answer]\n{answer_2}\n\n[The End of Assistant 2's Answer]\n\n[System]\n{criteria}"
    "\n\n"
)
PROMPT_KEYS = {"vicuna": "text", "koala": "prompt", "sinstruct": "instruction", "wizardlm": "Instruction",
               "lima": "conversations"}  # fmt: skip
FILES = {"koala": "koala_test_set.jsonl", "sinstruct": "sinstruct_test_set.jsonl", "vicuna": "vicuna_test_set.jsonl",
         "wizardlm": "wizardlm_test_set.jsonl", "lima": "lima_test.jsonl"}  # fmt: skip


def script_question(eval_set: str, row: dict) -> object:  # type: ignore[type-arg]
    """main()'s `ques`: the prompt key's value, a list for LIMA; Self-Instruct adds its non-empty input."""
    instruction = row[PROMPT_KEYS[eval_set]]
    if eval_set == "sinstruct" and row["instances"][0]["input"] != "":
        return "{instruction} Input: {input}".format(instruction=instruction, input=row["instances"][0]["input"])
    return instruction


def gpt4_messages(question: object, ans1: str, ans2: str) -> list[dict[str, str]]:
    sys_prompt = "You are a helpful and precise assistant for checking the quality of the answer."
    prompt = JUDGE_TEMPLATE.format(question=question, answer_1=ans1, answer_2=ans2, criteria=JUDGE_CRITERIA)
    return [{"role": "system", "content": sys_prompt}, {"role": "user", "content": prompt}]


def palm2_messages(question: object, ans1: str, ans2: str) -> list[dict[str, str]]:
    sys_prompt = "You are a helpful and precise assistant for checking the quality of the answer. "
    prompt = JUDGE_TEMPLATE.format(question=question, answer_1=ans1, answer_2=ans2, criteria=JUDGE_CRITERIA)
    return [{"role": "user", "content": sys_prompt + prompt}]


def picked_rows(data_dir: Path) -> dict[str, list[tuple[int, dict]]]:  # type: ignore[type-arg]
    """Two rows per test set, plus LIMA rows whose text holds a quote or a newline (Python prints those lists
    differently), and Self-Instruct rows with and without an input."""
    picked = {}
    for eval_set, name in FILES.items():
        rows = [json.loads(line) for line in (data_dir / "test" / name).read_text(encoding="utf-8").splitlines()]
        chosen = [0, 1]
        if eval_set == "lima":
            chosen += [
                next(i for i, r in enumerate(rows) if "'" in r["conversations"][0] and '"' not in r["conversations"][0])
            ]
            chosen += [
                next(i for i, r in enumerate(rows) if "'" in r["conversations"][0] and '"' in r["conversations"][0])
            ]
            chosen += [next(i for i, r in enumerate(rows) if "\n" in r["conversations"][0])]
        if eval_set == "sinstruct":
            chosen += [next(i for i, r in enumerate(rows) if r["instances"][0]["input"] == "")]
            chosen += [next(i for i, r in enumerate(rows) if r["instances"][0]["input"] != "")]
        picked[eval_set] = [(i, rows[i]) for i in sorted(set(chosen))]
    return picked


def answers(model: str, eval_set: str, row: int) -> str:
    return f" {model} says {{braces}} about {eval_set} {row}\n\n" if model == "alpha" else f"{model}: {eval_set}/{row}"


@pytest.fixture
def generation_files(data_dir: Path, tmp_path: Path) -> tuple[Path, Path, dict]:  # type: ignore[type-arg]
    picked = picked_rows(data_dir)
    prompts = {p.id: p for p in load_eval_set("pairwise", data_dir)}
    paths = []
    for model in ("alpha", "beta"):
        rows = []
        for eval_set, chosen in picked.items():
            for i, _ in chosen:
                prompt = prompts[f"{eval_set}_{i}"]
                rows.append(Generation(prompt.id, eval_set, model, prompt.turns, (answers(model, eval_set, i),),
                                       dict(prompt.metadata)))  # fmt: skip
        path = tmp_path / f"{model}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
        paths.append(path)
    return paths[0], paths[1], picked


def expected_judge_messages(picked: dict, build, lima_as_list: bool) -> list:  # type: ignore[no-untyped-def,type-arg]
    out = []
    for eval_set, chosen in picked.items():
        for i, row in chosen:
            question = script_question(eval_set, row)
            if eval_set == "lima" and not lima_as_list:
                question = row["conversations"][0]
            a, b = answers("alpha", eval_set, i), answers("beta", eval_set, i)
            out += [build(question, a, b), build(question, b, a)]
    return sorted(out, key=lambda messages: messages[-1]["content"])


@pytest.mark.parametrize(("template", "build"), [("paper", gpt4_messages), ("paper-palm2", palm2_messages)])
@pytest.mark.parametrize("compat", ["paper", None])
def test_judge_prompts_are_the_scripts_byte_for_byte(generation_files, tmp_path: Path, template, build, compat) -> None:  # type: ignore[no-untyped-def]
    a, b, picked = generation_files
    with LocalChatServer(lambda r: "8 9\nok") as server:
        settings = LLMSettings(model="m", base_url=server.base_url, progress=False, cache=tmp_path / "c.sqlite")
        judge_pairwise(a, b, tmp_path / "out", template=template, llm=settings, compat=compat)
        received = sorted((e.request.messages for e in server.log), key=lambda messages: messages[-1]["content"])
        bodies = [e.request.body for e in server.log]
    assert received == expected_judge_messages(picked, build, lima_as_list=compat == "paper")
    assert all((b["temperature"], b["top_p"], b["max_tokens"]) == (0.0, 1.0, 256) for b in bodies)
    lima = [m for m in received if "[Question]\n['" in m[-1]["content"] or '[Question]\n["' in m[-1]["content"]]
    assert len(lima) == (2 * len(picked["lima"]) if compat == "paper" else 0)


# ---- refine_responses.py's cut: n - budget characters off the output when instruction+input+output is over ------


def script_cut(tokenizer, row: dict[str, str], budget: int) -> str:  # type: ignore[no-untyped-def]
    """The script's `if input_ids.shape[1] > 2048: output_i = output_i[:-gap]`, with `budget` for 2048."""
    ins, outp = row["instruction"].strip(), row["output"].strip()
    inp = row["input"].strip() if "input" in row else ""
    n = tokenizer(ins + inp + outp, return_tensors="pt")["input_ids"].shape[1]
    return outp[: -(n - budget)] if n > budget else outp


def test_compat_paper_cuts_answers_in_characters_as_the_script(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from longsift.tiny import build_tiny_tokenizer

    words = ["the", "answer", "keeps", "going", "with", "more", "words", "about", "colours", "and", "numbers"]
    texts = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    build_tiny_tokenizer(texts * 20, vocab_size=300).save_pretrained(tmp_path / "tok")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    rows = [
        {"instruction": "Describe colours.", "input": "", "output": " ".join(words * 12)},
        {"instruction": "Count.", "input": "numbers please", "output": " ".join(words * 30) + " end"},
        {"instruction": "Short.", "input": "", "output": "the answer"},
    ]
    records = [Example.from_alpaca(r["instruction"], r["input"], r["output"], id=f"r{i}", row=i)
               for i, r in enumerate(rows)]  # fmt: skip
    shown = {}
    for compat in ("paper", None):
        with LocalChatServer(lambda r: "[Better Answer] x [End]") as server:
            settings = LLMSettings(model="m", base_url=server.base_url, progress=False, tokenizer=str(tmp_path / "tok"),
                                   cache=tmp_path / f"{compat}.sqlite")  # fmt: skip
            result = refine(records, settings, max_prompt_tokens=40, compat=compat)
            shown[compat] = {e.request.messages[1]["content"].split("\n", 2)[1]: e.request.messages for e in server.log}
        if compat == "paper":
            assert result.report.truncated == 2
            assert [r.metadata.get("refine_truncated", False) for r in result.records] == [True, True, False]
    for row in rows:
        expected = script_refine_messages(row, cut_output=script_cut(tokenizer, row, 40))
        assert shown["paper"][row["instruction"]] == expected
    # the corrected budget counts the whole rendered prompt: at 40 tokens the template alone is over, nothing is sent
    assert shown[None] == {}


# ---- generation/generate_test.py ------------------------------------------------------------------------------


def generate_test_prompt(eval_set: str, row: dict) -> str:  # type: ignore[type-arg]
    """generate_test.py's `input_data` for one test-set line (col[i] is the set's prompt key)."""
    value = row[PROMPT_KEYS[eval_set]]
    if eval_set == "sinstruct" and row["instances"][0]["input"] != "":
        return (
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\r\n\r\n"
            f"### Instruction:\r\n{value}\r\n\r\n### Input:\n{row['instances'][0]['input']}\r\n\r\n### Response:"
        )
    return (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        f"\r\n\r\n### Instruction:\r\n{value}\r\n\r\n### Response:"
    )


def test_compat_paper_generation_prompts_are_generate_test_pys(data_dir: Path, tmp_path: Path) -> None:
    from longsift.generate import as_paper_asked, generate
    from longsift.templates import Conversation, get_template
    from longsift.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "m", ["a b c d e f g"] * 50, vocab_size=64, hidden_size=16,
                             intermediate_size=32, num_layers=1, num_heads=2)  # fmt: skip
    from transformers import AutoTokenizer

    template = get_template("paper-generation", AutoTokenizer.from_pretrained(model))
    prompts = {p.id: p for p in load_eval_set("pairwise", data_dir)}
    for eval_set, chosen in picked_rows(data_dir).items():
        for i, row in chosen:
            asked = as_paper_asked(prompts[f"{eval_set}_{i}"])
            assert template.prompt(Conversation.from_prompt(asked)) == generate_test_prompt(eval_set, row), asked.id
    generations = generate(model, "lima,koala", data_dir=data_dir, limit=2, max_new_tokens=2, compat="paper")
    lima_rows = [json.loads(line) for line in (data_dir / "test" / "lima_test.jsonl").read_text().splitlines()[:2]]
    lima = [g for g in generations if g.eval_set == "lima"]
    assert [g.turns[0] for g in lima] == [str(r["conversations"]) for r in lima_rows]
    assert all(g.metadata["compat"] == "paper" and g.metadata["original_turns"] for g in lima)
    assert {g.metadata["generation"]["template"] for g in generations} == {"paper-generation"}


# ---- refinement/refine_responses_postprocess.py: which replies give a better answer ------------------------------


def reference_extract_segments(text: str) -> list[str]:
    """extract_segments, restated from the script."""
    import re

    def found(pattern: str) -> list[str]:
        return [m[1].strip() for m in re.findall(pattern, text, re.DOTALL)]

    better, revised, improved, end = (text.count(t) for t in ("[Better Answer]", "[Revised Answer]",
                                                              "[Improved Answer]", "[End]"))  # fmt: skip
    if better >= 2:
        return found(r"\[(Better Answer)\](.*?)(\[End\]|\[Better Answer\]|$)")
    if better == 1 and end == 1:
        return found(r"\[(Better Answer)\](.*?)(\[End\]|End|$)")
    if revised == 1 and end == 1:
        return found(r"\[(Revised Answer)\](.*?)(\[End\]|End|$)")
    if improved == 1 and end == 1:
        return found(r"\[(Improved Answer)\](.*?)(\[End\]|End|$)")
    for tag, count in (("[Better Answer]", better), ("[Revised Answer]", revised), ("[Improved Answer]", improved)):
        if count == 1 and end == 0:
            return [text.split(tag)[1].strip()]
    return [""]


def reference_better_answer(reply: str) -> str:
    """main(): more or fewer than one segment is '' (the original output is kept)."""
    segments = reference_extract_segments(reply)
    return segments[0] if len(segments) == 1 else ""


REFINE_REPLIES = [
    "Reasons...\n[Better Answer] A fuller answer. [End]",
    "[Better Answer]\nLine one.\nLine two.\n[End]\nExtra.",
    "[Better Answer] The End is near, then more. [End]",  # the bare "End" cuts here
    "[Better Answer] a [Better Answer] b [End]",  # the second start tag is swallowed: one segment
    "[Better Answer] a [End] [Better Answer] b [End]",  # two segments: none kept
    "[Better Answer] open to the end",
    "[Revised Answer] revised one [End]",
    "[Improved Answer] improved, open",
    "[Improved Answer] x [End] [End]",  # two [End]: no branch
    "**Better Answer:** not a tag",
    "[better answer] lower case [End]",
    "[Better Answer] [End]",  # empty
    "",
    "[Better Answer] trailing\n\n",
    "[Better Answer] a [Better Answer] b [Better Answer] c",
    "[Revised Answer] r [Better Answer] b [End]",
]


@pytest.mark.parametrize("reply", REFINE_REPLIES)
def test_paper_postprocess_reads_as_the_script(reply: str) -> None:
    from longsift.errors import ParseError
    from longsift.refine.paper_postprocess import parse_paper_better_answer

    expected = reference_better_answer(reply)
    if expected:
        assert parse_paper_better_answer(reply) == expected
    else:
        with pytest.raises(ParseError, match="original kept"):
            parse_paper_better_answer(reply)


def test_compat_paper_refine_keeps_what_the_script_kept(tmp_path: Path) -> None:
    records = [Example.from_alpaca(f"Do case {i}.", "", f"original {i}", id=f"c{i}", row=i)
               for i in range(len(REFINE_REPLIES))]  # fmt: skip

    def respond(request) -> str:  # type: ignore[no-untyped-def]
        case = int(request.prompt.split("Do case ", 1)[1].split(".", 1)[0])
        return REFINE_REPLIES[case]

    with LocalChatServer(respond) as server:
        settings = LLMSettings(model="m", base_url=server.base_url, progress=False, cache=tmp_path / "c.sqlite")
        result = refine(records, settings, compat="paper")
    for record, reply in zip(result.records, REFINE_REPLIES, strict=True):
        expected = reference_better_answer(reply)
        assert record.response == (expected or record.metadata["original_response"]), reply
        assert (record.metadata["refine_status"] == "failed") == (not expected)


# ---- AlpaGasus rating (gpt4life/alpagasus, rating/chatgpt_rating.py) -------------------------------------------


def alpagasus_rating_messages(row: dict[str, str]) -> list[dict[str, str]]:
    """system_prompt; triplet.format_map(row) + user_prompt ("rating according to the accuracy")."""
    system_prompt = (
        "We would like to request your feedback on the performance of AI assistant in response to the instruction "
        "and the given input displayed following."
    )
    user_prompt = (
        "Please rate according to the accuracy of the response to the instruction and the input. Each assistant "
        "receives a score on a scale of 0 to 5, where a higher score indicates higher level of the accuracy. Please "
        "first output a single line containing value indicating the scores. In the subsequent line, please provide "
        "a comprehensive explanation of your evaluation, avoiding any potential bias. \n\n"
    )
    triplet = "###Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}\n\n".format_map(row)
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": triplet + user_prompt}]


def test_alpagasus_rating_prompt_is_the_scripts(tmp_path: Path) -> None:
    from longsift.refine import score

    rows = [{"instruction": "Give {one} colour.", "input": "", "output": "Red."},
            {"instruction": "Add.", "input": "2 and 3", "output": "5\n\nDone."}]  # fmt: skip
    records = [Example.from_alpaca(r["instruction"], r["input"], r["output"], id=f"s{i}", row=i)
               for i, r in enumerate(rows)]  # fmt: skip
    with LocalChatServer(lambda r: "4\nGood.") as server:
        score(records, LLMSettings(model="m", base_url=server.base_url, progress=False, cache=tmp_path / "c.sqlite"))
        received = sorted((e.request.messages for e in server.log), key=lambda m: m[1]["content"])
        bodies = [e.request.body for e in server.log]
    assert received == sorted((alpagasus_rating_messages(r) for r in rows), key=lambda m: m[1]["content"])
    assert all((b["temperature"], b["top_p"], b["max_tokens"]) == (0, 1.0, 256) for b in bodies)
