"""Length units and length distributions of model responses.

Units: `chars`, `words` (whitespace-separated) and `tokens` of a Hugging Face tokenizer given by path (no special
tokens). Without a tokenizer the default unit is `words`, and every result says which unit it was counted in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longsift.errors import ConfigError, MissingDependencyError
from longsift.records import Generation

UNITS = ("chars", "words", "tokens")
PERCENTILES = (10, 25, 50, 75, 90)
_BATCH = 2000  # tokenizing in chunks keeps memory near 1 GB on long corpora


@dataclass(frozen=True)
class LengthUnit:
    name: str
    description: str
    count_batch: Callable[[Sequence[str]], list[int]]

    def count(self, texts: Iterable[str]) -> np.ndarray:
        texts = list(texts)
        counts: list[int] = []
        for start in range(0, len(texts), _BATCH):
            counts.extend(self.count_batch(texts[start : start + _BATCH]))
        return np.asarray(counts, dtype=np.int64)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "description": self.description}


def length_unit(unit: str | None = None, tokenizer: str | Path | None = None) -> LengthUnit:
    """`tokens` when a tokenizer path is given, else `words`; `chars` on request."""
    unit = unit or ("tokens" if tokenizer else "words")
    if unit == "chars":
        return LengthUnit("chars", "characters", lambda texts: [len(t) for t in texts])
    if unit == "words":
        return LengthUnit("words", "whitespace-separated words", lambda texts: [len(t.split()) for t in texts])
    if unit == "tokens":
        if not tokenizer:
            raise ConfigError("the 'tokens' unit needs a tokenizer: pass --tokenizer PATH (or use --unit words)")
        return LengthUnit("tokens", f"tokens of {tokenizer} (no special tokens)", _token_counter(Path(tokenizer)))
    raise ConfigError(f"unknown length unit {unit!r}; choose one of {', '.join(UNITS)}")


def _token_counter(path: Path) -> Callable[[Sequence[str]], list[int]]:
    """A `tokenizers` file loads without transformers; a tokenizer folder goes through AutoTokenizer."""
    if not path.exists():
        raise ConfigError(f"tokenizer {path} not found (give a tokenizer.json or a local tokenizer folder)")
    file = path if path.is_file() else path / "tokenizer.json"
    if file.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingDependencyError("tokenizers", "hf", "counting tokens") from None
        fast = Tokenizer.from_file(str(file))
        return lambda texts: [len(e.ids) for e in fast.encode_batch(list(texts), add_special_tokens=False)]
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise MissingDependencyError("transformers", "train", "counting tokens with a tokenizer folder") from None
    slow = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    return lambda texts: [len(ids) for ids in slow(list(texts), add_special_tokens=False)["input_ids"]]


def describe(lengths: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """n, mean, std (population), min, max and the 10/25/50/75/90th percentiles (linear interpolation)."""
    values = np.asarray(lengths, dtype=float)
    if values.size == 0:
        return {"n": 0}
    stats: dict[str, Any] = {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std())}
    stats["min"], stats["max"] = float(values.min()), float(values.max())
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        stats["median" if q == 50 else f"p{q}"] = float(value)
    return stats


def histogram(lengths_by_group: dict[str, np.ndarray], bins: int = 20) -> dict[str, Any]:
    """Counts per group on shared edges from 0 to the largest length, so groups can be drawn together."""
    top = max((int(v.max()) for v in lengths_by_group.values() if v.size), default=0)
    edges = np.linspace(0, max(top, 1), bins + 1)
    counts = {name: np.histogram(v, bins=edges)[0].tolist() for name, v in lengths_by_group.items()}
    return {"edges": edges.tolist(), "counts": counts}


def response_text(generation: Generation) -> str:
    """Every turn's answer; a single-turn generation gives its one output."""
    return "\n\n".join(generation.outputs)


def response_lengths(generations: Iterable[Generation], unit: LengthUnit) -> dict[tuple[str, str, str], int]:
    """(model, eval_set, prompt_id) -> response length, counted in one batched pass."""
    generations = list(generations)
    counts = unit.count(response_text(g) for g in generations)
    return {(g.model, g.eval_set, g.prompt_id): int(c) for g, c in zip(generations, counts, strict=True)}


def length_distributions(lengths: dict[tuple[str, str, str], int], bins: int = 20) -> dict[str, Any]:
    """Per model: overall and per-eval-set statistics, plus a shared-edge histogram."""
    by_model: dict[str, list[int]] = defaultdict(list)
    by_set: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for (model, eval_set, _), length in lengths.items():
        by_model[model].append(length)
        by_set[model][eval_set].append(length)
    arrays = {model: np.asarray(values) for model, values in sorted(by_model.items())}
    models = {
        model: {"all": describe(values), "by_eval_set": {s: describe(v) for s, v in sorted(by_set[model].items())}}
        for model, values in arrays.items()
    }
    return {"models": models, "histogram": histogram(arrays, bins)}
