"""`longsift analyze RUN_DIR|JUDGMENTS...`: length bias, position bias, judge agreement, selection profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)


def analyze(
    paths: list[Path] = typer.Argument(
        None, help="A run directory, or judgments.jsonl files (or folders holding one)."
    ),
    generations: list[Path] = typer.Option([], "--generations", "-g", help="Generation JSONL files (repeatable)."),
    selection: list[Path] = typer.Option([], "--selection", help="A selected subset to profile (repeatable)."),
    source: Path | None = typer.Option(None, "--source", help="The corpus the subsets were selected from."),
    by: str | None = typer.Option(
        None,
        "--by",
        help="Length unit: chars, words, nltk (the paper's selection unit) or tokens (with --tokenizer). "
        "Default: the unit the run's selection was made in, else chars.",
    ),  # fmt: skip
    unit: str | None = typer.Option(None, "--unit", hidden=True, help="Deprecated name of --by."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer path, tokenizer.json or hub id."),
    tolerance: float = typer.Option(0.10, help="Length-matched: |len_a - len_b| / max <= tolerance."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for confidence intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="analysis.json path (default: RUN_DIR/analyze/analysis.json; bare files print JSON to stdout).",
    ),  # fmt: skip
) -> None:
    """Is the win just the judge liking long answers? Length and position bias, agreement, selection profile."""
    import orjson

    from longsift import layout
    from longsift.analyze import analyze as run

    paths = paths or []
    if unit is not None:
        console.print("warning: --unit is deprecated, use --by (the option `select` takes)")
        by = by or unit
    result = run(
        paths, generations=generations, selection=selection, source=source, by=by, tokenizer=tokenizer,
        tolerance=tolerance, bootstrap=bootstrap, seed=seed, output=output,
    )  # fmt: skip
    _print_summary(result)
    run_dir = result["inputs"]["run_dir"]
    written = output or (layout.analysis_file(Path(run_dir)) if run_dir else None)
    if written is None:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
    else:
        from longsift.manifest import write_manifest

        read = {key: result["inputs"][key] for key in ("judgments", "generations", "selection", "source")}
        options = {"by": by, "tokenizer": tokenizer, "tolerance": tolerance, "bootstrap": bootstrap, "seed": seed}
        write_manifest(written, command="analyze", options=options, inputs={**read, "tokenizer": tokenizer},
                       outputs={"output": written})  # fmt: skip
        console.print(f"wrote {written}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _print_summary(result: dict[str, Any]) -> None:
    unit = result["unit"]["description"]
    if result["comparisons"] and not result["inputs"]["generations"]:
        console.print("[yellow]no generations given[/]: length analyses need them (--generations A.jsonl B.jsonl)")
    for comparison in result["comparisons"]:
        table = Table(title=f"{comparison['model_a']} vs {comparison['model_b']} ({comparison['judge']}); "
                            f"lengths in {unit}")  # fmt: skip
        for column in ("policy", "win rate", "95% CI", "length-matched", "longer answer wins", "A longer"):
            table.add_column(column)
        for policy, bias in comparison["policies"].items():
            overall, matched = bias["overall"], bias["length_matched"]
            ci = "-" if overall["ci_low"] is None else f"{overall['ci_low']:.1f}-{overall['ci_high']:.1f}"
            table.add_row(
                policy, _pct(overall["win_rate"]), ci, f"{_pct(matched['win_rate'])} (n={matched['n']})",
                _pct(bias["longer_answer_wins"]["longer_share"]), _pct(bias["a_longer_share"]),
            )  # fmt: skip
        console.print(table)
    for row in result["position_bias"]:
        console.print(f"{row['judge']}: position flips {_pct(row['flip_rate'])} of {row['judged']} prompts; "
                      f"first position wins {_pct(row['first_position_share'])}")  # fmt: skip
    for subset, row in ((result.get("selection") or {}).get("subsets") or {}).items():
        mean = row["response"].get("mean")
        console.print(f"selection {subset}: n={row['n']}, mean response {mean:.1f} {unit}" if mean else subset)


def register(app: typer.Typer) -> None:
    app.command()(analyze)
