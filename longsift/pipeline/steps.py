"""Recipe steps: each turns a stage's options into a call of that stage's public API, in the run layout.

A step validates its options (unknown keys are an error), writes its artifacts where `longsift.layout` says,
and returns its outputs (`output` is the main one, what `${stage}` refers to). LLM steps share one cache per
run, so a stage that died resumes without paying again for the calls it had made.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from longsift import empty, formats, layout
from longsift.analyze.options import AnalyzeOptions
from longsift.errors import ConfigError, LongsiftError
from longsift.formats.load import load
from longsift.generate.options import GenerateOptions
from longsift.llm.settings import LLMOptions
from longsift.manifest import write_manifest
from longsift.options import Options, one_line, option, recipe_fields, renamed_keys
from longsift.outputs import write_bytes
from longsift.pipeline.runner import StageContext
from longsift.registry import Registry
from longsift.report.options import ReportOptions
from longsift.select.options import SelectOptions
from longsift.train.config import TinyModelOptions, TrainRun

OptionsT = TypeVar("OptionsT", bound=Options)

# A recipe's `llm:` block: the recipe fields of LLMOptions (the run decides the cache, progress and dry runs).
LLM_KEYS = set(recipe_fields(LLMOptions))


# The options model of each step (the stage's model plus step-only keys): the one declaration its keys, defaults
# and types come from; recipes are checked against it before anything runs. A step registered without a model
# (a plugin's) checks its own options when it runs.
# Entries may be "module:Class" strings, imported on use: a recipe check stays light.
STEP_OPTIONS: Registry[type[Options]] = Registry("step options")
STEP_OPTIONS.register("refine", "longsift.refine.options:RefineStep")
STEP_OPTIONS.register("score", "longsift.refine.options:ScoreStep")
STEP_OPTIONS.register("judge", "longsift.judge.options:PairwiseStep")
STEP_OPTIONS.register("mtbench", "longsift.judge.options:MTBenchStep")
STEP_OPTIONS.register("alpacaeval", "longsift.judge.options:AlpacaEvalStep")
STEP_OPTIONS.register("compare", "longsift.pipeline.study:CompareStep")
STEP_OPTIONS.register("rank", "longsift.pipeline.study:RankStep")
STEP_OPTIONS.register("alpacaeval-export", "longsift.pipeline.study:ExportStep")


class Named(Options):
    """Step-only key of steps whose outputs are named (default: the stage's name)."""

    name: str | None = option(None, "File name of the stage's outputs (default: the stage name).", cli=False)


class SelectStep(SelectOptions, Named):
    source: str = option(..., "Input file, dataset folder or hub id.", cli=False)
    allow_empty: bool = option(False, "Let the stage select zero records (an error otherwise: the stages after it "
                               "would train or judge on nothing).", cli=False)  # fmt: skip
    output_format: str = option("fastchat", "Output format: fastchat, alpaca, messages, parquet.",
                                deprecated=("--format",))  # fmt: skip


class TinyModelStep(TinyModelOptions):
    format_steps: int = option(
        0, "Training steps teaching the model the refine reply format on `data` (0: random weights).", ge=0
    )


class TrainStep(TrainRun, Named):
    data: str = option(..., "Training data: any format longsift reads.", cli=False)


class GenerateStep(GenerateOptions, Named):
    model: str = option(..., "Model folder or hub id.", cli=False)


STEP_OPTIONS.register("select", SelectStep)
STEP_OPTIONS.register("tiny-model", TinyModelStep)
STEP_OPTIONS.register("train", TrainStep)
STEP_OPTIONS.register("generate", GenerateStep)
STEP_OPTIONS.register("analyze", AnalyzeOptions)
STEP_OPTIONS.register("report", ReportOptions)


def step_model(uses: str) -> type[Options] | None:
    return STEP_OPTIONS.get(uses) if uses in STEP_OPTIONS else None


def step_options(context: StageContext, model: type[OptionsT], **defaults: Any) -> OptionsT:
    """The step's options, validated by its model (deprecated keys renamed with a warning); `defaults` come
    from the recipe (its seed) where the options give none."""
    where = f"stage {context.spec.name!r} ({context.spec.uses})"
    return model.from_recipe(context.options, where, warn=False, **defaults)  # check_stage warned before the run


# Steps whose `name` option names a file or folder of the run: it must be one plain path component.
NAMED = {"select", "refine", "score", "train", "generate"}
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")


def llm_settings(context: StageContext) -> Any:
    """The stage's LLM, at run time (check_stage already warned about its old keys)."""
    block, console = context.option("llm"), context.console
    return _llm_settings(context.spec.name, block, context.run_dir, console.is_terminal, warn=False)


def _llm_settings(stage: str, block: Any, run_dir: Path, progress: bool = False, warn: bool = True) -> Any:
    """The stage's LLMOptions from its `llm:` block; the run's cache is the stage's cache."""
    from longsift.llm import BACKENDS

    if not isinstance(block, dict | None):
        raise ConfigError(f"stage {stage!r}: llm must be a mapping of LLM options, not {type(block).__name__}")
    options = renamed_keys(LLMOptions, dict(block or {}), f"stage {stage!r}: llm", warn)
    unknown = sorted(set(options) - LLM_KEYS)
    if unknown:
        raise ConfigError(f"stage {stage!r}: unknown llm options {unknown}; known: {sorted(LLM_KEYS)}")
    backend = options.get("backend", "openai")
    if backend not in BACKENDS:
        raise ConfigError(f"stage {stage!r}: unknown llm backend {backend!r}; known: {BACKENDS.names()}")
    try:
        from longsift.llm.cache import RUN_CACHE

        return LLMOptions(**options, cache=run_dir / RUN_CACHE, progress=progress)
    except ValidationError as exc:
        raise ConfigError(f"stage {stage!r}: bad llm options: {one_line(exc)}") from None
    except ConfigError as exc:
        raise ConfigError(f"stage {stage!r}: llm: {exc}") from None


def _name(context: StageContext) -> str:
    return output_name(context.spec.name, context.options)


def output_name(stage: str, options: dict[str, Any]) -> str:
    """The `name` a stage's files take: one plain file name, so nothing it writes leaves its folder."""
    name = options.get("name", stage)
    if not isinstance(name, str) or not _PLAIN_NAME.match(name) or len(name) > 200:
        raise ConfigError(
            f"stage {stage!r}: name {name!r} must be a plain file name (letters, digits, '.', '_', '-', '+'; "
            "no '/', no leading '.'), so that its outputs stay inside the run folder"
        )
    return name


# Written by several stages on purpose: select/ keeps one key per selection in its summary; judge
# and mtbench stages name their own files inside these folders after the models they compare.
SHARED_OUTPUTS = {f"{layout.SELECT}/{layout.SUMMARY}", layout.JUDGE, layout.MTBENCH}


def planned_outputs(uses: str, stage: str, options: dict[str, Any], run_dir: Path) -> list[Path]:
    """Where a stage will write, as far as its options tell before it runs (judge and mtbench name their
    files after the models inside their inputs: their folders are given)."""
    name = output_name(stage, options) if uses in NAMED else stage
    select = layout.select_dir(run_dir)
    plans: dict[str, list[Path]] = {
        "select": [_select_output(run_dir, name, options), select / layout.SUMMARY],  # and the output's manifest
        "tiny-model": [run_dir / "models" / stage],
        "refine": [select / f"{name}.jsonl"],
        "score": [run_dir / "score" / f"{name}.jsonl"],
        "train": [run_dir / layout.TRAIN / layout.slug(name)],
        "generate": [layout.generation_file(run_dir, name)],
        "judge": [run_dir / layout.JUDGE],
        "mtbench": [run_dir / layout.MTBENCH],
        "alpacaeval": [run_dir / layout.ALPACAEVAL / f"{layout.slug(str(_alpacaeval_model(stage, options)))}.json"],
        "analyze": [layout.analysis_file(run_dir)],
        "report": [run_dir / "report" / "report.html", run_dir / "report" / "report.md"],
        "compare": [run_dir / "compare" / stage],
        "rank": [run_dir / "study" / "ranking.json"],
        "alpacaeval-export": [run_dir / "alpacaeval_outputs" / f"{stage}.json"],
    }
    return plans.get(uses, [])


def _alpacaeval_model(stage: str, options: dict[str, Any]) -> Any:
    return options.get("model_name", options.get("model", stage))  # `model`: its deprecated spelling


def planned(context: StageContext) -> list[Path]:
    """The paths this stage writes: the ones `planned_outputs` promised before the run started."""
    return planned_outputs(context.spec.uses, context.spec.name, context.options, context.run_dir)


def check_stage(uses: str, stage: str, options: dict[str, Any], run_dir: Path) -> list[str]:
    """Every problem with one stage's options that can be found before anything runs."""
    problems: list[str] = []
    model = step_model(uses)
    if model is not None:
        try:
            model.from_recipe(options, f"stage {stage!r} ({uses})")
        except ConfigError as exc:
            problems.append(str(exc))
    if model is not None and "llm" in model.model_fields:
        try:
            _llm_settings(stage, options.get("llm"), run_dir)
        except LongsiftError as exc:
            problems.append(str(exc))
    if uses in NAMED:
        try:
            output_name(stage, options)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _select_output(run_dir: Path, name: str, options: dict[str, Any]) -> Path:
    fmt = options.get("output_format", options.get("format", SelectStep.model_fields["output_format"].default))
    suffix = "jsonl" if fmt == "messages" else "json"
    return layout.select_dir(run_dir) / f"{name}.{suffix}"


def _merge_json(path: Path, key: str, value: Any) -> None:
    """Several select stages share select/summary.json, one key each."""
    try:
        data = orjson.loads(path.read_bytes()) if path.is_file() else {}
    except orjson.JSONDecodeError:
        data = {}  # torn by hand or by an older non-atomic write: rebuilt from the stages that run
    if not isinstance(data, dict):
        data = {}
    data[key] = value
    write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))


