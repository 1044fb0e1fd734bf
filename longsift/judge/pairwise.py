"""Pairwise LLM-as-judge: two models' generations, every shared prompt judged in both orders.

Each (prompt, order) is one PromptTask call through the LLM engine: cached on disk, so a rerun (or a run that
died) pays only for what is missing. A reply that does not parse is a failure: it gets `resample` new samples if
the user allows, else it is reported as failed. It never becomes a tie and is never dropped.
Outcomes per prompt follow both policies of `longsift.verdicts` (paper and strict).

Two readings of the same replies: `strict` (longsift's parser above) and `paper` (the source script's own
parse_score and result_graph.py's int() comparison, where an unreadable reply is a tie for that order). The
chosen one (`parse`) gives judgments.jsonl and the policy tables of summary.json; both are in its `readings`.
`compat="paper"` also shows LIMA's question as the paper's judge did (see longsift.evalsets.paper_question).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from longsift.errors import ConfigError, DataError, ParseError
from longsift.evalsets import paper_question
from longsift.generations import iter_generations
from longsift.judge.options import PairwiseOptions
from longsift.judge.order import ORDERS, Order, present, reading_to_ab
from longsift.judge.parsers import PairParser
from longsift.judge.templates import READINGS, PairTemplate, get_pair_template
from longsift.llm.settings import LLMSettings
from longsift.outputs import write_bytes
from longsift.records import Generation, Judgment
from longsift.verdicts import POLICIES, PromptOutcome, figure_percentages, prompt_outcomes, tally

GenerationKey = tuple[str, str]  # (eval_set, prompt_id)
COMPAT = ("paper",)  # `compat` values: every documented quirk of the paper's scripts (README, "Reproducing ...")


def generations_by_prompt(path: str | Path) -> dict[GenerationKey, Generation]:
    """A generation file (`longsift.generations` layout) keyed by (eval_set, prompt_id); duplicates are an error."""
    found: dict[GenerationKey, Generation] = {}
    for generation in iter_generations(path):
        key = (generation.eval_set, generation.prompt_id)
        if not generation.outputs:
            raise DataError(str(path), f"prompt {key[0]}/{key[1]} has no output")
        if key in found:
            raise DataError(str(path), f"duplicate prompt {key[0]}/{key[1]}")
        found[key] = generation
    return found


def judge_question(generation: Generation, compat: str | None = None) -> str:
    """What the judge is shown as the question: the first user turn, except for a prompt recorded as an
    instruction plus an input (Self-Instruct), shown as the paper's judge scripts did:
    "{instruction} Input: {input}". With `compat="paper"`, LIMA's turns as the paper formatted its list."""
    instruction, given = generation.metadata.get("instruction"), generation.metadata.get("input")
    if instruction and given:
        return f"{instruction} Input: {given}"
    if compat == "paper" and generation.metadata.get("compat") != "paper":  # else generated as the paper asked
        return paper_question(generation.eval_set, generation.turns)
    return generation.instruction


@dataclass(frozen=True, slots=True)
class Pairing:
    pairs: list[tuple[Generation, Generation]]
    only_a: list[GenerationKey]
    only_b: list[GenerationKey]
    different_prompts: list[GenerationKey]  # judged, but A and B were asked different texts (the judge sees A's)


def pair_generations(a: dict[GenerationKey, Generation], b: dict[GenerationKey, Generation]) -> Pairing:
    """Prompts present in both, in A's order; prompts in one file only are listed, not judged."""
    pairs = [(gen, b[key]) for key, gen in a.items() if key in b]
    different = [(x.eval_set, x.prompt_id) for x, y in pairs if judge_question(x) != judge_question(y)]
    return Pairing(pairs, [k for k in a if k not in b], [k for k in b if k not in a], different)


