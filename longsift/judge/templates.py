"""Pairwise judge templates as data: a TOML file with the prompt, the parser's name and sampling defaults.

A template file (see `longsift/prompts/judge/*.toml`) holds:

    description = "..."
    parser = "score-pair" | "bracket-verdict" | "model-identifier"
    paper_parser = "paper-gpt4" | "paper-palm2"   (optional: the source script's own reading, `--parse paper`)
    [sampling]   temperature, max_tokens, top_p (all optional)
    [prompt]     system (optional), user

The prompt names the question and the two answers IN PRESENTED ORDER with any of these placeholders (the
spellings of the sources they come from): {question} or {instruction}; {answer_1}, {answer_a} or {output_1}
for the answer shown first; {answer_2}, {answer_b} or {output_2} for the one shown second. Other braces (e.g.
AlpacaEval's JSON) are left alone, and answers are substituted in one pass, so braces inside answers are safe.

A new packaged template is one TOML file plus one `PAIR_TEMPLATES.register` line; a user's own file is passed
by path wherever a template name is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError
from longsift.judge.parsers import PAIR_PARSERS, PairParser, PairReading
from longsift.llm.prompt_file import load_prompt_data, prompt_sections
from longsift.records import Message
from longsift.registry import Registry

QUESTION = ("question", "instruction")
FIRST = ("answer_1", "answer_a", "output_1")
SECOND = ("answer_2", "answer_b", "output_2")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(QUESTION + FIRST + SECOND) + r")\}")
SAMPLING_KEYS = frozenset({"temperature", "max_tokens", "top_p"})
TOP_KEYS = frozenset({"name", "description", "parser", "paper_parser", "sampling", "prompt"})
READINGS = ("strict", "paper")


@dataclass(frozen=True, slots=True)
class PairTemplate:
    name: str
    user: str
    parser: str
    system: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    paper_parser: str | None = None

    def messages(self, question: str, first: str, second: str) -> list[Message]:
        """The chat messages that show `first` then `second` to the judge."""
        values = dict.fromkeys(QUESTION, question) | dict.fromkeys(FIRST, first) | dict.fromkeys(SECOND, second)
        user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)
        system = [Message("system", self.system)] if self.system else []
        return [*system, Message("user", user)]

    def parse(self, reply: str) -> PairReading:
        return PAIR_PARSERS.get(self.parser)(reply)

    def parser_for(self, reading: str) -> PairParser:
        """`strict`: longsift's reader; `paper`: the source script's own (unreadable replies become its ties)."""
        if reading not in READINGS:
            raise ConfigError(f"unknown reading {reading!r}; known: {', '.join(READINGS)}")
        if reading == "strict":
            return PAIR_PARSERS.get(self.parser)
        if self.paper_parser is None:
            raise ConfigError(f"judge template {self.name!r} has no paper reading (paper_parser); --parse paper "
                              "applies to templates taken from the paper's scripts: paper, paper-palm2")  # fmt: skip
        return PAIR_PARSERS.get(self.paper_parser)

    def format_sections(self) -> tuple[tuple[str, str], ...]:
        """(role, str.format template) pairs: every other brace escaped, so `.format_map` gives `messages()`."""
        system = [("system", _format_syntax(self.system))] if self.system else []
        return (*system, ("user", _format_syntax(self.user)))


def _format_syntax(text: str) -> str:
    parts = _PLACEHOLDER.split(text)  # literal, name, literal, name, ..., literal
    escaped = [p.replace("{", "{{").replace("}", "}}") if i % 2 == 0 else "{" + p + "}" for i, p in enumerate(parts)]
    return "".join(escaped)


def load_template(path: str | Path, name: str | None = None) -> PairTemplate:
    """Read and check a template file (the prompt file format of longsift.llm.prompt_file); mistakes are
    ConfigErrors naming the file."""
    return template_from_dict(load_prompt_data(path), name or Path(path).stem, str(path))


def template_from_dict(data: dict[str, Any], name: str, source: str) -> PairTemplate:
    def bad(reason: str) -> ConfigError:
        return ConfigError(f"{source}: {reason}")

    if unknown := set(data) - TOP_KEYS:
        raise bad(f"unknown keys {sorted(unknown)}; known: {sorted(TOP_KEYS)}")
    sampling = data.get("sampling") or {}
    if unknown := set(sampling) - SAMPLING_KEYS:
        raise bad(f"unknown [sampling] keys {sorted(unknown)}; known: {sorted(SAMPLING_KEYS)}")
    messages = dict(prompt_sections(data, source))
    user, system = messages["user"], messages.get("system")
    used = set(_PLACEHOLDER.findall(user))
    for role, names in (("the question", QUESTION), ("the first answer", FIRST), ("the second answer", SECOND)):
        if not used & set(names):
            raise bad(f"[prompt] user never shows {role}: use one of {', '.join('{' + n + '}' for n in names)}")
    parser, paper_parser = data.get("parser", ""), data.get("paper_parser")
    for key, value in (("parser", parser), ("paper_parser", paper_parser)):
        if value is not None and value not in PAIR_PARSERS:
            raise bad(f"unknown {key} {value!r}; known: {', '.join(PAIR_PARSERS.names())}")
    description = str(data.get("description", ""))
    return PairTemplate(name, user, parser, system, dict(sampling), description, source, paper_parser)


def packaged(name: str) -> PairTemplate:
    with resources.as_file(resources.files("longsift") / "prompts" / "judge" / f"{name}.toml") as path:
        return load_template(path, name)


PAIR_TEMPLATES: Registry[PairTemplate] = Registry("judge template")
PAIR_TEMPLATES.register("paper", packaged("paper"))
PAIR_TEMPLATES.register("fastchat-pair", packaged("fastchat-pair"))
PAIR_TEMPLATES.register("alpacaeval", packaged("alpacaeval"))
PAIR_TEMPLATES.register("paper-palm2", packaged("paper-palm2"))


def get_pair_template(name_or_path: str | Path) -> PairTemplate:
    """A registered template by name, or a user's template file by path."""
    if str(name_or_path) in PAIR_TEMPLATES:
        return PAIR_TEMPLATES.get(str(name_or_path))
    if Path(name_or_path).suffix == ".toml" or Path(name_or_path).is_file():
        return load_template(name_or_path)
    return PAIR_TEMPLATES.get(str(name_or_path))  # raises "unknown judge template ... did you mean"
