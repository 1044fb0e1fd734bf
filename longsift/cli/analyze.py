"""`longsift analyze RUN_DIR|JUDGMENTS...`: length bias, position bias, judge agreement, selection profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from longsift import empty
from longsift.analyze.options import AnalyzeOptions
from longsift.options import command_options

console = Console(stderr=True, soft_wrap=True)


@command_options(AnalyzeOptions)
def analyze(
    paths: list[Path] = typer.Argument(
        None, help="A run directory, or judgments.jsonl files (or folders holding one)."
    ),
    allow_empty: bool = empty.flag(),
    *,
    options: AnalyzeOptions,
) -> None:
    """Is the win just the judge liking long answers? Length and position bias, agreement, selection profile."""
    import orjson

    from longsift import layout
    from longsift.analyze import analyze as run

    paths, output = paths or [], options.output
    candidates = [output] if output is not None else [layout.analysis_file(p) for p in paths if p.is_dir()]
    fresh = [p for p in candidates if not p.exists()]
    result = run(paths, **options.model_dump())
    subsets = (result.get("selection") or {}).get("subsets") or {}
    found = len(result["comparisons"]) + len(result["position_bias"]) + len(subsets)
    try:
        empty.check(found, "analyze", output, f"no judgments and no selection in {', '.join(map(str, paths))}",
                    "give a run folder with judge/ or select/ outputs, or judgments files", allow_empty)  # fmt: skip
    except empty.EmptyOutputError:
        for path in fresh:  # the analysis writes its file itself: one this run created goes again
            path.unlink(missing_ok=True)
        raise
    _print_summary(result)
    run_dir = result["inputs"]["run_dir"]
    written = output or (layout.analysis_file(Path(run_dir)) if run_dir else None)
    if written is None:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
    else:
        from longsift.manifest import write_manifest

        read = {key: result["inputs"][key] for key in ("judgments", "generations", "selection", "source")}
        write_manifest(written, command="analyze", options=options.model_dump(mode="json"),
                       inputs={**read, "tokenizer": options.tokenizer}, outputs={"output": written})  # fmt: skip
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
