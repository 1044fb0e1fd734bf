"""Templates: exact layouts (Alpaca, FastChat vicuna_v1.1, the paper's), assistant spans, save/load with the model."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longsift import load
from longsift.errors import ConfigError, UnknownNameError
from longsift.evalsets import load_eval_set
from longsift.records import EvalPrompt, Example, Message
from longsift.templates import (
    TEMPLATE_FILE,
    TEMPLATES,
    Conversation,
    get_template,
    load_template,
    save_template,
)
from longsift.templates.alpaca import AlpacaTemplate, PaperGenerationTemplate
from longsift.templates.paper import PaperTemplate
from longsift.templates.vicuna import VICUNA_SYSTEM, VicunaTemplate

NO_INPUT = Example.from_alpaca("Name a color.", "", "Blue.", id="a")
WITH_INPUT = Example.from_alpaca("Add the numbers.", "2 and 3", "5", id="b")
PLAIN_TEMPLATES = ["alpaca", "vicuna", "paper", "paper-generation"]


@pytest.fixture(scope="module")
def tokenizer(alpaca_pool: Path):
    from longsift.tiny import build_tiny_tokenizer, example_texts

    return build_tiny_tokenizer(example_texts(islice(load(alpaca_pool), 300)), vocab_size=1024)


def test_alpaca_is_stanford_alpaca_byte_for_byte():
    template = AlpacaTemplate("</s>")
    assert template.prompt(Conversation.from_prompt(EvalPrompt("p", "t", ("Name a color.",)))) == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nName a color.\n\n### Response:"
    )
    rendered = template.training_text(Conversation.from_example(WITH_INPUT))
    assert rendered.text == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n"
        "### Input:\n2 and 3\n\n### Response:5</s>"
    )
    assert [rendered.text[a:b] for a, b in rendered.spans] == ["5</s>"]


def test_vicuna_is_fastchat_vicuna_v1_1():
    template = VicunaTemplate("</s>")
    conversation = Conversation((
        Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "Bye"), Message("assistant", "Ciao"),
    ))  # fmt: skip
    rendered = template.training_text(conversation)
    assert rendered.text == f"{VICUNA_SYSTEM} USER: Hi ASSISTANT: Hello!</s>USER: Bye ASSISTANT: Ciao</s>"
    assert [rendered.text[a:b] for a, b in rendered.spans] == ["Hello!</s>", "Ciao</s>"]
    second_turn = Conversation.from_prompt(EvalPrompt("q", "t", ("Hi", "Bye")), answers=["Hello!"])
    assert template.prompt(second_turn) == f"{VICUNA_SYSTEM} USER: Hi ASSISTANT: Hello!</s>USER: Bye ASSISTANT:"


def test_paper_template_renders_the_papers_released_lima_file_exactly(data_dir: Path):
    """The paper trained on FastChat files whose human turn holds the flattened preamble, inside vicuna_v1.1."""
    raw = json.loads((data_dir / "lima" / "fastchat_lima_1k.json").read_text())[:50]
    examples = list(islice(load(data_dir / "lima" / "fastchat_lima_1k.json"), 50))
    template = PaperTemplate("</s>")
    for item, example in zip(raw, examples, strict=True):
        human, gpt = item["conversations"][0]["value"], item["conversations"][1]["value"]
        rendered = template.training_text(Conversation.from_example(example))
        assert rendered.text == f"{VICUNA_SYSTEM} USER: {human} ASSISTANT: {gpt}</s>"


def test_paper_generation_template_is_the_released_generate_script_prompt(data_dir: Path):
    """generation/generate_test.py: Alpaca with \\r\\n, and a bare \\n after '### Input:' (self-instruct)."""
    prompt = next(p for p in load_eval_set("sinstruct", data_dir) if p.metadata["input"])
    text = PaperGenerationTemplate("</s>").prompt(Conversation.from_prompt(prompt))
    expected = (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\r\n\r\n"
        f"### Instruction:\r\n{prompt.metadata['instruction']}\r\n\r\n### Input:\n{prompt.metadata['input']}"
        "\r\n\r\n### Response:"
    )
    assert text == expected


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instruction=text, input_text=st.one_of(st.just(""), text), answer=text, name=st.sampled_from(PLAIN_TEMPLATES))
def test_generation_prompt_is_the_training_prefix(instruction, input_text, answer, name):
    """What the model sees at generation time is exactly what preceded the answer in training."""
    template = TEMPLATES.get(name)("</s>")
    example = Example.from_alpaca(instruction, input_text, answer, id="x")
    rendered = template.training_text(Conversation.from_example(example))
    prompt = EvalPrompt("x", "t", (example.prompt,), {"instruction": instruction, "input": input_text})
    generation_prompt = template.prompt(Conversation.from_prompt(prompt))
    ((start, end),) = rendered.spans
    assert rendered.text[start:end] == answer + "</s>"
    assert rendered.text.startswith(generation_prompt)
    assert rendered.text[len(generation_prompt) : start].strip() == ""


def test_prompt_for_eval_prompts_and_examples():
    template = VicunaTemplate("</s>")
    mt = EvalPrompt("m", "mtbench", ("First?", "Second?"))
    assert template.prompt_for(mt) == f"{VICUNA_SYSTEM} USER: First? ASSISTANT:"
    assert (
        template.prompt_for(mt, ["One."]) == f"{VICUNA_SYSTEM} USER: First? ASSISTANT: One.</s>USER: Second? ASSISTANT:"
    )
    assert (
        PaperTemplate("</s>")
        .prompt_for(WITH_INPUT)
        .endswith("### Instruction: Add the numbers. ### Input: 2 and 3 ASSISTANT:")
    )


def test_chat_template_uses_the_tokenizers_own(tokenizer):
    template = get_template("chat", tokenizer)
    assert template.eos_token == "<|im_end|>" and template.stop_tokens() == ["<|im_end|>", "</s>"]
    assert template.add_special_tokens is False  # the Jinja template writes <s> itself
    rendered = template.training_text(Conversation.from_example(NO_INPUT))
    assert rendered.text == ("<s><|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n")
    assert [rendered.text[a:b] for a, b in rendered.spans] == ["Blue.<|im_end|>"]
    assert template.prompt(Conversation.from_prompt(EvalPrompt("p", "t", ("Name a color.",)))) == (
        "<s><|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_template_saved_with_the_model_comes_back(tmp_path: Path, tokenizer):
    for name in [*PLAIN_TEMPLATES, "chat"]:
        template = get_template(name, tokenizer, system="Be brief." if name != "alpaca" else None)
        save_template(template, tmp_path)
        loaded = load_template(tmp_path, tokenizer)
        assert type(loaded) is type(template) and loaded.to_dict() == template.to_dict()
        conversation = Conversation.from_example(WITH_INPUT)
        assert loaded.training_text(conversation) == template.training_text(conversation)
    assert json.loads((tmp_path / TEMPLATE_FILE).read_text())["name"] == "chat"
    assert load_template(tmp_path, tokenizer, override="vicuna").name == "vicuna"


def test_without_a_saved_template_the_chat_template_is_used_or_the_error_says_what_to_do(tmp_path: Path, tokenizer):
    assert load_template(tmp_path, tokenizer).name == "chat"
    tokenizer = tokenizer.__class__.from_pretrained(_saved(tokenizer, tmp_path / "tok"))
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="--template"):
        load_template(tmp_path, tokenizer)
    with pytest.raises(ConfigError, match="chat template"):
        get_template("chat", tokenizer)


def test_unknown_template_suggests_a_name(tokenizer):
    with pytest.raises(UnknownNameError, match="'vicuna'"):
        get_template("vicunna", tokenizer)


def _saved(tokenizer, folder: Path) -> Path:
    tokenizer.save_pretrained(folder)
    return folder