def select_step(context: StageContext) -> dict[str, str]:
    from longsift.select import select

    options = step_options(context, SelectStep, seed=context.recipe.seed)
    out = planned(context)[0]
    chosen = options.narrowed(SelectOptions)
    work = context.state_dir / "shards" if options.uses_ray() else None  # shards committed: a killed run resumes
    selection = select(options.source, options=chosen, quarantine=context.state_dir / "quarantine.jsonl",
                       run_folder=work)  # fmt: skip
    empty.check(len(selection.examples), f"stage {context.spec.name!r} (select)", out,
                *empty.why_none_selected(selection.summary, chosen), options.allow_empty)  # fmt: skip
    formats.write(selection.examples, out, options.output_format)
    summary = selection.summary.to_dict()
    _merge_json(layout.select_dir(context.run_dir) / layout.SUMMARY, _name(context), summary)
    inputs = {"source": options.source, "tokenizer": options.tokenizer}
    write_manifest(out, command="select", options=options.model_dump(mode="json"), summary=summary, inputs=inputs,
                   outputs={"output": out})  # fmt: skip
    context.console.print(f"selected {len(selection.examples)} of {summary.get('rows_read')} rows -> {out}")
    return {"output": str(out)}


def tiny_model_step(context: StageContext) -> dict[str, str]:
    """A tiny Llama with a tokenizer trained on `data`, random or briefly taught the refine reply format (a local
    model for CPU demos)."""
    from itertools import islice

    from longsift.tiny import build_tiny_model, example_texts

    options = step_options(context, TinyModelStep)
    source = options.data or str(context.data_dir / "alpaca_subsets" / "alpaca_public_pool.jsonl.gz")
    out = planned(context)[0]
    examples = list(islice(load(source), options.k))
    build_tiny_model(out, example_texts(examples), vocab_size=options.vocab_size, seed=options.seed,
                     format_examples=examples, format_steps=options.format_steps)  # fmt: skip
    return {"output": str(out)}


