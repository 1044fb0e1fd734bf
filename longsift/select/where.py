"""`--where`: a small, safe filter expression over a record's fields (parsed here, never `eval`ed).

    llm_score >= 4.5
    length > 200 and not (source == "dolly" or ifd > 0.9)

Grammar: `or` of `and` of `not` of comparisons `operand OP operand` (OP: == != < <= > >=) or a parenthesised
expression. An operand is a number, a quoted string, true/false/null, or a field: `llm_score` / `llm-score` /
`score` (metadata.score, as `longsift score` writes it), `length` (the response length in the --by unit), `id`,
`source`, or any metadata field (`ifd`, `a.b` for nested ones). A missing field is null; an order comparison
with null or across types (text vs number) is false, so records lacking a score never pass `score >= x`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from longsift.errors import ConfigError
from longsift.records import Example

Getter = Callable[[Example, int | None], Any]
Predicate = Callable[[Example, int | None], bool]
TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<string>\"[^\"]*\"|'[^']*')|(?P<op>==|!=|<=|>=|<|>)"
    r"|(?P<paren>[()])|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))"
)
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
SCORE_NAMES = ("llm_score", "llm-score", "score")
CONSTANTS = {"true": True, "false": False, "null": None}
KEYWORDS = ("and", "or", "not")


@dataclass(frozen=True)
class Where:
    """A compiled expression: call it with (example, length)."""

    text: str
    test: Predicate
    uses_length: bool

    def __call__(self, example: Example, length: int | None) -> bool:
        return self.test(example, length)


def tokens(text: str) -> list[tuple[str, str]]:
    out, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ConfigError(f"--where {text!r}: cannot read {text[at:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        at = match.end()
    return out


def field_getter(name: str) -> Getter:
    if name in SCORE_NAMES:
        name = "score"
    if name == "length":
        return lambda example, length: length
    if name in ("id", "source"):
        return lambda example, length: getattr(example, name)

    path = name.split(".")
    if path[0] == "metadata" and len(path) > 1:
        path = path[1:]

    def get(example: Example, length: int | None) -> Any:
        value: Any = example.metadata
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return get


def compare(op: str, left: Any, right: Any) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    if op in ("==", "!="):
        return OPERATORS[op](left, right)
    if left is None or right is None or (not numbers and type(left) is not type(right)):
        return False
    if numbers and any(math.isnan(v) for v in (left, right)):
        return False
    return bool(OPERATORS[op](left, right))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = tokens(text)
        self.at = 0
        self.uses_length = False

    def fail(self, why: str) -> ConfigError:
        return ConfigError(f"--where {self.text!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise self.fail("ends too early")
        self.at += 1
        return item

    def keyword(self, word: str) -> bool:
        item = self.peek()
        if item is not None and item[0] == "name" and item[1].lower() == word:
            self.at += 1
            return True
        return False

    def parse(self) -> Predicate:
        test = self.disjunction()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return test

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda e, n: any(p(e, n) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.keyword("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda e, n: all(p(e, n) for p in parts))

    def negation(self) -> Predicate:
        if self.keyword("not"):
            inner = self.negation()
            return lambda e, n: not inner(e, n)
        if self.peek() == ("paren", "("):
            self.take()
            inner = self.disjunction()
            if self.take() != ("paren", ")"):
                raise self.fail("a '(' is not closed")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        kind, op = self.take()
        if kind != "op":
            raise self.fail(f"expected a comparison (== != < <= > >=) after the first operand, got {op!r}")
        right = self.operand()
        return lambda e, n: compare(op, left(e, n), right(e, n))

    def operand(self) -> Getter:
        kind, value = self.take()
        if kind == "number":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return lambda e, n: number
        if kind == "string":
            text = value[1:-1]
            return lambda e, n: text
        if kind == "name" and value.lower() in CONSTANTS:
            constant = CONSTANTS[value.lower()]
            return lambda e, n: constant
        if kind == "name" and value.lower() not in KEYWORDS:
            self.uses_length = self.uses_length or value == "length"
            return field_getter(value)
        raise self.fail(f"expected a field, number or string, got {value!r}")


def compile_where(text: str) -> Where:
    if not text.strip():
        raise ConfigError("--where is empty")
    parser = _Parser(text)
    test = parser.parse()
    return Where(text, test, parser.uses_length)


def is_expression(step: str) -> bool:
    """A chain step that is a filter expression (it compares something) rather than a method name."""
    return any(kind == "op" for kind, _ in tokens(step)) if step.strip() else False
