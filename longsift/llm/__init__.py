"""The LLM-call layer every LLM stage stands on: one engine (cache, retries, rate limits, cost, progress),
PromptTasks (prompt file + parser), dry runs, backends (openai-compatible HTTP, transformers, vllm).

    settings = LLMSettings(base_url="http://127.0.0.1:8000/v1", model="m", concurrency=16)
    task = PromptTask.packaged("ping")
    with Engine.from_settings(settings, output="out/run") as engine:
        print(dry_run(task.requests(records), engine).render())
        report = run_task(task, records, engine)

Importing this package loads no torch, transformers or vllm.
"""

from longsift.llm.backends import BACKENDS, Backend, LocalBackend, RemoteBackend, make_backend
from longsift.llm.cache import Cache, CacheEntry
from longsift.llm.dryrun import DryRunReport, dry_run
from longsift.llm.engine import Engine, RunReport, RunStats, run_coroutine, run_requests
from longsift.llm.parsers import PARSERS, parse_json, parse_number, parse_text
from longsift.llm.pricing import Price, PriceTable
from longsift.llm.settings import LLMSettings, default_cache_path
from longsift.llm.task import PromptTask, TaskReport, TaskResult, arun_task, run_task
from longsift.llm.tokens import TokenCounter
from longsift.llm.types import CallResult, ChatRequest, Completion, Sampling, Usage

__all__ = [
    "BACKENDS", "PARSERS", "Backend", "Cache", "CacheEntry", "CallResult", "ChatRequest", "Completion", "DryRunReport",
    "Engine", "LLMSettings", "LocalBackend", "Price", "PriceTable", "PromptTask", "RemoteBackend", "RunReport",
    "RunStats", "Sampling", "TaskReport", "TaskResult", "TokenCounter", "Usage", "arun_task", "default_cache_path",
    "dry_run", "make_backend", "parse_json", "parse_number", "parse_text", "run_coroutine", "run_requests", "run_task",
]  # fmt: skip
