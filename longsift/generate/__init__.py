"""The generate stage: answer eval prompts with a trained model, using the template saved with it.

    generate("runs/tiny", "pairwise", "out/tiny.pairwise.jsonl", max_new_tokens=512)

Multi-turn prompts (MT-Bench) run in rounds: round r answers turn r of every prompt that has one, after the model's
own earlier answers. Each finished batch is appended to OUTPUT.partial, so an interrupted run resumes where it stopped;
the final file lists one Generation per prompt in eval-set order (see longsift.generations), with a manifest beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError
from longsift.evalsets import load_eval_set, paper_question
from longsift.generate.base import Completion, GenerationEngine, SamplingOptions
from longsift.generations import (
    append_generation,
    read_partial,
    write_alpacaeval,
    write_generations,
    write_mtbench_answers,
)
from longsift.records import EvalPrompt, Generation
from longsift.templates import Conversation

Progress = Callable[[int, int], None]
Backend = GenerationEngine  # what write_manifest's signature names


def generate(
    model: str | Path,
    eval_set: str,
    output: str | Path | None = None,
    *,
    max_new_tokens: int = 512,
    batch_size: int = 16,
    batch_tokens: int | None = None,
    template: str | None = None,
    backend: str = "transformers",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    model_name: str | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    alpacaeval: str | Path | None = None,
    mtbench: str | Path | None = None,
    progress: Progress | None = None,
    compat: str | None = None,
) -> list[Generation]:
    """Generate for a built-in eval set (or several, comma-separated, or a data file); `limit` caps each set.
    `compat="paper"`: the paper's generation prompt (template paper-generation unless `template` says otherwise)
    and LIMA's question as generate_test.py formatted it (longsift.evalsets.paper_question)."""
    prompts = first_per_set(load_eval_set(eval_set, data_dir), limit)
    if compat == "paper":
        prompts, template = [as_paper_asked(p) for p in prompts], template or "paper-generation"
    elif compat is not None:
        raise ConfigError(f"unknown --compat {compat!r}; known: paper")
    options = SamplingOptions(max_new_tokens, temperature, top_p, batch_size, seed, batch_tokens)
    engine = GenerationEngine.open(backend, model, template, dtype=dtype, trust_remote_code=trust_remote_code)
    name = model_name or Path(str(model).rstrip("/")).name
    started = time.time()
    generations = generate_prompts(engine, prompts, name, options, output, progress)
    if alpacaeval is not None:
        write_alpacaeval([g for g in generations if g.eval_set == "alpacaeval"], alpacaeval, name)
    if mtbench is not None:
        write_mtbench_answers([g for g in generations if g.eval_set == "mtbench"], mtbench, name)
    if output is not None:
        resolved = {"model_name": name, "eval_set": eval_set, "backend": backend, "dtype": dtype, "compat": compat,
                    "limit": limit, "trust_remote_code": trust_remote_code, "sampling": asdict(options)}  # fmt: skip
        inputs = {"model": str(model), "eval_set": eval_set, "data_dir": data_dir, "template": template}
        extra = {"alpacaeval": alpacaeval, "mtbench": mtbench}
        write_manifest(Path(output), engine, resolved, inputs, extra, generations, started)
    return generations


def as_paper_asked(prompt: EvalPrompt) -> EvalPrompt:
    """The prompt as the paper's script put it in its template; the original turns stay in metadata."""
    question = paper_question(prompt.eval_set, prompt.turns)
    if question == prompt.turns[0]:
        return prompt
    meta = {**prompt.metadata, "compat": "paper", "original_turns": list(prompt.turns)}
    return replace(prompt, turns=(question,), metadata=meta)


def first_per_set(prompts: list[EvalPrompt], limit: int | None) -> list[EvalPrompt]:
    if limit is None:
        return prompts
    seen: dict[str, int] = {}
    kept = []
    for prompt in prompts:
        seen[prompt.eval_set] = seen.get(prompt.eval_set, 0) + 1
        if seen[prompt.eval_set] <= limit:
            kept.append(prompt)
    return kept