@dataclass(frozen=True, slots=True)
class JudgeItem:
    """One judge call: one prompt, one order of presentation."""

    a: Generation
    b: Generation
    order: Order
    compat: str | None = None

    @property
    def id(self) -> str:
        return f"{self.a.eval_set}/{self.a.prompt_id}/{self.order}"

    def fields(self) -> dict[str, str]:
        """Placeholder values for every spelling a template may use (see longsift.judge.templates)."""
        first, second = present(self.order, self.a.output, self.b.output)
        question = judge_question(self.a, self.compat)
        return {
            "question": question, "instruction": question,
            "answer_1": first, "answer_a": first, "output_1": first,
            "answer_2": second, "answer_b": second, "output_2": second,
        }  # fmt: skip

    def reference_inputs(self, reply_format: str) -> dict[str, str]:
        """The pair as ChatRequest.inputs: the answers in presented order and the template's parser, so a
        reference judge (longsift.llm.backends.reference) answers in the form the template's parser reads."""
        first, second = present(self.order, self.a.output, self.b.output)
        return {"kind": "pair", "first": first, "second": second, "reply_format": reply_format}


def judge_items(pairs: Iterable[tuple[Generation, Generation]], compat: str | None = None) -> list[JudgeItem]:
    return [JudgeItem(a, b, order, compat) for a, b in pairs for order in ORDERS]


def pair_task(template: PairTemplate, max_tokens: int | None = None, parser: PairParser | None = None) -> Any:
    """The template as a PromptTask of the LLM layer (records: JudgeItems)."""
    from longsift.llm.task import PromptTask
    from longsift.llm.types import Sampling

    sampling = Sampling.from_dict(template.sampling)
    if max_tokens is not None:
        sampling = sampling.but(max_tokens=max_tokens)
    return PromptTask(
        name=template.name, sections=template.format_sections(), parser=parser or template.parse, sampling=sampling,
        fields=JudgeItem.fields, source=template.source, description=template.description,
        inputs=lambda item: item.reference_inputs(template.parser),
    )  # fmt: skip


def to_judgment(item: JudgeItem, result: Any, judge: str, template: str) -> Judgment:
    """A TaskResult of the LLM layer as a Judgment in A/B terms; every completion tried is kept."""
    metadata: dict[str, Any] = {
        "length_a": len(item.a.output), "length_b": len(item.b.output),
        "calls": len(result.calls), "cached": bool(result.calls) and all(call.cached for call in result.calls),
    }  # fmt: skip
    if len(result.raws) > 1:
        metadata["raws"] = list(result.raws)
    if result.ok and getattr(result.value, "note", None):
        metadata["reading_note"] = result.value.note
    common = dict(
        prompt_id=item.a.prompt_id, eval_set=item.a.eval_set, model_a=item.a.model, model_b=item.b.model,
        order=item.order, judge=judge, template=template, raw=result.raw or "", metadata=metadata,
    )  # fmt: skip
    if result.ok:
        verdict, score_a, score_b = reading_to_ab(item.order, result.value)
        return Judgment(**common, verdict=verdict, score_a=score_a, score_b=score_b)  # type: ignore[arg-type]
    reason = {"parse_failed": "unparseable reply", "call_failed": "call failed", "skipped": "not sent"}[result.status]
    return Judgment(**common, verdict=None, status="failed", error=f"{reason}: {result.error}")  # type: ignore[arg-type]


# Replies that came back but are not answers (longsift.llm.outcomes): the paper's script read them all the same.
NON_ANSWERS = ("truncated", "empty", "unfinished")


def reread(result: Any, parser: PairParser, *, as_the_paper: bool = False) -> Any:
    """The same reply under another reading; a call that brought no reply stays as it was. `as_the_paper`: a
    reply that was cut off, empty or unfinished is read too (an empty one is "", a tie for the paper)."""
    if as_the_paper and result.status == "call_failed" and (result.error or "").split(":")[0] in NON_ANSWERS:
        result = replace(result, raw=result.raw or "")
    elif result.raw is None or result.status in ("call_failed", "skipped"):
        return result
    try:
        return replace(result, status="ok", value=parser(result.raw), error=None)
    except ParseError as exc:
        return replace(result, status="parse_failed", value=None, error=str(exc))


