"""The LLM flags every LLM stage shares, added to a Typer command by one decorator:

    @llm_options
    def refine(input: Path, output: Path = typer.Option(..., "-o"), *, llm: LLMSettings) -> None:
        with Engine.from_settings(llm, output) as engine: ...

The command receives one `llm: LLMSettings`; `--base-url --model --api-key-env --backend --concurrency --timeout
--cache --retry-failed --dry-run --rpm --tpm` (and a few more) mean the same thing everywhere.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from longsift.llm.settings import LLMSettings

F = TypeVar("F", bound=Callable[..., Any])
PANEL = "LLM calls"


def _option(default: Any, *decls: str, help: str, **kw: Any) -> Any:
    return typer.Option(default, *decls, help=help, rich_help_panel=PANEL, **kw)


def _parameters(model_flags: tuple[str, ...]) -> list[inspect.Parameter]:
    d = LLMSettings()
    specs: list[tuple[str, Any, Any]] = [
        ("backend", str, _option(d.backend, "--backend", help="openai (any OpenAI-compatible server), transformers "
                                 "or vllm (a local model in-process).")),
        ("model", str | None, _option(None, *model_flags, help="Model name at the endpoint, or a local model path.")),
        ("base_url", str | None, _option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. "
                                         "http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL, else the OpenAI API)")),
        ("api_key_env", str, _option(d.api_key_env, "--api-key-env", help="Environment variable holding the API key "
                                     "(the key itself is never a flag, logged or stored).")),
        ("concurrency", int, _option(d.concurrency, "--concurrency", help="Requests in flight at once.")),
        ("timeout", float, _option(d.timeout, "--timeout", help="Seconds per request attempt.")),
        ("max_attempts", int, _option(d.max_attempts, "--max-attempts", help="Tries per request (429/5xx/timeouts).")),
        ("backoff_base", float, _option(d.backoff_base, "--backoff", help="Seconds before the first retry; doubles "
                                        "per attempt, with jitter (a server's Retry-After wins).")),
        ("rpm", float | None, _option(None, "--rpm", help="Requests-per-minute limit.")),
        ("tpm", float | None, _option(None, "--tpm", help="Tokens-per-minute limit.")),
        ("cache", Path | None, _option(None, "--cache", help="SQLite cache file (default: llm-cache.sqlite in the "
                                       "output's directory, else ~/.cache/longsift).")),
        ("no_cache", bool, _option(False, "--no-cache", help="Do not read or write the cache.")),
        ("retry_failed", bool, _option(False, "--retry-failed", help="Send nothing but the recorded failures.")),
        ("cache_only", bool, _option(False, "--cache-only", help="Send nothing: use cached answers only "
                                     "(re-parse after fixing a parser).")),
        ("dry_run", bool, _option(False, "--dry-run", help="Print calls, tokens and cost; send nothing.")),
        ("prices", Path | None, _option(None, "--prices", help="YAML price table overriding the packaged one.")),
        ("tokenizer", str | None, _option(None, "--tokenizer", help="Local Hugging Face tokenizer to count tokens "
                                          "(default: a stated characters-per-token estimate).")),
        ("batch_size", int, _option(d.batch_size, "--batch-size", help="Batch size of local backends.")),
        ("progress", bool, _option(True, "--progress/--no-progress", help="Show a progress bar.")),
        ("max_failed", str | None, _option(None, "--max-failed", help="Exit 1 (after writing the outputs) when more "
                                           "records than this failed: a fraction (0.5, 50%) or a count (10); "
                                           "default 0.5. A stage where every record failed always exits 1.")),
        ("max_response_bytes", int, _option(d.max_response_bytes, "--max-response-bytes", help="Read at most this "
                                            "much of an HTTP reply; a longer one is a failure (oversized).")),
        ("max_reply_chars", int | None, _option(None, "--max-reply-chars", help="Longest reply text accepted "
                                                "(default: 64 characters per max token, at least 65,536).")),
        ("check_model", bool, _option(True, "--model-check/--no-model-check", help="Stop at once when the endpoint "
                                      "lists its models (GET /models) and --model is not among them.")),
    ]  # fmt: skip
    return [inspect.Parameter(f"llm_{n}", inspect.Parameter.KEYWORD_ONLY, default=o, annotation=t) for n, t, o in specs]


def llm_options(func: F | None = None, *, model_flags: tuple[str, ...] = ("--model",)) -> Any:
    """Add the shared LLM flags to a command that takes `llm: LLMSettings` (keyword-only)."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "llm"]
        added = _parameters(model_flags)

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {p.name.removeprefix("llm_"): kwargs.pop(p.name) for p in added}
            return command(*args, llm=LLMSettings(**values), **kwargs)

        positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in positional]
        wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        del wrapper.__wrapped__  # typer must see the new signature, not the command's
        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
