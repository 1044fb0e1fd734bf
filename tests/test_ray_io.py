"""--executor ray, inputs and outputs: records with their own ids (JSONL and Parquet shards) are the local
executor's on the shards' concatenation (ids duplicated across shards quarantined where local quarantines them,
own ids kept even when they look like row numbers); the shards' progress; `--dry-run`; Parquet-shard outputs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import ray

from longsift import formats
from longsift.select import select

pytestmark = pytest.mark.ray
from ray_cluster import ENV, local_cluster  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    yield from local_cluster()


def records_with_ids() -> list[dict]:
    """Messages records with their own ids: some look like row numbers ("3" at pool row 23), one id is repeated
    within a shard and three across shards (one of those a tie in length with its first occurrence)."""
    out = []
    for i in range(60):
        text = "word " * (5 + (i * 37) % 50)
        out.append({"id": f"r{i}", "messages": [{"role": "user", "content": f"q{i}"},
                                                {"role": "assistant", "content": text + str(i)}]})  # fmt: skip
    out[23]["id"], out[41]["id"] = "3", "7"  # own ids like row numbers, in later shards
    out[12]["id"] = "r11"  # a duplicate within the first shard
    for later, first in ((25, 2), (44, 30), (59, 5)):  # duplicates in later shards of ids of earlier ones
        out[later]["id"] = out[first]["id"]
    out[44]["messages"][1]["content"] = "word " * 60  # among the longest: the shard must be scanned for more
    return out


def write_jsonl(records: list[dict], path: Path) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


@pytest.fixture(params=["jsonl", "parquet"])
def id_pool(request, tmp_path: Path) -> tuple[Path, Path]:
    records = records_with_ids()
    parts = tmp_path / "shards"
    parts.mkdir()
    cuts = [(0, 20), (20, 35), (35, 60)]
    if request.param == "jsonl":
        write_jsonl(records, tmp_path / "whole.jsonl")
        for i, (a, b) in enumerate(cuts):
            write_jsonl(records[a:b], parts / f"part-{i}.jsonl")
        return tmp_path / "whole.jsonl", parts
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records), tmp_path / "whole.parquet")
    for i, (a, b) in enumerate(cuts):
        pq.write_table(pa.Table.from_pylist(records[a:b]), parts / f"part-{i}.parquet")
    return tmp_path / "whole.parquet", parts


def without_source(path: Path) -> list:
    """A written selection, less the file each record came from (its shard on Ray, the whole file locally)."""
    data = path.read_bytes()
    rows = [orjson.loads(line) for line in data.splitlines()] if path.suffix != ".json" else orjson.loads(data)
    return [{k: v for k, v in row.items() if k != "source"} for row in (rows if isinstance(rows, list) else [rows])]


def quarantined(path: Path) -> list[tuple]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
    return [(Path(r["source"]).name, r["row"], r["line"], r["reason"], orjson.dumps(r.get("raw"))) for r in rows]


@pytest.mark.parametrize("k", [5, 8, None])
def test_own_ids_across_shards_are_the_local_executors(local_ray, id_pool, tmp_path, k):
    whole, parts = id_pool
    local = select(whole, k=k, by="words", quarantine=tmp_path / "l.q.jsonl")
    on_ray = select(parts, k=k, by="words", executor="ray", workers=2, quarantine=tmp_path / "r.q.jsonl")
    assert [e.id for e in on_ray.examples] == [e.id for e in local.examples]
    for fmt, suffix in (("messages", ".jsonl"), ("fastchat", ".json")):
        formats.write(local.examples, tmp_path / f"l{suffix}", fmt)
        formats.write(on_ray.examples, tmp_path / f"r{suffix}", fmt)
        assert without_source(tmp_path / f"r{suffix}") == without_source(tmp_path / f"l{suffix}")
    a, b = on_ray.summary, local.summary
    assert (a.rows_read, a.rows_kept, a.rows_quarantined) == (b.rows_read, b.rows_kept, b.rows_quarantined) == (
        60, 56, 4)  # fmt: skip
    # the same four records, for the same reason, named by their shard and their row (and line) in it
    cuts = [0, 20, 35]
    expected = []
    for _, row, line, reason, raw in quarantined(tmp_path / "l.q.jsonl"):
        shard = max(i for i, start in enumerate(cuts) if row >= start)
        expected.append((f"part-{shard}{whole.suffix}", row - cuts[shard],
                         None if line is None else line - cuts[shard], reason, raw))  # fmt: skip
    assert quarantined(tmp_path / "r.q.jsonl") == expected
    assert [reason for *_, reason, _ in expected] == ["duplicate id 'r11'"] + [
        f"duplicate id {rid!r}" for rid in ("r2", "r30", "r5")]  # fmt: skip
    if k is None:
        assert {"3", "7"} <= {e.id for e in on_ray.examples}


def test_a_local_url_protocol_is_read_through_fsspec_on_the_workers(local_ray, tmp_path):
    """`local://` is fsspec's local file system under a URL: the workers read it as they read s3:// or gs://
    (a temporary local copy per shard), with no network."""
    records = records_with_ids()
    write_jsonl(records, tmp_path / "whole.jsonl")
    (tmp_path / "pool").mkdir()
    for i in range(3):
        write_jsonl(records[i * 20 : (i + 1) * 20], tmp_path / "pool" / f"part-{i}.jsonl")
    local = select(tmp_path / "whole.jsonl", k=9, by="chars")
    on_ray = select(f"local://{tmp_path}/pool/*.jsonl", k=9, by="chars", executor="ray", workers=2, quiet=True)
    assert [e.id for e in on_ray.examples] == [e.id for e in local.examples]
    assert [Path(e.source).name for e in on_ray.examples][:1] == ["part-0.jsonl"]
    assert on_ray.summary.rows_read == 60


def test_cli_dry_run_progress_and_parquet_shards_on_ray(local_ray, id_pool, tmp_path, cli):
    whole, parts = id_pool
    ray_args = ("--executor", "ray")
    # select on JSON lines starts its own local cluster (the default, no address); every other command joins the
    # module's running one through RAY_ADDRESS, as a user's would: a local start is ~15 s each (28 s when loaded).
    joined = {**ENV, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    own = ENV if whole.suffix == ".jsonl" else joined
    before = sorted(tmp_path.iterdir())
    for command, out, extra, env in (("select", "s.json", ("--k", "6"), own), ("stats", "st", (), joined),
                                     ("convert", "c.jsonl", (), joined)):  # fmt: skip
        dry = cli(command, str(parts), "-o", str(tmp_path / out), *extra, *ray_args, "--dry-run", env=env)
        assert f"{command}: dry run on ray" in dry.stderr, dry.stderr
        assert "shards:         3 to run" in dry.stderr and "rows:           60\n" in dry.stderr
        assert "calls:          0" in dry.stderr and "estimated cost: $0.0000" in dry.stderr
        assert sorted(tmp_path.iterdir()) == before  # nothing written
    cli("select", str(whole), "-o", str(tmp_path / "local.jsonl"), "--k", "6", "--by", "words")
    done = cli("select", str(parts), "-o", str(tmp_path / "out"), "--k", "6", "--by", "words",
               "--output-format", "parquet-shards", *ray_args, env=joined)  # fmt: skip
    assert "select: shard 3/3 done" in done.stderr or "3/3 shards, 60 rows read" in done.stderr, done.stderr
    assert "3/3 shards, 60 rows read" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-00000.parquet"]
    assert (tmp_path / "out.manifest.json").is_file() and (tmp_path / "out.quarantine.jsonl").is_file()
    cli("convert", str(tmp_path / "out" / "part-00000.parquet"), "-o", str(tmp_path / "back.jsonl"))
    assert without_source(tmp_path / "back.jsonl") == without_source(tmp_path / "local.jsonl")
    # the README's `convert ... --output-format parquet-shards --executor ray`: the local conversion, as shards
    cli("convert", str(whole), "-o", str(tmp_path / "all.jsonl"))
    cli("convert", str(parts), "-o", str(tmp_path / "conv"), "--output-format", "parquet-shards", *ray_args, env=joined)
    cli("convert", str(tmp_path / "conv" / "part-00000.parquet"), "-o", str(tmp_path / "conv.jsonl"))
    assert without_source(tmp_path / "conv.jsonl") == without_source(tmp_path / "all.jsonl")
    assert len(without_source(tmp_path / "all.jsonl")) == 56


def test_dry_run_on_the_local_executor_is_one_line(tmp_path, cli):
    write_jsonl(records_with_ids()[:3], tmp_path / "a.jsonl")
    result = cli("select", str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "o.json"), "--dry-run", check=False)
    assert result.returncode == 2 and "error: --dry-run applies to --executor ray" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.json").exists()


def test_an_output_the_input_glob_would_read_back_is_refused_before_any_cluster(tmp_path, cli):
    """`select 'data/*.jsonl' -o data/longest.jsonl` would read its own output (and side files) on a rerun."""
    write_jsonl(records_with_ids()[:3], tmp_path / "a.jsonl")
    for command, pattern, output in (("select", "*.jsonl", "longest.jsonl"), ("convert", "*.jsonl", "all.jsonl"),
                                     ("stats", "*/*.json", "st")):  # st/stats.json  # fmt: skip
        result = cli(command, str(tmp_path / pattern), "-o", str(tmp_path / output), "--executor", "ray",
                     check=False, env=ENV)  # fmt: skip
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "is among the input shards" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


@pytest.mark.parametrize("id_pool", ["jsonl"], indirect=True)  # the readers are the CLI's, tested above
def test_a_recipe_select_stage_on_ray_is_the_local_stage_and_commits_its_shards(local_ray, id_pool, tmp_path, cli):
    """`executor: ray` in a recipe's select stage (joining a running cluster): the local stage's selection, with
    each shard committed in the stage's state folder, so a killed run resumes."""
    whole, parts = id_pool
    joined = {**ENV, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    written_by = {}
    for name, source, extra in (("local", whole, ""), ("ray", parts, ", executor: ray")):
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(f"name: {name}\nrun_dir: {tmp_path / name}\nstages:\n  - name: pick\n    uses: select\n"
                          f"    with: {{source: '{source}', k: 6, by: words{extra}}}\n")  # fmt: skip
        cli("run", str(recipe), env=joined)
        written_by[name] = without_source(tmp_path / name / "select" / "pick.json")
    assert written_by["ray"] == written_by["local"] and len(written_by["local"]) == 6
    markers = sorted(p.name for p in tmp_path.joinpath("ray").rglob("shards/part-*.done.json"))
    assert markers == [f"part-{i:05d}.done.json" for i in range(3)]
