"""The options of the data commands (select, convert, stats), declared once: CLI flags, API keywords and recipe
keys come from these models (see `longsift.options`).

Vocabulary: `--k` is a subset size; `--input-format` names how to read, `--output-format` how to write;
select's length filter is `--min-response-length/--max-response-length` (in the `--by` unit; `--max-length`
means a sequence length in tokens, in `train`, only). Old spellings still work, hidden, with a warning:
`select --min-length/--max-length` keep filtering, `--format` is `--output-format`, `stats --output-dir` is
`-o/--output`.
"""

from __future__ import annotations

from pydantic import field_validator

from longsift.formats.load import DEFAULT_MAX_RECORD_BYTES
from longsift.formats.rows import DEFAULT_MAX_DEPTH, DEFAULT_MAX_GZIP_RATIO, Limits
from longsift.lengths import DEFAULT_UNIT, HELP, UNITS_HELP
from longsift.options import Options, option

PRESETS = {"paper": {"by": "nltk", "output_format": "fastchat"}}  # the paper: NLTK word tokens, FastChat layout


class ReadLimits(Options):
    """Bounds applied while reading any corpus (0 lifts one)."""

    max_record_bytes: int = option(DEFAULT_MAX_RECORD_BYTES, "Quarantine larger records.", ge=0)
    max_depth: int = option(DEFAULT_MAX_DEPTH, "Quarantine records nested deeper (0: no limit).", ge=0)
    max_gzip_ratio: float = option(
        DEFAULT_MAX_GZIP_RATIO, "Refuse a .gz input that expands more than this many times (0: no limit).", ge=0
    )

    def limits(self) -> Limits:
        return Limits(self.max_record_bytes, self.max_depth, self.max_gzip_ratio)


class ConvertOptions(ReadLimits):
    input_format: str | None = option(None, "Force the input format.")
    output_format: str | None = option(
        None, "alpaca, fastchat, messages, parquet (default: from the output's extension).", deprecated=("--format",)
    )


class SelectOptions(ReadLimits):
    """What `select` keeps, and how it reads (the Python API `longsift.select.select` takes these)."""

    k: int | None = option(None, "How many records to keep (default: all that pass filters).", flags=("--k", "-k"),
                           ge=0)  # fmt: skip
    method: str = option("longest", "Selection method: longest, random, llm-score, top-score.")
    by: str | None = option(None, UNITS_HELP + " Default: chars, or the preset's.")
    tokenizer: str | None = option(None, "Tokenizer path or hub id for --by tokens.")
    output_format: str | None = option(
        None, "Output format: fastchat, alpaca, messages, parquet (default: from the output's extension).",
        deprecated=("--format",),
    )  # fmt: skip
    preset: str | None = option(None, "paper: --by nltk --output-format fastchat (explicit flags win).")
    seed: int = option(0, "Seed of --method random and llm-score.")
    threshold: float | None = option(
        None, "--method llm-score: sample among records with metadata.score >= this (default 4.5)."
    )
    min_response_length: int | None = option(
        None, "Drop records whose response is shorter than this (in the --by unit).", deprecated=("--min-length",)
    )
    max_response_length: int | None = option(
        None, "Drop records whose response is longer than this (in the --by unit).", deprecated=("--max-length",)
    )
    dedup: bool = option(False, "Drop exact duplicate conversations (first one wins).", flags=("--dedup",))
    drop_empty_input: bool = option(
        False, "Drop records whose Alpaca input is empty (chat layouts: blank user turns).",
        flags=("--drop-empty-input",),
    )  # fmt: skip
    input_format: str | None = option(None, "Force the input format.")
    workers: int | None = option(None, "Worker processes (default: one per core).", recipe=False)
    quiet: bool = option(False, "No progress bar or quarantine messages.", flags=("--quiet", "-q"), recipe=False)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None) -> str | None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        return preset

    def unit(self) -> str:
        """The length unit: --by, else the preset's, else chars."""
        return self.by or PRESETS.get(self.preset or "", {}).get("by") or DEFAULT_UNIT

    def format_out(self) -> str | None:
        """The output format asked for: --output-format, else the preset's (None: by the output's extension)."""
        return self.output_format or PRESETS.get(self.preset or "", {}).get("output_format")


class StatsOptions(ReadLimits):
    by: list[str] = option([DEFAULT_UNIT], HELP + " Repeat for several.")
    compare: str | None = option(None, "The source a selection came from: compare the two.")
    tokenizer: str | None = option(None, "Tokenizer path or hub id for --by tokens.")
    input_format: str | None = option(None, "Force the input format.")
    workers: int | None = option(None, "Worker processes (default: one per core).")
    as_json: bool = option(False, "Print the statistics as one JSON object.", flags=("--json",))