def readings_block(by_reading: Mapping[str, Sequence[Judgment]]) -> dict[str, dict[str, Any]]:
    """summary.json's `readings`: per reading the policy tables, as the top level gives them for the chosen one."""
    block = {}
    for reading, judgments in by_reading.items():
        outcomes = prompt_outcomes(judgments)
        block[reading] = {policy: tally(outcomes, policy) for policy in POLICIES}
    return block


def check_reading(parse: str | None, compat: str | None) -> str:
    if compat is not None and compat not in COMPAT:
        raise ConfigError(f"unknown --compat {compat!r}; known: {', '.join(COMPAT)}")
    reading = parse or ("paper" if compat == "paper" else "strict")
    if reading not in READINGS:
        raise ConfigError(f"unknown --parse {reading!r}; known: {', '.join(READINGS)}")
    return reading


def summarize(
    judgments: Sequence[Judgment], pairing: Pairing | None = None, **extra: Any
) -> tuple[dict[str, Any], list[PromptOutcome]]:
    """summary.json: per policy the `verdicts.tally` rows (per eval set and "all"), failures listed."""
    outcomes = prompt_outcomes(judgments)
    summary: dict[str, Any] = {policy: tally(outcomes, policy) for policy in POLICIES}
    summary["length_unit"] = "chars"
    summary["failed"] = [
        {"eval_set": j.eval_set, "prompt_id": j.prompt_id, "order": j.order, "error": j.error}
        for j in judgments
        if j.status == "failed"
    ]
    if pairing is not None:
        summary["unpaired"] = {
            "only_in_a": [f"{s}/{p}" for s, p in pairing.only_a],
            "only_in_b": [f"{s}/{p}" for s, p in pairing.only_b],
        }
        summary["different_prompts"] = [f"{s}/{p}" for s, p in pairing.different_prompts]
    summary.update(extra)
    return summary, outcomes


def check_inputs(pairing: Pairing, resample: int) -> None:
    if resample < 0:
        raise ConfigError(f"--resample must be 0 or more, got {resample}")
    if not pairing.pairs:
        raise ConfigError("the two generation files share no (eval_set, prompt_id): nothing to judge")


def resolve_template(template: str | Path | PairTemplate) -> PairTemplate:
    return template if isinstance(template, PairTemplate) else get_pair_template(template)


@dataclass
class PairwiseResult:
    judgments: list[Judgment]
    outcomes: list[PromptOutcome]
    summary: dict[str, Any]
    output_dir: Path
    dry_run: Any = None  # the LLM layer's DryRunReport when nothing was sent


