"""The options of refine and score, declared once: the Python API (refine(), score()), the CLI commands and the
recipe steps are built from, or validated by, these models (tests/test_one_declaration.py checks it).

- `RefineOptions` / `ScoreOptions`: what the stage does (the API's keywords);
- `CorpusFiles`: what the commands read and write (CLI only);
- `PassStep`: the recipe step's own keys (the stage's input, the output name, the `llm:` block: recipe only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator

from longsift.errors import ConfigError
from longsift.exec import PassExecOptions
from longsift.formats.load import DEFAULT_MAX_RECORD_BYTES
from longsift.options import Options, option
from longsift.refine.budget import BUDGET_CHARS_PER_TOKEN, DEFAULT_MAX_PROMPT_TOKENS


class PassOptions(Options):
    """What refine and score share: the prompt, its token budget, the reply's limit, new samples."""

    prompt: Path | None = option(None, "Your own TOML prompt file (as longsift/prompts/*.toml).")
    max_prompt_tokens: int | None = option(DEFAULT_MAX_PROMPT_TOKENS, "Cut the answer so the prompt fits (0: no cut).")
    chars_per_token: float = option(BUDGET_CHARS_PER_TOKEN, "Token estimate without --tokenizer (conservative).")
    max_tokens: int | None = option(None, "Completion token limit (default: the prompt file's).")
    resample: int = option(0, "New samples for a reply that does not parse (0: none).")

    @field_validator("max_prompt_tokens")
    @classmethod
    def _no_cut(cls, value: int | None) -> int | None:
        return value or None  # 0 (the CLI's spelling) and null (a recipe's) both mean no cut

    @field_validator("resample", "max_tokens", "chars_per_token")
    @classmethod
    def _not_negative(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and value < 0:
            raise ConfigError(f"{info.field_name} must be 0 or more, got {value}")
        return value


class RefineOptions(PassOptions):
    compat: str | None = option(None, "paper: cut answers in characters as the paper's script did.")

    @field_validator("compat")
    @classmethod
    def _known_compat(cls, value: str | None) -> str | None:
        if value not in (None, "paper"):
            raise ConfigError(f"unknown --compat {value!r}; known: paper")
        return value


class ScoreOptions(PassOptions):
    pass


class CorpusFiles(PassExecOptions):
    """The corpus a pass command reads and the file it writes (not recipe keys: a run lays out its own files)."""

    output: Path = option(..., "Output file; one record per input record, in input order.",
                          flags=("-o", "--output"), recipe=False)  # fmt: skip
    output_format: str | None = option(None, "Output format: messages (keeps metadata), alpaca, fastchat, parquet.",
                                       deprecated=("--format",), recipe=False)  # fmt: skip
    input_format: str | None = option(None, "Force the input format.", recipe=False)
    max_record_bytes: int = option(DEFAULT_MAX_RECORD_BYTES, "Quarantine larger input records.", recipe=False)


class PassStep(Options):
    """A recipe step's own keys: what it reads, the name of what it writes, and its LLM (LLMOptions keys)."""

    input: str = option(..., "The corpus to read (a path or a stage's output).", cli=False)
    name: str | None = option(None, "The output's file name in the run (default: the stage's name).", cli=False)
    llm: dict[str, Any] | None = option(None, "The LLM options (longsift.llm.settings.LLMOptions).", cli=False)


class RefineCommand(RefineOptions, CorpusFiles):
    pass


class ScoreCommand(ScoreOptions, CorpusFiles):
    pass


class RefineStep(RefineOptions, PassStep):
    pass


class ScoreStep(ScoreOptions, PassStep):
    pass