def refine_step(context: StageContext) -> dict[str, str]:
    from longsift.refine import refine
    from longsift.refine.options import RefineOptions, RefineStep

    return _llm_pass_step(context, refine, RefineStep, RefineOptions)


def score_step(context: StageContext) -> dict[str, str]:
    from longsift.refine import score
    from longsift.refine.options import ScoreOptions, ScoreStep

    return _llm_pass_step(context, score, ScoreStep, ScoreOptions)


def _llm_pass_step(context: StageContext, run: Any, step_type: type[Any], stage_model: type[Options]) -> dict[str, str]:
    """refine and score: one LLM pass over the input records, written with their metadata."""
    step = step_options(context, step_type)
    records = list(load(step.input))
    out = planned(context)[0]
    result = run(records, llm_settings(context), step.narrowed(stage_model))
    formats.write(result.records, out, "messages")
    context.console.print(result.report.summary())
    return {"output": str(out)}


def train_step(context: StageContext) -> dict[str, str]:
    from longsift.train import train

    options = step_options(context, TrainStep)
    out = planned(context)[0]
    result = train(
        options.data, out, model=options.model, recipe=options.recipe, tiny=options.tiny,
        overrides=options.overrides, log=context.console.print,
    )  # fmt: skip
    return {"output": str(getattr(result, "output", out))}


