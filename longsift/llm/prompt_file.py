"""The one prompt file format of longsift: TOML, each message's text in a multi-line string, kept byte for byte.

    name = "score-alpagasus"
    description = "Rate an answer's accuracy 0-5."
    parser = "number"                 # a name from longsift.llm.parsers.PARSERS (judge templates: judge parsers)
    expected_output_tokens = 40       # optional: what a dry run assumes (default: max_tokens)

    [sampling]
    temperature = 0
    max_tokens = 256

    [prompt]
    system = '''
    You are a helpful and precise assistant for checking the quality of the answer.'''
    user = '''
    [Instruction]
    {instruction}

    '''

TOML drops the one newline right after an opening `'''` and keeps every other character, trailing spaces and
newlines included, so a message ends exactly where its closing `'''` stands. In a literal string (`'''`) nothing
is escaped; use a basic string (`\"\"\"`) for a carriage return (`\\r`). Line ends of the file itself are read as
"\\n" whatever the checkout did. `{name}` is a placeholder filled from the record; write `{{` and `}}` for literal
braces (judge templates name their own placeholders: see longsift.judge.templates).

Refinement, scoring, ping and every judge template are read by `load_prompt_data`.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError

ROLES = ("system", "user")
HEADER_KEYS = {"name", "description", "parser", "sampling", "expected_output_tokens", "resample_temperature"}
SUFFIX = ".toml"
MAX_BYTES = 1 << 20  # a prompt is a page of text; the packaged ones are under 4 KB


@dataclass(frozen=True, slots=True)
class PromptFile:
    path: str
    header: dict[str, Any]
    sections: tuple[tuple[str, str], ...]  # (role, template text)
    placeholders: frozenset[str]


def load_prompt_data(path: str | Path) -> dict[str, Any]:
    """The TOML table of a prompt file; a file that cannot be read or parsed is a ConfigError naming it."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"{path}: the prompt file is larger than {MAX_BYTES} bytes (the limit)")
        text = raw.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the prompt file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the prompt file is not UTF-8: {exc}") from None
    return parse_prompt_data(text, str(path))


def parse_prompt_data(text: str, where: str = "<prompt>") -> dict[str, Any]:
    try:
        return tomllib.loads(text.replace("\r\n", "\n"))
    except tomllib.TOMLDecodeError as exc:
        hint = " (prompt files are TOML now: see longsift/prompts/*.toml)" if "---" in text else ""
        raise ConfigError(f"{where}: not a valid TOML prompt file: {exc}{hint}") from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise ConfigError(f"{where}: not a prompt file: values nested too deeply to read") from None


def prompt_sections(data: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    """The `[prompt]` table as (role, text) messages: an optional system message, then the user message."""
    prompt = data.get("prompt")
    if not isinstance(prompt, dict):
        raise ConfigError(f"{where}: no [prompt] table: write [prompt] with user = '''...'''")
    if unknown := set(prompt) - set(ROLES):
        raise ConfigError(f"{where}: unknown [prompt] keys {sorted(unknown)}; known: {', '.join(ROLES)}")
    for role, text in prompt.items():
        if not isinstance(text, str):
            raise ConfigError(f"{where}: [prompt] {role} must be a string")
    if not prompt.get("user", "").strip():
        raise ConfigError(f"{where}: [prompt] user is missing or empty: a prompt needs a user message")
    return tuple((role, prompt[role]) for role in ROLES if role in prompt)


def read_prompt_file(path: str | Path) -> PromptFile:
    return prompt_file_from_data(load_prompt_data(path), str(path))


def parse_prompt_text(text: str, where: str = "<prompt>") -> PromptFile:
    return prompt_file_from_data(parse_prompt_data(text, where), where)


def prompt_file_from_data(data: dict[str, Any], where: str) -> PromptFile:
    header = {key: value for key, value in data.items() if key != "prompt"}
    if unknown := set(header) - HEADER_KEYS:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(HEADER_KEYS | {'prompt'})}")
    sections = prompt_sections(data, where)
    placeholders = frozenset(name for _, body in sections for name in placeholder_names(body, where))
    return PromptFile(where, header, sections, placeholders)


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
