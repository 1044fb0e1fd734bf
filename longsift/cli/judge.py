"""`longsift judge pairwise` and `longsift judge mtbench`: LLM judges on the shared LLM flags."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longsift.cli.llm_options import llm_options
from longsift.llm.outcomes import raise_if_failed, record_failure_kind
from longsift.llm.settings import LLMSettings

judge_app = typer.Typer(help="LLM-as-judge: pairwise in both orders, MT-Bench single grading.", no_args_is_help=True)
MODEL_FLAGS = ("--model", "--judge-model")
RESAMPLE = typer.Option(
    0, "--resample", help="New samples (another seed, some temperature) for a reply that does not parse; 0: none."
)
MAX_TOKENS = typer.Option(None, "--max-tokens", help="Override the template's max tokens per judgment.")
PARSE = typer.Option(
    None, "--parse", help="strict (default: longsift's reader, unreadable replies fail) or paper (the paper's "
    "parse_score + int() comparison: unreadable replies are ties, as its result_graph.py counted).",
)  # fmt: skip
COMPAT = typer.Option(
    None, "--compat", help="paper: every quirk of the paper's judge scripts (paper reading, LIMA question as a "
    "Python list); see the README, 'Reproducing the paper exactly'.",
)  # fmt: skip


@judge_app.command()
@llm_options(model_flags=MODEL_FLAGS)
def pairwise(
    a: Path = typer.Argument(..., help="Generation file of model A (one Generation JSON per line)."),
    b: Path = typer.Argument(..., help="Generation file of model B."),
    output: Path = typer.Option(..., "-o", "--output", help="Output directory: judgments.jsonl, summary.json."),
    template: str = typer.Option(
        "paper", "--template", help="paper, paper-palm2, fastchat-pair, alpacaeval, or a .toml file."
    ),
    resample: int = RESAMPLE,
    max_tokens: int | None = MAX_TOKENS,
    parse: str | None = PARSE,
    compat: str | None = COMPAT,
    *,
    llm: LLMSettings,
) -> None:
    """Judge A against B on every prompt both files hold, in both orders; win/tie/lose by the paper's and the
    strict policy, per eval set. Unparseable replies are counted as failed, never as ties."""
    from longsift.judge.pairwise import judge_pairwise, summary_tables
    from longsift.manifest import MANIFEST, write_manifest
    from longsift.outputs import guard_paths

    written = [output / "judgments.jsonl", output / "summary.json", output / MANIFEST]
    guard_paths([a, b, template], [*written, llm.cache_path(output)])
    result = judge_pairwise(a, b, output, template=template, llm=llm, resample=resample, max_tokens=max_tokens,
                            parse=parse, compat=compat)  # fmt: skip
    if result.dry_run is not None:
        print(result.dry_run.render())
        return
    options = {"template": template, "resample": resample, "max_tokens": max_tokens, "parse": parse, "compat": compat,
               "llm": llm.to_dict()}  # fmt: skip
    write_manifest(output, command="judge pairwise", options=options, inputs={"a": a, "b": b, "template": template},
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
@llm_options(model_flags=MODEL_FLAGS)
def mtbench(
    answers: Path = typer.Argument(..., help="FastChat answer JSONL, or a generation file with eval_set mtbench."),
    output: Path = typer.Option(..., "-o", "--output", help="Output directory: model_judgment/, scores.json."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Holds mt_bench/ (default $LONGSIFT_DATA)."),
    questions: Path | None = typer.Option(None, "--questions", help="MT-Bench question.jsonl."),
    reference_answers: Path | None = typer.Option(None, "--reference-answers", help="FastChat reference answers."),
    judge_prompts: Path | None = typer.Option(None, "--judge-prompts", help="FastChat judge_prompts.jsonl."),
    reference: str = typer.Option("gpt-4", "--reference", help="gpt-4 (FastChat's) or inline (question file's)."),
    model_name: str | None = typer.Option(None, "--model-name", help="Name of the graded model (default: the file's)."),
    resample: int = RESAMPLE,
    max_tokens: int | None = MAX_TOKENS,
    *,
    llm: LLMSettings,
) -> None:
    """Grade a model's MT-Bench answers 1-10 per turn with FastChat's single-v1 prompts (reference-guided for
    math, reasoning, coding); scores per turn, overall and per category; failed gradings counted apart."""
    from longsift.errors import ConfigError
    from longsift.judge.mtbench_grade import judge_mtbench
    from longsift.manifest import MANIFEST, write_manifest

    if reference not in ("gpt-4", "inline"):
        raise ConfigError(f"--reference must be gpt-4 or inline, got {reference!r}")
    from longsift.outputs import guard_paths

    inputs = [answers, data_dir, questions, reference_answers, judge_prompts]
    guard_paths(inputs, [output / "scores.json", output / MANIFEST, llm.cache_path(output)])
    result = judge_mtbench(
        answers, output, llm=llm, data_dir=data_dir, questions=questions, reference_answers=reference_answers,
        judge_prompts=judge_prompts, reference=reference, resample=resample, max_tokens=max_tokens,  # type: ignore[arg-type]
        model=model_name,
    )  # fmt: skip
    if result.dry_run is not None:
        print(result.dry_run.render())
        return
    options = {"reference": reference, "model_name": model_name, "resample": resample, "max_tokens": max_tokens,
               "llm": llm.to_dict()}  # fmt: skip
    roles = {"answers": answers, "data_dir": data_dir, "questions": questions, "reference_answers": reference_answers,
             "judge_prompts": judge_prompts}  # fmt: skip
    write_manifest(output, command="judge mtbench", options=options, inputs=roles, path=output / MANIFEST,
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
