"""The prompt file format: a YAML header, then one section per message, each opened by a `--- ROLE` line.

    name: alpagasus-score
    description: Rate an answer's accuracy 0-5.
    parser: number              # optional: a name from longsift.llm.parsers.PARSERS
    sampling: {temperature: 0, max_tokens: 256}
    expected_output_tokens: 40  # optional: what a dry run assumes (default: max_tokens)
    --- system
    You are a helpful and precise assistant for checking the quality of the answer.
    --- user
    [Instruction]
    {instruction}

A section's text is every line up to the next marker, with trailing blank lines dropped; nothing else is
trimmed. `{name}` is a placeholder filled from the record; write `{{` and `}}` for literal braces.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from longsift.errors import ConfigError

MARKER = re.compile(r"^--- (system|user|assistant)[ \t]*$")
HEADER_KEYS = {"name", "description", "parser", "sampling", "expected_output_tokens", "resample_temperature"}


@dataclass(frozen=True, slots=True)
class PromptFile:
    path: str
    header: dict[str, Any]
    sections: tuple[tuple[str, str], ...]  # (role, template text)
    placeholders: frozenset[str]


def read_prompt_file(path: str | Path) -> PromptFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the prompt file: {exc.strerror or exc}") from None
    return parse_prompt_text(text, str(path))


def parse_prompt_text(text: str, where: str = "<prompt>") -> PromptFile:
    lines = text.replace("\r\n", "\n").split("\n")
    starts = [i for i, line in enumerate(lines) if MARKER.match(line)]
    if not starts:
        raise ConfigError(f"{where}: no message sections: start each message with a line '--- system' or '--- user'")
    header = _header("\n".join(lines[: starts[0]]), where)
    sections = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        role = MARKER.match(lines[start]).group(1)  # type: ignore[union-attr]
        body = "\n".join(lines[start + 1 : end]).rstrip("\n")
        sections.append((role, body))
    placeholders = frozenset(name for _, body in sections for name in placeholder_names(body, where))
    if not any(role == "user" for role, _ in sections):
        raise ConfigError(f"{where}: a prompt needs at least one '--- user' section")
    return PromptFile(where, header, tuple(sections), placeholders)


def _header(text: str, where: str) -> dict[str, Any]:
    try:
        header = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: the header before the first '--- role' line is not valid YAML: {exc}") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{where}: the header must be 'key: value' lines")
    unknown = set(header) - HEADER_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown header keys {sorted(unknown)}; known: {sorted(HEADER_KEYS)}")
    return header


def placeholder_names(body: str, where: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        raise ConfigError(f"{where}: bad placeholder ({exc}); write {{{{ and }}}} for literal braces") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ConfigError(
                f"{where}: placeholder {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                "is not a plain {name}; write {{ and }} for literal braces"
            )
        names.append(name)
    return names
