"""`longsift llm ping`: one uncached call that shows the endpoint, the model and the key work."""

from __future__ import annotations

import time
from dataclasses import dataclass

from longsift.llm.backends import RemoteBackend, make_backend
from longsift.llm.engine import Engine, run_coroutine
from longsift.llm.settings import LLMSettings
from longsift.llm.task import PromptTask, arun_task
from longsift.llm.types import Usage


@dataclass(frozen=True, slots=True)
class PingReport:
    backend: str
    model: str
    endpoint: str
    ok: bool
    reply: str | None
    error: str | None
    seconds: float
    usage: Usage | None
    cost: float | None
    served_models: tuple[str, ...]  # what GET /models listed (remote backends that offer it)

    def render(self) -> str:
        lines = [f"{self.backend} model {self.model} at {self.endpoint}"]
        if self.served_models:
            lines.append(f"  served models: {', '.join(self.served_models[:10])}")
        if self.ok:
            usage = self.usage or Usage()
            cost = "unknown" if self.cost is None else f"${self.cost:.6f}"
            lines.append(f"  reply: {self.reply!r} in {self.seconds:.2f}s")
            lines.append(f"  tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion; cost {cost}")
        else:
            lines.append(f"  FAILED after {self.seconds:.2f}s: {self.error}")
        return "\n".join(lines)


def ping(settings: LLMSettings) -> PingReport:
    settings = settings.but(no_cache=True, progress=False)
    backend = make_backend(settings)
    engine = Engine(backend, None, settings)
    endpoint = settings.resolved_base_url() if isinstance(backend, RemoteBackend) else "(in-process)"

    async def go() -> PingReport:
        models: list[str] = []
        if isinstance(backend, RemoteBackend) and hasattr(backend, "list_models"):
            await backend.open(1)
            try:
                models = await backend.list_models(settings.timeout)
            finally:
                await backend.close()
        started = time.monotonic()
        report = await arun_task(PromptTask.packaged("ping"), [{}], engine, description="ping")
        result = report.results[0]
        call = result.calls[-1] if result.calls else None
        completion = call.completion if call else None
        return PingReport(
            backend.name, backend.model, endpoint, call is not None and call.ok, result.raw, result.error,
            time.monotonic() - started, completion.usage if completion else None, call.cost if call else None,
            tuple(models),
        )  # fmt: skip

    return run_coroutine(go())
