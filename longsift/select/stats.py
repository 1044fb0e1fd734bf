"""Length statistics of a corpus per unit, and how a selection compares to its source (the paper's Fig. 1b)."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift.lengths import DEFAULT_UNIT, PERCENTILES, check_units, distribution, get_unit, unit_record
from longsift.outputs import atomic_output
from longsift.select.scan import Outcome


@dataclass(frozen=True)
class Distribution:
    """A length distribution as the registry summarises it (`longsift.lengths.distribution`), with typed access."""

    summary: dict[str, Any]

    @classmethod
    def of(cls, lengths: Sequence[int]) -> Distribution:
        """The summary of `lengths`: a list, or a compact array of them (summarised without a float copy)."""
        if isinstance(lengths, array):
            import numpy as np

            return cls(distribution(np.frombuffer(lengths, dtype=np.int32 if lengths.typecode == "i" else np.int64)))
        return cls(distribution(lengths))

    @property
    def count(self) -> int:
        return int(self.summary["n"])

    @property
    def mean(self) -> float:
        return float(self.summary.get("mean", 0.0))

    @property
    def median(self) -> float:
        return float(self.summary.get("median", 0.0))

    @property
    def min(self) -> int:
        return int(self.summary.get("min", 0))

    @property
    def max(self) -> int:
        return int(self.summary.get("max", 0))

    @property
    def percentiles(self) -> dict[str, float]:
        """p10 ... p99 (p50 is the median), 0 for an empty corpus."""
        return {f"p{q}": float(self.summary.get("median" if q == 50 else f"p{q}", 0.0)) for q in PERCENTILES}


@dataclass
class UnitStats:
    unit: dict[str, Any]
    corpus: Distribution
    compare: Distribution | None = None  # the source a selection came from
    # in row order, 4 bytes a record (`array("i")`; "q" once one is over 2**31): `+` joins two, like lists
    lengths: array = field(default_factory=lambda: array("i"), repr=False)
    compare_lengths: array = field(default_factory=lambda: array("i"), repr=False)

    def comparison(self) -> dict[str, float] | None:
        if self.compare is None or not self.compare.count:
            return None
        cutoff = self.corpus.min
        return {
            "mean_ratio": self.corpus.mean / self.compare.mean if self.compare.mean else float("nan"),
            "median_ratio": self.corpus.median / self.compare.median if self.compare.median else float("nan"),
            "source_share_at_or_above_min": _at_or_above(self.compare_lengths, cutoff) / self.compare.count,
        }


def _at_or_above(lengths: Sequence[int], cutoff: int) -> int:
    if isinstance(lengths, array):
        import numpy as np

        values: Any = np.frombuffer(lengths, dtype=np.int32 if lengths.typecode == "i" else np.int64)
        return int(np.count_nonzero(values >= cutoff))
    return sum(n >= cutoff for n in lengths)


@dataclass
class StatsReport:
    source: str
    compare: str | None
    rows_read: int
    rows_kept: int
    rows_quarantined: int
    units: dict[str, UnitStats]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "compare": self.compare, "rows_read": self.rows_read, "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "units": {
                name: {"unit": s.unit, "corpus": s.corpus.summary, "compare": s.compare.summary if s.compare else None,
                       "comparison": s.comparison()}
                for name, s in self.units.items()
            },
        }  # fmt: skip


def lengths_of(
    source: Any, by: str, tokenizer: str | None, workers: int | None, format: str | None, limits: Any = None
) -> Outcome:
    from longsift.select import make_plan, run

    plan = make_plan("longest", None, by=by, tokenizer=tokenizer if by == "tokens" else None, keep_payload=False)
    outcome, _ = run(plan, source, format=format, workers=workers, limits=limits)
    return outcome


def corpus_lengths(
    source: Any, by: str, tokenizer: str | None, workers: int | None, format: str | None, limits: Any = None
) -> tuple[array, Any]:
    """Every kept record's length in `by`, in row order, as a compact array; and the load report. Holds no
    record: memory is 4 bytes a record plus a few blocks."""
    from longsift.select import make_plan, run

    plan = make_plan("longest", None, by=by, tokenizer=tokenizer if by == "tokens" else None, keep_payload=False)
    outcome, _ = run(dataclasses.replace(plan, lengths_only=True), source, format=format, workers=workers,
                     limits=limits)  # fmt: skip
    assert outcome.lengths is not None, "a lengths-only scan collects lengths"
    return outcome.lengths, outcome.report


def stats(
    source: str | Path, by: Sequence[str] = (DEFAULT_UNIT,), *, compare: str | Path | None = None,
    tokenizer: str | None = None, workers: int | None = None, format: str | None = None, limits: Any = None,
) -> StatsReport:  # fmt: skip
    """Length distribution of `source` per unit; with `compare`, the same for the corpus it was selected from."""
    check_units(by, tokenizer)
    units: dict[str, UnitStats] = {}
    report = None
    for unit in by:
        lengths, report = corpus_lengths(source, unit, tokenizer, workers, format, limits)
        stat = UnitStats(unit_record(get_unit(unit, tokenizer)), Distribution.of(lengths), lengths=lengths)
        if compare is not None:
            other, _ = corpus_lengths(compare, unit, tokenizer, workers, None, limits)
            stat.compare, stat.compare_lengths = Distribution.of(other), other
        units[unit] = stat
    assert report is not None, "at least one unit is needed"
    return StatsReport(str(source), str(compare) if compare else None, report.read, report.kept,
                       report.quarantined, units)  # fmt: skip


def histogram_path(out_dir: Path, unit: str) -> Path:
    return out_dir / f"histogram_{unit}.png"


LOG_AXIS_SPREAD = 30  # the largest length over the median beyond which a linear axis hides the body or the tail


def plot_histograms(report: StatsReport, out_dir: Path) -> list[Path]:
    """One PNG per unit (1500x825 px): the corpus' length histogram over its source's when compared, the whole
    range from the shortest to the longest response (a log axis when the tail is long), and the selection's
    cut-off (its shortest response) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, stat in report.units.items():
        fig = histogram_figure(report, name, stat)
        path = histogram_path(out_dir, name)
        with atomic_output(path) as handle:
            fig.savefig(handle, format="png")
        plt.close(fig)
        written.append(path)
    return written


