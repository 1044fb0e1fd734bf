"""The LLM flags every LLM stage shares, added to a Typer command by one decorator:

    @llm_options
    def refine(input: Path, output: Path = typer.Option(..., "-o"), *, llm: LLMOptions) -> None:
        with Engine.from_settings(llm, output) as engine: ...

The command receives one `llm: LLMOptions`, validated by the model; every flag (name, default, help, deprecated
spellings) is declared once, on longsift.llm.settings.LLMOptions, which a recipe's `llm:` block also is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from longsift.llm.settings import LLMOptions
from longsift.options import cli_fields, cli_option, validate

F = TypeVar("F", bound=Callable[..., Any])
PANEL = "LLM calls"
CLI_TYPES: dict[str, Any] = {"max_failed": str | None}  # read by parse_max_failed: "0.5", "50%", "10"


def _parameters() -> list[inspect.Parameter]:
    """One keyword parameter `llm_<field>` per CLI field of LLMOptions, its flag declared by the model."""
    return [
        inspect.Parameter(
            f"llm_{name}", inspect.Parameter.KEYWORD_ONLY, annotation=CLI_TYPES.get(name, info.annotation),
            default=cli_option(LLMOptions, name, rich_help_panel=PANEL),
        )
        for name, info in cli_fields(LLMOptions).items()
    ]  # fmt: skip


def llm_options(func: F) -> F:
    """Add the shared LLM flags to a command that takes `llm: LLMOptions` (keyword-only)."""
    signature = inspect.signature(func, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "llm"]
    added = _parameters()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {p.name.removeprefix("llm_"): kwargs.pop(p.name) for p in added}
        return func(*args, llm=validate(LLMOptions, values, "LLM options"), **kwargs)

    positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in positional]
    wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
    del wrapper.__wrapped__  # typer must see the new signature, not the command's
    return wrapper  # type: ignore[return-value]
