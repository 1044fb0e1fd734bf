"""The options of the `llm` commands and `serve`, declared once (the LLM flags themselves: settings.LLMOptions)."""

from __future__ import annotations

from pathlib import Path

from longsift.options import Options, option

CACHE_HELP = (
    "Cache file, or a run folder (its cache/llm.sqlite); default: every command's cache, "
    "$LONGSIFT_CACHE_DIR/llm/llm-cache.sqlite (~/.cache/longsift/llm/ without it)."
)


class LLMRunOptions(Options):
    """`llm run`: the sampling of every prompt in a request file (a file's own `sampling` wins per prompt)."""

    output: Path = option(..., "JSON lines: one answer per prompt, in input order.", flags=("-o", "--output"))
    temperature: float = option(0.0, "Sampling temperature (0: greedy).")
    max_tokens: int = option(1024, "Most tokens per answer.")
    seed: int | None = option(None, "Sampling seed (part of the cache key).")


class CacheStatsOptions(Options):
    cache: Path | None = option(None, CACHE_HELP)
    as_json: bool = option(False, "Print JSON.", flags=("--json",))


class CacheClearOptions(Options):
    cache: Path | None = option(None, CACHE_HELP)
    failed: bool = option(False, "Only the recorded failures.", flags=("--failed",))
    model: str | None = option(None, "Only this model's rows.")
    yes: bool = option(False, "Do not ask.", flags=("--yes", "-y"))


class CacheExportOptions(Options):
    output: Path = option(..., "JSON lines, one cached call per line.", flags=("-o", "--output"))
    cache: Path | None = option(None, CACHE_HELP)
    status: str | None = option(None, "ok or failed.")
    model: str | None = option(None, "Only this model.")


class ServeOptions(Options):
    """`serve`: where a local model listens and the name it answers to."""

    port: int = option(8000, "Port (0: any free port).")
    host: str = option("127.0.0.1", "Address to listen on.")
    model_name: str | None = option(None, "Model name the server reports (default: the folder name).",
                                    deprecated=("--name",))  # fmt: skip
