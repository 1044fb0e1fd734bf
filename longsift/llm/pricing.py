"""Price per call from a table of USD per 1M tokens. An unknown price is None, never zero."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from longsift.errors import ConfigError
from longsift.llm.types import Usage
from longsift.safe_yaml import parse_yaml, read_yaml


@dataclass(frozen=True, slots=True)
class Price:
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens

    def cost(self, usage: Usage) -> float | None:
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            return None
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1e6


class PriceTable:
    def __init__(self, prices: Mapping[str, Price], as_of: str = "") -> None:
        self.prices = dict(prices)
        self.as_of = as_of

    @classmethod
    def default(cls) -> PriceTable:
        text = resources.files("longsift.llm").joinpath("prices.yaml").read_text(encoding="utf-8")
        return cls.parse(parse_yaml(text), "longsift/llm/prices.yaml")

    @classmethod
    def load(cls, path: str | Path, base: PriceTable | None = None) -> PriceTable:
        """Read a user table (same layout as prices.yaml) on top of `base` (default: the packaged table)."""
        path = Path(path)
        user = cls.parse(read_yaml(path), str(path))  # bounded: size, nesting, alias expansion, duplicate keys
        base = base if base is not None else cls.default()
        return cls({**base.prices, **user.prices}, user.as_of or base.as_of)

    @classmethod
    def parse(cls, data: object, where: str) -> PriceTable:
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise ConfigError(f"{where}: a price table is a mapping with 'models: {{name: {{input, output}}}}'")
        prices = {}
        for name, entry in data["models"].items():
            try:
                prices[str(name)] = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, KeyError, ValueError):
                message = f"{where}: model {name!r} needs numeric 'input' and 'output' (USD per 1M tokens)"
                raise ConfigError(message) from None
        return cls(prices, str(data.get("as_of", "")))

    def lookup(self, model: str) -> Price | None:
        """Exact name, else the longest listed prefix followed by '-' (a dated or suffixed variant)."""
        name = model.rsplit("/", 1)[-1]  # "openai/gpt-4o" as routers spell it
        if name in self.prices:
            return self.prices[name]
        prefixes = [p for p in self.prices if name.startswith(p + "-")]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.lookup(model)
        return price.cost(usage) if price else None
