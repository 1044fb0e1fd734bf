"""`longsift judge pairwise` and `longsift judge mtbench`: LLM judges on the shared LLM flags."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longsift import empty
from longsift.cli.llm_options import llm_options
from longsift.judge.options import MTBenchCommand, MTBenchOptions, PairwiseCommand, PairwiseOptions
from longsift.llm.outcomes import raise_if_failed, record_failure_kind
from longsift.llm.settings import LLMOptions
from longsift.options import command_options

judge_app = typer.Typer(help="LLM-as-judge: pairwise in both orders, MT-Bench single grading.", no_args_is_help=True)


@judge_app.command()
@command_options(PairwiseCommand)
@llm_options
def pairwise(
    a: Path = typer.Argument(..., help="Generation file of model A (one Generation JSON per line)."),
    b: Path = typer.Argument(..., help="Generation file of model B."),
    *,
    options: PairwiseCommand,
    llm: LLMOptions,
) -> None:
    """Judge A against B on every prompt both files hold, in both orders; win/tie/lose by the paper's and the
    strict policy, per eval set. Unparseable replies are counted as failed, never as ties."""
    from longsift.judge.pairwise import judge_pairwise, summary_tables
    from longsift.manifest import MANIFEST, write_manifest
    from longsift.outputs import guard_paths

    output, template = options.output, options.template
    written = [output / "judgments.jsonl", output / "summary.json", output / MANIFEST]
    guard_paths([a, b, template], [*written, llm.cache_path(output)])
    result = judge_pairwise(a, b, output, llm=llm, options=options.narrowed(PairwiseOptions))
    if result.dry_run is not None:
        print(result.dry_run.render())
        return
    resolved = {**options.model_dump(mode="json", exclude={"output"}), "llm": llm.to_dict()}
    write_manifest(output, command="judge pairwise", options=resolved, inputs={"a": a, "b": b, "template": template},
                   outputs={"judgments": written[0], "summary": written[1]}, path=written[2])  # fmt: skip
    console = Console()
    for table in summary_tables(result.summary):
        console.print(table)
    summary = result.summary
    for failure in summary["failed"][:10]:
        console.print(f"[red]failed[/] {failure['eval_set']}/{failure['prompt_id']} ({failure['order']}): "
                      f"{failure['error']}", highlight=False)  # fmt: skip
    unpaired = summary["unpaired"]
    if unpaired["only_in_a"] or unpaired["only_in_b"]:
        console.print(
            f"not judged: {len(unpaired['only_in_a'])} prompts only in A, {len(unpaired['only_in_b'])} only in B"
        )
    total = summary["paper"]["all"]
    print(
        f"{summary['parse']} reading: judged {total['judged']} of {total['n']} prompts ({total['failed']} failed); "
        f"{summary['calls']['sent']} "
        f"calls sent; wrote {output / 'judgments.jsonl'} and {output / 'summary.json'}"
    )
    kinds = [record_failure_kind("failed", j.error) for j in result.judgments if j.status == "failed"]
    raise_if_failed("judge pairwise", len(result.judgments), [k for k in kinds if k], llm.max_failed)  # type: ignore[arg-type]


@judge_app.command()
@command_options(MTBenchCommand)
@llm_options
def mtbench(
    answers: Path = typer.Argument(..., help="FastChat answer JSONL, or a generation file with eval_set mtbench."),
    allow_empty: bool = empty.flag(),
    *,
    options: MTBenchCommand,
    llm: LLMOptions,
) -> None:
    """Grade a model's MT-Bench answers 1-10 per turn with FastChat's single-v1 prompts (reference-guided for
    math, reasoning, coding); scores per turn, overall and per category; failed gradings counted apart."""
    from longsift.judge.mtbench_grade import judge_mtbench, read_model_answers
    from longsift.manifest import MANIFEST, write_manifest
    from longsift.outputs import guard_paths

    o, output = options, options.output
    guard_paths([answers, o.data_dir, o.questions, o.reference_answers, o.judge_prompts],
                [output / "scores.json", output / MANIFEST, llm.cache_path(output)])  # fmt: skip
    empty.check(len(read_model_answers(answers, o.model_name)), "judge mtbench", output,
                f"{answers} holds no MT-Bench answers", "generate them: `longsift generate MODEL mtbench -o FILE`",
                allow_empty)  # fmt: skip
    result = judge_mtbench(answers, output, llm=llm, data_dir=o.data_dir, options=o.narrowed(MTBenchOptions))
    if result.dry_run is not None:
        print(result.dry_run.render())
        return
    resolved = {**o.model_dump(mode="json", exclude={"output"}), "llm": llm.to_dict()}
    roles = {"answers": answers, "data_dir": o.data_dir, "questions": o.questions,
             "reference_answers": o.reference_answers, "judge_prompts": o.judge_prompts}  # fmt: skip
    write_manifest(output, command="judge mtbench", options=resolved, inputs=roles, path=output / MANIFEST,
                   outputs={"scores": output / "scores.json", "judgments": output / "model_judgment"})  # fmt: skip
    s = result.scores
    turns = ", ".join(f"turn {t}: {s[f'turn_{t}']:.3f}" for t in (1, 2) if s.get(f"turn_{t}") is not None)
    overall = "-" if s["overall"] is None else f"{s['overall']:.3f}"
    for category, value in s["categories"].items():
        print(f"  {category:<12} {value['score']:.3f}")
    print(f"{s['model']}: overall {overall} ({turns}); {s['n_judged']} graded, {s['n_failed']} failed; wrote {output}")
    kinds = [record_failure_kind("failed", failure["error"]) for failure in s["failed"]]
    total = s["n_judged"] + s["n_failed"]
    raise_if_failed("judge mtbench", total, [k for k in kinds if k], llm.max_failed)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
