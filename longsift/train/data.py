"""Examples -> token ids with labels: the loss falls on the assistant turns (and their end-of-turn token) only.

The template renders each conversation and reports the character spans of the assistant turns; a token is trained
when its characters overlap a span (so a SentencePiece "▁word" that swallows the separating space still counts). The
trainer receives `input_ids` + `labels` and uses them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from longsift.errors import ConfigError
from longsift.records import Example
from longsift.templates import Conversation, Template

IGNORE_INDEX = -100


def supervised_labels(
    input_ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[int]:
    labels = []
    for token_id, (start, end) in zip(input_ids, offsets, strict=True):
        inside = end > start and any(start < span_end and end > span_start for span_start, span_end in spans)
        labels.append(token_id if inside else IGNORE_INDEX)
    return labels


def tokenize_example(example: Example, tokenizer: Any, template: Template, max_length: int | None = None) -> dict:
    """{"input_ids", "labels"} for one example; labels are IGNORE_INDEX outside the assistant turns."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("training needs a fast (Rust) tokenizer to locate the assistant tokens; this one is slow")
    rendered = template.training_text(Conversation.from_example(example))
    encoded = tokenizer(
        rendered.text, add_special_tokens=template.add_special_tokens, return_offsets_mapping=True,
        truncation=max_length is not None, max_length=max_length,
    )  # fmt: skip
    input_ids = list(encoded["input_ids"])
    return {"input_ids": input_ids, "labels": supervised_labels(input_ids, encoded["offset_mapping"], rendered.spans)}


def build_dataset(examples: Iterable[Example], tokenizer: Any, template: Template, max_length: int | None) -> Any:
    """A `datasets.Dataset` of input_ids/labels; examples left with no trained token (cut off) are dropped."""
    from datasets import Dataset

    rows: dict[str, list[Any]] = {"input_ids": [], "labels": [], "id": []}
    for example in examples:
        item = tokenize_example(example, tokenizer, template, max_length)
        if all(label == IGNORE_INDEX for label in item["labels"]):
            continue
        rows["input_ids"].append(item["input_ids"])
        rows["labels"].append(item["labels"])
        rows["id"].append(example.id)
    if not rows["input_ids"]:
        raise ConfigError(f"no example has a response token within max_length={max_length}")
    return Dataset.from_dict(rows)
