"""LLM commands: `llm ping`, `llm run`, `llm cache stats|clear|export`, and `serve` (a local model over HTTP)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import typer
from rich.console import Console

from longsift import empty
from longsift.cli.llm_options import llm_options
from longsift.errors import ConfigError, LongsiftError
from longsift.llm.options import (
    CacheClearOptions,
    CacheExportOptions,
    CacheStatsOptions,
    LLMRunOptions,
    ServeOptions,
)  # fmt: skip
from longsift.llm.outcomes import failure_kind, raise_if_failed
from longsift.llm.progress import UNKNOWN_PRICE
from longsift.llm.settings import LLMOptions
from longsift.options import command_options
from longsift.outputs import atomic_output, guard_paths

console = Console(stderr=True)
llm_app = typer.Typer(
    help="Call LLMs: check an endpoint, run a batch of prompts, manage the cache.", no_args_is_help=True
)
cache_app = typer.Typer(help="Inspect, export or clear the LLM cache (SQLite).", no_args_is_help=True)
llm_app.add_typer(cache_app, name="cache")


@llm_app.command()
@llm_options
def ping(*, llm: LLMOptions) -> None:
    """Send one uncached request (and list the served models): do the endpoint, model and key work?"""
    from longsift.llm.ping import ping as run_ping

    report = run_ping(llm)
    print(report.render())
    if not report.ok:
        raise LongsiftError(f"ping failed: {report.error}")


@llm_app.command()
@command_options(LLMRunOptions)
@llm_options
def run(
    prompts: Path = typer.Argument(..., help="JSON lines: {id, messages} or {id, prompt[, system]} per line."),
    allow_empty: bool = empty.flag(),
    *,
    options: LLMRunOptions,
    llm: LLMOptions,
) -> None:
    """Answer every prompt in a file: cached, resumable, with retries; failures are listed, not dropped."""
    from longsift.llm.dryrun import dry_run
    from longsift.llm.engine import Engine
    from longsift.llm.request_file import read_requests, write_results
    from longsift.llm.types import Sampling

    output = options.output
    requests = read_requests(prompts, Sampling(options.temperature, options.max_tokens, seed=options.seed))
    empty.check(len(requests), "llm run", output, f"{prompts} holds no prompts", "check the file", allow_empty)
    with Engine.from_settings(llm, output) as engine:
        if llm.dry_run:
            print(dry_run(requests, engine).render())
            return
        report = engine.run_sync(requests, f"llm run {prompts.name}")
    write_results(report, output)
    for failure in report.failures[:10]:
        console.print(f"[red]failed[/] {failure.request.tag}: {failure.error}", highlight=False)
    print(report.stats.summary())
    kinds = [failure_kind(failure.error) for failure in report.failures]
    raise_if_failed("llm run", len(report.results), kinds, llm.max_failed)  # type: ignore[arg-type]


@cache_app.command()
@command_options(CacheStatsOptions)
def stats(*, options: CacheStatsOptions) -> None:
    """Rows per backend, model and status, tokens and recorded cost."""
    with _open_cache(options.cache) as store:
        summary = store.stats()
    if options.as_json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"{summary['path']}: {summary['ok']} ok, {summary['failed']} failed, {summary['bytes']:,} bytes")
    for group in summary["groups"]:
        cost = UNKNOWN_PRICE if group["cost"] is None else f"${group['cost']:.4f}"
        print(
            f"  {group['backend']}:{group['model']} {group['status']}: {group['calls']} calls, "
            f"{group['prompt_tokens']:,} + {group['completion_tokens']:,} tokens, cost {cost}"
        )


@cache_app.command()
@command_options(CacheClearOptions)
def clear(*, options: CacheClearOptions) -> None:
    """Delete cached calls (all, failures only, or one model's)."""
    failed, model, yes = options.failed, options.model, options.yes
    with _open_cache(options.cache) as store:
        what = ("failed" if failed else "all") + (f" {model}" if model else "") + f" rows of {store.path}"
        if not yes and not typer.confirm(f"delete {what}?"):
            raise typer.Abort()
        deleted = store.clear("failed" if failed else None, model)
    print(f"deleted {deleted} rows")


@cache_app.command()
@command_options(CacheExportOptions)
def export(allow_empty: bool = empty.flag(), *, options: CacheExportOptions) -> None:
    """Write cached calls (request, raw completion, usage, cost, status) as JSON lines."""
    output, cache, status, model = options.output, options.cache, options.status, options.model
    if status not in (None, "ok", "failed"):
        raise ConfigError(f"--status must be ok or failed, got {status!r}")
    from longsift.llm.cache import locate

    guard_paths([locate(cache)], [output])
    with _open_cache(cache) as store, atomic_output(output) as out:
        count = 0
        for entry in store.entries(status, model):  # entries come redacted from the cache (longsift.llm.redact)
            out.write(orjson.dumps(entry.to_dict()) + b"\n")
            count += 1
        what = "".join(f"{x} " for x in (status, model) if x)
        empty.check(count, "llm cache export", output, f"{store.path} holds no {what}calls",
                    "check --status/--model (`longsift llm cache stats` lists what it holds)", allow_empty)  # fmt: skip
    print(f"exported {count} calls to {output}")


@command_options(ServeOptions)
def serve(
    model_path: Path = typer.Argument(..., help="A local Hugging Face causal LM folder."), *, options: ServeOptions
) -> None:
    """Serve a local transformers model over the OpenAI protocol (/v1/chat/completions; /v1/completions, with echo
    and logprobs for lm-eval's loglikelihood).

    Requests are answered one at a time (no batching across requests): for tests, demos and small models."""
    from longsift.llm.backends.transformers_local import TransformersBackend
    from longsift.llm.server import LocalChatServer, backend_responder, engine_completions

    if not model_path.is_dir():
        raise ConfigError(f"{model_path}: not a model folder")
    backend = TransformersBackend(str(model_path), batch_size=1)
    backend.load()  # fail before announcing the address
    name, host, port = options.model_name, options.host, options.port
    server = LocalChatServer(backend_responder(backend), model=name or model_path.name, host=host, port=port,
                             completions=engine_completions(backend.runner)).bind()  # fmt: skip
    print(f"serving {model_path} as {server.model!r} on {server.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped
        server.serve_forever()


def _open_cache(given: Path | None):
    from longsift.llm.cache import Cache, locate

    path = locate(given)
    if not path.is_file() and given is None:
        raise ConfigError(f"{path}: no cache yet (every command without --cache caches here; a recipe run caches "
                          "in its folder: pass --cache RUN_DIR)")  # fmt: skip
    if not path.is_file():
        raise ConfigError(f"{path}: no such cache file (--cache takes a cache file or a run folder)")
    return Cache(path)


def register(app: typer.Typer) -> None:
    app.add_typer(llm_app, name="llm")
    app.command()(serve)
