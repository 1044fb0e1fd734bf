"""Recipe steps: each turns a stage's options into a call of that stage's public API, in the run layout.

A step validates its options (unknown keys are an error), writes its artifacts where `longsift.layout` says,
and returns its outputs (`output` is the main one, what `${stage}` refers to). LLM steps share one cache per
run, so a stage that died resumes without paying again for the calls it had made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from longsift import formats, layout
from longsift.errors import ConfigError
from longsift.formats.load import load
from longsift.pipeline.runner import StageContext

LLM_KEYS = {"backend", "model", "base_url", "api_key_env", "concurrency", "timeout", "max_attempts", "rpm", "tpm",
            "batch_size", "tokenizer", "retry_failed"}  # fmt: skip


# The options each step takes: recipes are checked against these before anything runs.
OPTIONS: dict[str, set[str]] = {
    "select": {
        "source",
        "name",
        "k",
        "method",
        "by",
        "seed",
        "tokenizer",
        "min_length",
        "max_length",
        "dedup",
        "drop_empty_input",
        "threshold",
        "format",
    },
    "tiny-model": {"texts_from", "vocab_size", "seed", "limit"},
    "refine": {"input", "name", "llm", "prompt", "max_prompt_tokens", "chars_per_token", "max_tokens", "compat"},
    "score": {"input", "name", "llm", "prompt", "max_prompt_tokens", "max_tokens"},
    "train": {"data", "name", "model", "tiny", "recipe", "overrides"},
    "generate": {
        "model",
        "name",
        "eval_set",
        "limit",
        "max_new_tokens",
        "batch_size",
        "backend",
        "template",
        "temperature",
        "seed",
        "compat",
    },
    "judge": {"a", "b", "template", "llm", "resample", "max_tokens", "parse", "compat"},
    "mtbench": {"answers", "llm", "reference", "max_tokens"},
    "alpacaeval": {"annotations", "model", "difficulty"},
    "analyze": {"unit", "tokenizer", "tolerance", "bootstrap"},
    "report": {"title"},
}


def llm_settings(context: StageContext) -> Any:
    from longsift.llm import LLMSettings

    options = dict(context.option("llm") or {})
    unknown = sorted(set(options) - LLM_KEYS)
    if unknown:
        raise ConfigError(f"stage {context.spec.name!r}: unknown llm options {unknown}; known: {sorted(LLM_KEYS)}")
    cache = context.run_dir / "cache" / "llm.sqlite"
    return LLMSettings(**options, cache=cache, progress=context.console.is_terminal)


def _name(context: StageContext) -> str:
    return str(context.option("name", context.spec.name))


def _merge_json(path: Path, key: str, value: Any) -> None:
    """Several select stages share select/summary.json and select/manifest.json, one key each."""
    data = orjson.loads(path.read_bytes()) if path.is_file() else {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))


def select_step(context: StageContext) -> dict[str, str]:
    from longsift.select import select

    context.check_options(OPTIONS["select"])
    source = str(context.require("source"))
    fmt = context.option("format", "fastchat")
    out = layout.select_dir(context.run_dir) / f"{_name(context)}.{'jsonl' if fmt == 'messages' else 'json'}"
    selection = select(
        source, context.option("method", "longest"), context.option("k"), by=context.option("by", "words"),
        tokenizer=context.option("tokenizer"), seed=context.option("seed", context.recipe.seed),
        min_length=context.option("min_length"), max_length=context.option("max_length"),
        dedup=context.option("dedup", False), drop_empty_input=context.option("drop_empty_input", False),
        threshold=context.option("threshold"), quarantine=context.state_dir / "quarantine.jsonl",
    )  # fmt: skip
    formats.write(selection.examples, out, fmt)
    summary = selection.summary.to_dict() if hasattr(selection.summary, "to_dict") else vars(selection.summary)
    _merge_json(layout.select_dir(context.run_dir) / layout.SUMMARY, _name(context), summary)
    _merge_json(layout.select_dir(context.run_dir) / layout.MANIFEST, "source", source)
    context.console.print(f"selected {len(selection.examples)} of {summary.get('rows_read')} rows -> {out}")
    return {"output": str(out)}


def tiny_model_step(context: StageContext) -> dict[str, str]:
    """A tiny random Llama with a tokenizer trained on `texts_from`: a local model for CPU demos."""
    from longsift.tiny import build_tiny_model

    context.check_options(OPTIONS["tiny-model"])
    texts: list[str] = []
    for example in load(str(context.require("texts_from"))):
        texts.extend(m.content for m in example.messages)
        if len(texts) >= 2 * context.option("limit", 2000):
            break
    out = context.run_dir / "models" / context.spec.name
    build_tiny_model(out, texts, vocab_size=context.option("vocab_size", 1024), seed=context.option("seed", 0))
    return {"output": str(out)}


def refine_step(context: StageContext) -> dict[str, str]:
    from longsift.refine import refine

    context.check_options(OPTIONS["refine"])
    records = list(load(str(context.require("input"))))
    out = layout.select_dir(context.run_dir) / f"{_name(context)}.jsonl"
    result = refine(
        records, llm_settings(context), prompt=context.option("prompt"),
        max_prompt_tokens=context.option("max_prompt_tokens", 2048), max_tokens=context.option("max_tokens"),
        chars_per_token=context.option("chars_per_token", 3.0), compat=context.option("compat"),
    )  # fmt: skip
    formats.write(result.records, out, "messages")
    context.console.print(result.report.summary())
    return {"output": str(out)}


def score_step(context: StageContext) -> dict[str, str]:
    from longsift.refine import score

    context.check_options(OPTIONS["score"])
    records = list(load(str(context.require("input"))))
    out = context.run_dir / "score" / f"{_name(context)}.jsonl"
    result = score(records, llm_settings(context), prompt=context.option("prompt"),
                   max_prompt_tokens=context.option("max_prompt_tokens", 2048))  # fmt: skip
    formats.write(result.records, out, "messages")
    context.console.print(result.report.summary())
    return {"output": str(out)}


def train_step(context: StageContext) -> dict[str, str]:
    from longsift.train import train

    context.check_options(OPTIONS["train"])
    out = context.run_dir / layout.TRAIN / layout.slug(_name(context))
    result = train(
        context.require("data"), out, model=context.option("model"), recipe=context.option("recipe"),
        tiny=context.option("tiny", False), overrides=context.option("overrides"), log=context.console.print,
    )  # fmt: skip
    return {"output": str(getattr(result, "output", out))}


def generate_step(context: StageContext) -> dict[str, str]:
    from longsift.generate import generate

    context.check_options(OPTIONS["generate"])
    name = _name(context)
    out = layout.generation_file(context.run_dir, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    generate(
        context.require("model"), context.option("eval_set", "pairwise"), out, model_name=name,
        limit=context.option("limit"), max_new_tokens=context.option("max_new_tokens", 512),
        batch_size=context.option("batch_size", 16), backend=context.option("backend", "transformers"),
        template=context.option("template"), temperature=context.option("temperature", 0.0),
        seed=context.option("seed", context.recipe.seed), data_dir=context.data_dir, compat=context.option("compat"),
    )  # fmt: skip
    return {"output": str(out)}


def judge_step(context: StageContext) -> dict[str, str]:
    from longsift.generations import iter_generations
    from longsift.judge.pairwise import judge_pairwise

    context.check_options(OPTIONS["judge"])
    a, b = Path(context.require("a")), Path(context.require("b"))
    model_a, model_b = (next(iter_generations(path)).model for path in (a, b))
    out = layout.judge_dir(context.run_dir, model_a, model_b)
    if context.option("compat"):  # its own folder, beside the corrected judging of the same pair
        out = out.with_name(f"{out.name}.{context.option('compat')}")
    judge_pairwise(
        a, b, out, template=context.option("template", "paper"), llm=llm_settings(context),
        resample=context.option("resample", 0), max_tokens=context.option("max_tokens"),
        parse=context.option("parse"), compat=context.option("compat"),
    )  # fmt: skip
    return {"output": str(out)}


def mtbench_step(context: StageContext) -> dict[str, str]:
    from longsift.judge.mtbench_grade import judge_mtbench

    context.check_options(OPTIONS["mtbench"])
    answers = Path(context.require("answers"))
    work = context.state_dir / "judging"
    judge_mtbench(
        answers, work, llm=llm_settings(context), data_dir=context.data_dir,
        reference=context.option("reference", "gpt-4"), max_tokens=context.option("max_tokens"),
    )  # fmt: skip
    scores = orjson.loads((work / "scores.json").read_bytes())
    model = str(scores.get("model") or answers.stem)
    out = context.run_dir / layout.MTBENCH / f"{layout.slug(model)}.json"
    layout.write_json({"model": model, **scores}, out)
    return {"output": str(out)}


def alpacaeval_step(context: StageContext) -> dict[str, str]:
    """Score AlpacaEval annotations (from the `alpaca_eval` CLI or a pairwise judge) into the run."""
    from longsift.judge.alpacaeval import score_annotations

    context.check_options(OPTIONS["alpacaeval"])
    score = score_annotations(context.require("annotations"), context.option("difficulty"))
    model = str(context.option("model", _name(context)))
    out = context.run_dir / layout.ALPACAEVAL / f"{layout.slug(model)}.json"
    layout.write_json({"model": model, **score.to_dict()}, out)
    return {"output": str(out)}


def analyze_step(context: StageContext) -> dict[str, str]:
    from longsift.analyze import analyze

    context.check_options(OPTIONS["analyze"])
    analyze([context.run_dir], unit=context.option("unit"), tokenizer=context.option("tokenizer"),
            tolerance=context.option("tolerance", 0.1), bootstrap=context.option("bootstrap", 1000),
            seed=context.recipe.seed)  # fmt: skip
    return {"output": str(layout.analysis_file(context.run_dir))}


def report_step(context: StageContext) -> dict[str, str]:
    from longsift.report import report

    context.check_options(OPTIONS["report"])
    html = context.run_dir / "report" / "report.html"
    markdown = html.with_suffix(".md")
    report(context.run_dir, html, markdown, title=context.option("title", context.recipe.description or None))
    context.console.print(f"report: {html}")
    return {"output": str(html), "markdown": str(markdown)}
