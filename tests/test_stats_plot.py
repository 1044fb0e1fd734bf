"""`stats` histograms (issue 13, part 6): the whole range, a log axis when the tail needs it, the selection's
cut-off marked, images large enough to read."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image
import matplotlib.pyplot as plt

from longsift.select.stats import Distribution, StatsReport, UnitStats, histogram_bins, histogram_figure
from tests.conftest import run_cli


def report_of(selection: list[int], source: list[int] | None) -> tuple[StatsReport, UnitStats]:
    stat = UnitStats({"unit": "words"}, Distribution.of(selection), lengths=array("i", selection))
    if source is not None:
        stat.compare, stat.compare_lengths = Distribution.of(source), array("i", source)
    return StatsReport("sel.json", "pool.json" if source else None, len(selection), len(selection), 0,
                       {"words": stat}), stat  # fmt: skip


def test_bins_cover_every_length() -> None:
    short = [3, 5, 8, 9, 12, 40]
    bins, log_axis = histogram_bins(short)
    assert not log_axis and bins[0] <= 0 and bins[-1] >= 40
    tail = [1] * 500 + [2, 3, 4] * 100 + [20_000]  # one answer 10,000 times the median
    bins, log_axis = histogram_bins(tail)
    assert log_axis and bins[0] <= 1 and bins[-1] >= 20_000
    bins, _ = histogram_bins([0, 0, 1, 500])  # zero lengths on a log axis: in the first bin, not dropped
    assert bins[0] > 0


def test_the_cut_off_is_marked_on_a_comparison() -> None:
    pool = list(range(1, 2000))
    report, stat = report_of(pool[-100:], pool)
    fig = histogram_figure(report, "words", stat)
    ax = fig.axes[0]
    marks = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == 1900
    assert "cut-off 1900" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert ax.get_xlim()[1] >= 1999 and ax.get_xscale() == "linear"
    plt.close(fig)
    alone, stat = report_of([1, 2, 3, 5000], None)  # no source: no cut-off; a long tail: log axis
    fig = histogram_figure(alone, "words", stat)
    assert not [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)


def test_stats_writes_readable_images(tmp_path: Path) -> None:
    rows = [{"instruction": f"q{i}", "output": "word " * (1 + i % 40)} for i in range(200)]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(row) + "\n" for row in rows))
    run_cli("select", str(pool), "-o", str(tmp_path / "sel.jsonl"), "--k", "20", "--by", "words")
    run_cli("stats", str(tmp_path / "sel.jsonl"), "--compare", str(pool), "--by", "words", "-o", str(tmp_path / "s"))
    height, width, _ = matplotlib.image.imread(tmp_path / "s" / "histogram_words.png").shape
    assert width >= 1400 and height >= 800
