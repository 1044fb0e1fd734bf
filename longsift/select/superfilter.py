"""`superfilter`: Superfiltering (Li et al., ACL 2024): IFD (see ifd.py) scored by a small language model instead
of the model being tuned; the paper shows GPT-2 (124M) ranks Alpaca's records by IFD much as Llama-2-7B does, at a
fraction of the cost. The same score and rule as `ifd` (drop IFD > 1, keep the top k), with GPT-2 as the default
scorer (`--model` picks another)."""

from __future__ import annotations

from dataclasses import dataclass

from longsift.select.ifd import IFD

DEFAULT_SCORER = "openai-community/gpt2"


@dataclass(frozen=True)
class Superfilter(IFD):
    name = "superfilter"

    @property
    def scorer(self) -> str | None:
        return self.model or DEFAULT_SCORER