def histogram_figure(report: StatsReport, name: str, stat: UnitStats) -> Any:
    """The figure of one unit (see plot_histograms); the caller saves and closes it."""
    import matplotlib.pyplot as plt
    import numpy as np

    with plt.rc_context({"font.size": 13, "axes.titlesize": 15, "axes.labelsize": 14, "legend.fontsize": 12}):
        fig, ax = plt.subplots(figsize=(10, 5.5), dpi=150)
        bins, log_axis = histogram_bins(stat.lengths + stat.compare_lengths)
        if stat.compare is not None:
            label = f"{Path(report.compare or '').name} (n={stat.compare.count}, mean {stat.compare.mean:.0f})"
            ax.hist(np.clip(stat.compare_lengths, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5,
                    label=label)  # fmt: skip
        label = f"{Path(report.source).name} (n={stat.corpus.count}, mean {stat.corpus.mean:.0f})"
        ax.hist(np.clip(stat.lengths, bins[0], bins[-1]), bins=bins, density=True, alpha=0.6, label=label)
        if stat.compare is not None and stat.lengths:
            cutoff = stat.corpus.min
            ax.axvline(max(cutoff, bins[0]), color="crimson", linestyle="--", linewidth=2,
                       label=f"cut-off {cutoff} {name} (the selection's shortest)")  # fmt: skip
        if log_axis:
            ax.set_xscale("log")
        ax.set_xlim(bins[0], bins[-1])
        ax.set_xlabel(f"response length ({name}{', log scale' if log_axis else ''}; full range)")
        ax.set_ylabel("density")
        ax.set_title(f"Response lengths by {name}")
        ax.legend()
        fig.tight_layout()
    return fig


def histogram_bins(lengths: Sequence[int], count: int = 80) -> tuple[list[float], bool]:
    """Bin edges over every length (none left out) and whether the axis is logarithmic: when the longest is
    LOG_AXIS_SPREAD times the median or more, log-spaced bins from the shortest non-zero length."""
    import numpy as np

    if not lengths:
        return [float(edge) for edge in np.linspace(0, 1, count)], False
    low, high, median = min(lengths), max(lengths), float(np.median(lengths))
    if high >= LOG_AXIS_SPREAD * max(median, 1.0):
        start = max(min((n for n in lengths if n > 0), default=1), 1) * 0.9  # zero lengths go in the first bin
        return [float(edge) for edge in np.geomspace(start, high * 1.05, count)], True
    return [float(edge) for edge in np.linspace(min(low, 0), max(high, 1) * 1.02, count)], False
