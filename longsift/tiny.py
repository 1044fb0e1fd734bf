"""A tiny Llama and a locally trained BPE tokenizer, for CPU tests and demos (nothing is downloaded).

tokenizer = build_tiny_tokenizer(texts, vocab_size=2048)
model = build_tiny_llama(tokenizer)            # ~1M parameters, random weights
build_tiny_model(out_dir, texts)               # both, saved with save_pretrained
teach_refine_format(model, tokenizer, examples, steps=60)   # answers the refine prompt as [Better Answer] ... [End]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from longsift.errors import MissingDependencyError

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [UNK, BOS, EOS, PAD, IM_START, IM_END]
# ChatML, so that the `chat` template has an end-of-turn token (<|im_end|>) distinct from EOS.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Words every template writes, so the tokenizer has merges for them whatever the training texts hold.
_TEMPLATE_WORDS = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n### Input:\n### Response:"
    " A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: ASSISTANT:"
)


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError(module, "train", "the tiny model") from exc


def build_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 2048, model_max_length: int = 2048) -> Any:
    """A byte-level BPE tokenizer trained on `texts`, as a PreTrainedTokenizerFast with BOS/EOS/PAD and ChatML."""
    _require("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )  # fmt: skip
    core.train_from_iterator([_TEMPLATE_WORDS] * 20 + list(texts), trainer=trainer)
    bos_id = core.token_to_id(BOS)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=[IM_START, IM_END], model_max_length=model_max_length,
    )  # fmt: skip
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def build_tiny_llama(
    tokenizer: Any,
    hidden_size: int = 192,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 512,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Any:
    """A randomly initialised LlamaForCausalLM sized for `tokenizer` (about 1M parameters by default)."""
    torch = _require("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=max_position_embeddings, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def build_tiny_model(
    output: str | Path, texts: Iterable[str], vocab_size: int = 2048, seed: int = 0,
    format_examples: Iterable[Any] = (), format_steps: int = 0, **sizes: Any,
) -> Path:  # fmt: skip
    """Train a tokenizer on `texts`, build a tiny Llama for it, save both to `output` (save_pretrained).
    With `format_steps`, the model is first taught the refine reply format on `format_examples`
    (teach_refine_format); else its weights stay random.

    Saved in a temporary folder beside `output` first, so a killed build never leaves a folder that looks like a
    model: a new `output` appears by one rename; into an existing one, `config.json` (what marks a model folder)
    is moved in last."""
    import shutil
    import tempfile

    from longsift.outputs import TEMP_PREFIX

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(texts, vocab_size=vocab_size)
    model = build_tiny_llama(tokenizer, seed=seed, **sizes)
    teach_refine_format(model, tokenizer, format_examples, format_steps, seed=seed)
    staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + output.name + ".", dir=output.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if not output.exists():
            staging.rename(output)
            return output
        output.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == "config.json"):
            os.replace(path, output / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def example_texts(examples: Iterable[Any]) -> Iterable[str]:
    """Every message of every Example, to train the tokenizer on."""
    for example in examples:
        for message in example.messages:
            yield message.content


def teach_refine_format(
    model: Any, tokenizer: Any, examples: Iterable[Any], steps: int, lr: float = 3e-3, prompt_tokens: int = 384,
    batch_size: int = 8, seed: int = 0,
) -> None:  # fmt: skip
    """Train `model` briefly to answer the refine prompt in the paper's format, `[Better Answer] ... [End]`.

    Each example is the paper's refine prompt for a record, rendered with the chat template (its last
    `prompt_tokens` tokens: the format instruction sits at the end), and a short reply: the tags around the first
    words of the record's answer. The loss is on the reply only. A few dozen steps teach the tags but not reliably
    when to write the answer, so a demo's refinements come out mixed (some parse, some are empty)."""
    torch = _require("torch")
    from longsift.refine.refine import load_prompts

    prompts = load_prompts()
    pairs = [_format_pair(tokenizer, prompts, example, prompt_tokens) for example in examples]
    if steps <= 0 or not pairs:
        return
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        chosen = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
        ids, mask, labels = _batch(torch, [pairs[i] for i in chosen], tokenizer.pad_token_id)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def _format_pair(
    tokenizer: Any, prompts: tuple[Any, Any], example: Any, prompt_tokens: int
) -> tuple[list[int], list[int]]:
    from longsift.refine.fields import prompt_fields

    plain, with_input = prompts
    values = prompt_fields(example)
    task = with_input if values["input"] else plain
    messages = [{"role": m.role, "content": m.content} for m in task.format(values)]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    reply = "[Better Answer] " + " ".join(values["answer"].split()[:2]) + " [End]"
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-prompt_tokens:]
    reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids, reply_ids


def _batch(torch: Any, pairs: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded input ids, attention mask and labels (-100 except on the reply)."""
    width = max(len(prompt) + len(reply) for prompt, reply in pairs)
    ids = torch.full((len(pairs), width), pad_id)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), -100)
    for row, (prompt, reply) in enumerate(pairs):
        end = len(prompt) + len(reply)
        ids[row, :end] = torch.tensor(prompt + reply)
        mask[row, :end] = 1
        labels[row, len(prompt) : end] = torch.tensor(reply)
    return ids, mask, labels