def generate_step(context: StageContext) -> dict[str, str]:
    from longsift.generate import generate

    options = step_options(context, GenerateStep, seed=context.recipe.seed)
    out = planned(context)[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    generate(
        options.model, options.eval_set, out, model_name=_name(context), limit=options.k,
        max_new_tokens=options.max_new_tokens, batch_size=options.prompts_per_batch,
        batch_tokens=options.batch_tokens, backend=options.backend, template=options.template,
        temperature=options.temperature, top_p=options.top_p, seed=options.seed, dtype=options.dtype,
        trust_remote_code=options.trust_remote_code, data_dir=context.data_dir, compat=options.compat,
    )  # fmt: skip
    return {"output": str(out)}


def judge_step(context: StageContext) -> dict[str, str]:
    from longsift.generations import iter_generations
    from longsift.judge.options import PairwiseOptions, PairwiseStep
    from longsift.judge.pairwise import judge_pairwise
    from longsift.llm.backends.reference import REFERENCE_JUDGES

    step = step_options(context, PairwiseStep)
    a, b = Path(step.a), Path(step.b)
    model_a, model_b = (next(iter_generations(path)).model for path in (a, b))
    out = layout.judge_dir(context.run_dir, model_a, model_b)
    if step.compat:  # its own folder, beside the corrected judging of the same pair
        out = out.with_name(f"{out.name}.{step.compat}")
    backend = (step.llm or {}).get("backend")
    if backend in REFERENCE_JUDGES:  # its own folder, beside an LLM's judging of the same pair
        out = out.with_name(f"{out.name}.{backend}")
    judge_pairwise(a, b, out, llm=llm_settings(context), options=step.narrowed(PairwiseOptions))
    return {"output": str(out)}


def mtbench_step(context: StageContext) -> dict[str, str]:
    from longsift.judge.mtbench_grade import judge_mtbench
    from longsift.judge.options import MTBenchOptions, MTBenchStep

    step = step_options(context, MTBenchStep)
    answers = Path(step.answers)
    work = context.state_dir / "judging"
    judge_mtbench(answers, work, llm=llm_settings(context), data_dir=context.data_dir,
                  options=step.narrowed(MTBenchOptions))  # fmt: skip
    scores = orjson.loads((work / "scores.json").read_bytes())
    model = str(scores.get("model") or answers.stem)
    out = context.run_dir / layout.MTBENCH / f"{layout.slug(model)}.json"
    layout.write_json({"model": model, **scores}, out)
    return {"output": str(out)}


def alpacaeval_step(context: StageContext) -> dict[str, str]:
    """Score AlpacaEval annotations (from the `alpaca_eval` CLI or a pairwise judge) into the run."""
    from longsift.judge.alpacaeval import score_annotations
    from longsift.judge.options import AlpacaEvalStep

    step = step_options(context, AlpacaEvalStep)
    score = score_annotations(step.annotations, step.difficulty, model_outputs=step.model_outputs)
    model = str(step.model_name or _name(context))
    out = planned(context)[0]
    layout.write_json({**score.to_dict(), "model": model}, out)  # the recipe's name, not the annotator's
    return {"output": str(out)}


def analyze_step(context: StageContext) -> dict[str, str]:
    from longsift.analyze import analyze

    options = step_options(context, AnalyzeOptions, seed=context.recipe.seed)
    analyze([context.run_dir], by=options.by, tokenizer=options.tokenizer, tolerance=options.tolerance,
            bootstrap=options.bootstrap, seed=options.seed)  # fmt: skip
    return {"output": str(layout.analysis_file(context.run_dir))}


def report_step(context: StageContext) -> dict[str, str]:
    from longsift.report import report

    options = step_options(context, ReportOptions)
    html, markdown = planned(context)
    report(context.run_dir, html, markdown, title=options.title or context.recipe.description or None)
    context.console.print(f"report: {html}")
    return {"output": str(html), "markdown": str(markdown)}