def judge_pairwise(
    a: str | Path, b: str | Path, output_dir: str | Path, *, llm: LLMSettings | None = None,
    options: PairwiseOptions | None = None, **fields: Any,
) -> PairwiseResult:  # fmt: skip
    """Judge generation file A against B on every shared prompt, both orders; write judgments.jsonl and
    summary.json to `output_dir` (the LLM cache goes there too unless `llm.cache` says otherwise).

    The options are `PairwiseOptions` (longsift/judge/options.py: the `judge pairwise` flags, the recipe step's
    keys): the model as `options`, or its fields as keywords (`template="paper"`, `resample=2`, ...); `template`
    may also be a `PairTemplate`. `parse`: "strict" (default) or "paper" (the paper's parse_score and int()
    comparison; needs a template with a paper reading). `compat="paper"`: every quirk of the paper's judge
    scripts, the paper reading included."""
    from longsift.llm.dryrun import dry_run
    from longsift.llm.engine import Engine
    from longsift.llm.task import run_task

    given = fields.pop("template") if isinstance(fields.get("template"), PairTemplate) else None
    if isinstance(fields.get("template"), Path):
        fields["template"] = str(fields["template"])
    base = options.model_dump(exclude_unset=True) if options is not None else {}
    options = PairwiseOptions.from_keywords({**base, **fields}, "judge_pairwise()")
    resample, max_tokens, parse, compat = options.resample, options.max_tokens, options.parse, options.compat
    settings = llm or LLMSettings()
    chosen = given or resolve_template(options.template)
    reading = check_reading(parse, compat)
    parsers = {name: chosen.parser_for(name) for name in READINGS if name == reading or chosen.paper_parser}
    pairing = pair_generations(generations_by_prompt(a), generations_by_prompt(b))
    check_inputs(pairing, resample)
    items = judge_items(pairing.pairs, compat)
    task = pair_task(chosen, max_tokens, parsers[reading])
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Engine.from_settings(settings, out) as engine:
        if settings.dry_run:
            report = dry_run(task.requests(items), engine, expected_output_tokens=task.expected_output_tokens)
            return PairwiseResult([], [], {}, out, report)
        run = run_task(task, items, engine, resample_on_parse_error=resample, description=f"judge {chosen.name}")
    judge = settings.model or settings.backend  # a reference judge (longest, random) needs no model
    by_reading = {
        name: [to_judgment(item, reread(result, parser, as_the_paper=True) if name == "paper"
                           else reread(result, parser) if name != reading else result, judge, chosen.name)
               for item, result in zip(items, run, strict=True)]
        for name, parser in parsers.items()
    }  # fmt: skip
    judgments = by_reading[reading]
    calls = {"sent": run.sent, "cost_usd": run.cost, "rounds": len(run.rounds), **run.counts()}
    readings = readings_block(by_reading)
    figure = {"paper_figure_pct": figure_percentages(readings["paper"]["paper"])} if "paper" in readings else {}
    summary, outcomes = summarize(
        judgments, pairing, parse=reading, compat=compat, readings=readings, **figure,
        judge=judge, template=chosen.name, template_source=chosen.source,
        model_a=pairing.pairs[0][0].model, model_b=pairing.pairs[0][1].model, resample=resample, calls=calls,
        llm=settings.to_dict(),
        inputs={"a": {"path": str(a), "sha256": file_sha256(a)}, "b": {"path": str(b), "sha256": file_sha256(b)}},
    )  # fmt: skip
    write_outputs(out, judgments, summary)
    return PairwiseResult(judgments, outcomes, summary, out)


def write_outputs(out: Path, judgments: Sequence[Judgment], summary: dict[str, Any]) -> None:
    """Written whole, then renamed: a killed run never leaves half a file (the cache keeps its answers)."""
    lines = b"".join(orjson.dumps(j.to_dict()) + b"\n" for j in judgments)
    for name, data in (("judgments.jsonl", lines), ("summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))):
        write_bytes(out / name, data)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summary_tables(summary: dict[str, Any]) -> list[Table]:
    """One table per policy: per eval set and overall, N judged / failed, win/tie/lose %, winning score, biases."""
    who = f"{summary.get('model_a', 'A')} vs {summary.get('model_b', 'B')}, judge {summary.get('judge', '?')}"
    tables = []
    for policy in POLICIES:
        table = Table(title=f"{policy} policy: {who}")
        for column in ("eval set", "judged", "failed", "win %", "tie %", "lose %", "WS", "flips %", "longer wins %"):
            table.add_column(column, justify="left" if column == "eval set" else "right")
        for key, row in summary[policy].items():
            cells = [row["win_pct"], row["tie_pct"], row["lose_pct"]]
            table.add_row(
                key, str(row["judged"]), str(row["failed"]), *map(_num, cells), _num(row["winning_score"], "{:.3f}"),
                _num(row["flip_pct"]), _num(row["longer_win_pct"]),
            )  # fmt: skip
        tables.append(table)
    return tables


def _num(value: float | None, pattern: str = "{:.1f}") -> str:
    return "-" if value is None else pattern.format(value)
