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

from longsift.exec import ModelExecOptions, ShardedOptions
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


class ConvertOptions(ReadLimits, ShardedOptions):
    input_format: str | None = option(None, "Force the input format.")
    output_format: str | None = option(
        None,
        "alpaca, fastchat, messages, parquet, parquet-shards (a folder of Parquet files) (default: from the "
        "output's extension).",
        deprecated=("--format",),
    )
    workers: int | None = option(None, "Worker processes (default: one per core).", ge=1, recipe=False)


class SelectOptions(ReadLimits, ShardedOptions, ModelExecOptions):
    """What `select` keeps, and how it reads (the Python API `longsift.select.select` takes these)."""

    k: int | None = option(None, "How many records to keep (default: all that pass filters).", flags=("--k", "-k"),
                           ge=0)  # fmt: skip
    method: str = option(
        "longest",
        "Selection method: longest, random, llm-score, top-score, ifd, superfilter, kcenter, diverse, "
        "dedup-minhash, dedup-semantic.",
    )
    by: str | None = option(None, UNITS_HELP + " Default: chars, or the preset's.")
    tokenizer: str | None = option(None, "Tokenizer path or hub id for --by tokens.")
    output_format: str | None = option(
        None, "Output format: fastchat, alpaca, messages, parquet, parquet-shards (a folder of Parquet files) "
        "(default: from the output's extension).",
        deprecated=("--format",),
    )  # fmt: skip
    preset: str | None = option(None, "paper: --by nltk --output-format fastchat (explicit flags win).")
    seed: int = option(0, "Seed of --method random, llm-score and kcenter (its first center).")
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
    where: str | None = option(
        None,
        "Keep only records for which this holds before selecting, e.g. 'llm_score >= 4.5 and length > 50' "
        "(fields: llm_score/score, ifd, length, any metadata field; and, or, not, ==, !=, <, <=, >, >=).",
    )
    chain: str | None = option(
        None,
        "Filters, then the method, in order: 'dedup-minhash -> llm_score >= 4 -> longest' (each filter a "
        "dedup method or a --where expression; the last step is the method).",
    )
    model: str | None = option(
        None,
        "ifd, superfilter (and diverse by ifd): the scoring causal LM, a path or hub id (superfilter's "
        "default: openai-community/gpt2).",
    )
    ifd_max_length: int = option(512, "ifd: tokens of each scored text, as Cherry LLM's --max_length.", ge=8)
    ifd_prompt: str = option("alpaca", "ifd: the instruction's template, alpaca or wiz (Cherry LLM's --prompt).")
    keep_ifd_above_one: bool = option(False, "ifd: keep records with IFD > 1 (dropped by default, as the paper).")
    encoder: str | None = option(
        None,
        "kcenter, diverse, dedup-semantic: the embedding model, a sentence-transformers or Hugging Face "
        "encoder path or hub id (default sentence-transformers/all-MiniLM-L6-v2).",
    )
    cache_dir: str | None = option(
        None, "Embedding cache folder (default: $LONGSIFT_CACHE/embeddings, else ~/.cache/longsift/embeddings)."
    )
    device: str | None = option(None, "Device of the scoring or embedding model (default: cuda when available).")
    trust_remote_code: bool = option(False, "Let the scoring or embedding model run its repository's code.")
    batch_size: int | None = option(None, "Records per forward pass of the model (ifd: 8, embeddings: 32).", ge=1)
    score_field: str = option(
        "length", "diverse: walk records by this score, best first: length, llm-score, ifd or a metadata field."
    )
    min_distance: float = option(
        0.1, "diverse: keep a record only if its cosine distance to every kept one is above this (DEITA: 0.1).",
        ge=0, le=2,
    )  # fmt: skip
    minhash_threshold: float = option(0.6, "dedup-minhash: Jaccard similarity of shingles that makes a duplicate.",
                                      gt=0, le=1)  # fmt: skip
    minhash_permutations: int = option(128, "dedup-minhash: MinHash permutations.", ge=16)
    shingle_words: int = option(2, "dedup-minhash: words per shingle.", ge=1)
    semantic_threshold: float = option(
        0.9, "dedup-semantic: embedding cosine similarity at or above which a later record is a duplicate.", gt=0,
        le=1,
    )  # fmt: skip
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


class StatsOptions(ReadLimits, ShardedOptions):
    by: list[str] = option([DEFAULT_UNIT], HELP + " Repeat for several.")
    compare: str | None = option(None, "The source a selection came from: compare the two.")
    tokenizer: str | None = option(None, "Tokenizer path or hub id for --by tokens.")
    input_format: str | None = option(None, "Force the input format.")
    workers: int | None = option(None, "Worker processes (default: one per core).")
    as_json: bool = option(False, "Print the statistics as one JSON object.", flags=("--json",))