def generate_prompts(
    engine: GenerationEngine,
    prompts: Sequence[EvalPrompt],
    model_name: str,
    options: SamplingOptions,
    output: str | Path | None = None,
    progress: Progress | None = None,
) -> list[Generation]:
    """Answer every turn of every prompt; with `output`, resume from and append to OUTPUT.partial."""
    partial = partial_path(output) if output is not None else None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
    done = _resume(partial, model_name, engine, options)
    answers: dict[str, list[Completion | str]] = {
        p.id: list(done[p.id].outputs) if p.id in done else [] for p in prompts
    }
    info: dict[str, dict[str, list[Any]]] = {p.id: _info_of(done.get(p.id)) for p in prompts}
    total = sum(len(p.turns) for p in prompts)
    finished = sum(len(a) for a in answers.values())
    for turn in range(max((len(p.turns) for p in prompts), default=0)):
        todo = [p for p in prompts if len(answers[p.id]) == turn and len(p.turns) > turn]
        conversations = [Conversation.from_prompt(p, _texts(answers[p.id])) for p in todo]
        for index, completion in engine.complete(conversations, options):
            prompt = todo[index]
            answers[prompt.id].append(completion)
            _record(info[prompt.id], completion)
            finished += 1
            if partial is not None:
                append_generation(_generation(prompt, model_name, answers[prompt.id], info[prompt.id], engine, options),
                                  partial)  # fmt: skip
            if progress is not None:
                progress(finished, total)
    generations = [_generation(p, model_name, answers[p.id], info[p.id], engine, options) for p in prompts]
    if output is not None:
        write_generations(generations, output)
        if partial is not None and partial.exists():
            partial.unlink()
    return generations


def _resume(
    partial: Path | None, model_name: str, engine: GenerationEngine, options: SamplingOptions
) -> dict[str, Generation]:
    """Answers of an interrupted run with the same model, template and sampling options (others are redone)."""
    if partial is None or not partial.is_file():
        return {}
    wanted = _settings(engine, options)
    return {
        g.prompt_id: g
        for g in read_partial(partial)
        if g.model == model_name and {k: g.metadata.get("generation", {}).get(k) for k in wanted} == wanted
    }


def _settings(engine: GenerationEngine, options: SamplingOptions) -> dict[str, Any]:
    return {"template": engine.template.name, "backend": engine.name, "max_new_tokens": options.max_new_tokens,
            "temperature": options.temperature, "seed": options.seed}  # fmt: skip


def _texts(answers: list[Completion | str]) -> list[str]:
    return [a.text if isinstance(a, Completion) else a for a in answers]


def _info_of(generation: Generation | None) -> dict[str, list[Any]]:
    old = (generation.metadata.get("generation") or {}) if generation else {}
    return {
        key: list(old.get(key, [])) for key in ("finish_reasons", "new_tokens", "prompt_tokens", "prompt_truncated")
    }


def _record(info: dict[str, list[Any]], completion: Completion) -> None:
    info["finish_reasons"].append("stop" if completion.finish_reason == "stop" else "length")
    info["new_tokens"].append(completion.usage.completion_tokens)
    info["prompt_tokens"].append(completion.usage.prompt_tokens)
    info["prompt_truncated"].append(completion.prompt_truncated)


def _generation(
    prompt: EvalPrompt, model: str, answers: list[Completion | str], info: dict[str, list[Any]],
    engine: GenerationEngine, options: SamplingOptions,
) -> Generation:  # fmt: skip
    details = {**_settings(engine, options), **info}
    meta = {**prompt.metadata, "generation": details}
    return Generation(prompt.id, prompt.eval_set, model, prompt.turns, tuple(_texts(answers)), meta)


def write_manifest(
    output: Path, engine: Backend, options: dict[str, Any], inputs: dict[str, Any],
    extra_outputs: dict[str, str | Path | None], generations: list[Generation], started: float,
) -> Path:  # fmt: skip
    """`manifest_path(output)` (longsift.manifest): the resolved options, the model by content hash, the template
    used and the counts of what was generated."""
    from longsift import manifest

    new_tokens = sum(sum(g.metadata["generation"]["new_tokens"]) for g in generations)
    finishes = [f for g in generations for f in g.metadata["generation"]["finish_reasons"]]
    summary = {
        "backend": engine.name, "template": engine.template.to_dict(),
        "prompts": len(generations), "completions": len(finishes), "stopped": finishes.count("stop"),
        "hit_max_new_tokens": finishes.count("length"), "new_tokens": new_tokens,
    }  # fmt: skip
    manifest.write_manifest(output, command="generate", options=options, inputs=inputs, summary=summary,
                            outputs={"output": output, **extra_outputs}, started=started)  # fmt: skip
    return manifest_path(output)


def partial_path(output: str | Path) -> Path:
    """Where finished answers are appended as they come, so a killed run resumes; removed once OUTPUT is whole."""
    return Path(f"{output}.partial")


def manifest_path(output: str | Path) -> Path:
    from longsift import manifest

    return manifest.manifest_path(output)


__all__ = ["Completion", "GenerationEngine", "SamplingOptions", "first_per_set", "generate", "generate_prompts"]
