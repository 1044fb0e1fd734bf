"""`select` on Hugging Face datasets: a save_to_disk folder, and a hub id streamed from a (local) Hub repository of
parquet shards, select exactly the rows the same data selects as JSON lines."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.local_hub import LocalHub

FIELDS = ("instruction", "input", "output")
K = 12


@pytest.fixture(scope="module")
def rows(alpaca_pool: Path) -> list[dict[str, str]]:
    """The first 240 rows of the public Alpaca pool (real text: lengths tie rarely, but ties do occur)."""
    with gzip.open(alpaca_pool, "rt") as lines:
        return [{field: json.loads(line)[field] for field in FIELDS} for line in itertools.islice(lines, 240)]


def selected(cli, source: str, output: Path, env: dict[str, str] | None = None) -> list[dict[str, str]]:
    cli("select", source, "-o", str(output), "--k", str(K), "--format", "alpaca", "-q", env=env)
    chosen = json.loads(output.read_text())
    assert len(chosen) == K
    return [{field: row[field] for field in FIELDS} for row in chosen]


@pytest.fixture(scope="module")
def from_jsonl(rows, cli, tmp_path_factory) -> list[dict[str, str]]:
    folder = tmp_path_factory.mktemp("jsonl")
    source = folder / "pool.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return selected(cli, str(source), folder / "chosen.json")


def test_a_save_to_disk_dataset_selects_what_its_jsonl_selects(rows, from_jsonl, cli, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(saved))
    assert selected(cli, str(saved), tmp_path / "chosen.json") == from_jsonl


def test_a_save_to_disk_dataset_dict_selects_its_train_split(rows, from_jsonl, cli, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    other = datasets.Dataset.from_list([{"instruction": "x" * 5000, "input": "", "output": "y" * 5000}])
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "test": other}).save_to_disk(str(saved))
    assert selected(cli, str(saved), tmp_path / "chosen.json") == from_jsonl  # the long test row is not read


def test_a_hub_id_streams_every_parquet_shard_and_selects_what_its_jsonl_selects(
    rows, from_jsonl, cli, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    shards = 3
    for shard in range(shards):
        part = rows[shard::shards]  # interleaved: the shards' order matters only through the rows' own order
        name = repo / "data" / f"train-{shard:05d}-of-{shards:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(part), name)
    # the rows in the order the Hub's shards hold them, as JSON lines, selected the same way
    in_shard_order = [row for shard in range(shards) for row in rows[shard::shards]]
    jsonl = tmp_path / "in-shard-order.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in in_shard_order))
    expected = selected(cli, str(jsonl), tmp_path / "expected.json")
    assert sorted(map(json.dumps, expected)) == sorted(map(json.dumps, from_jsonl))  # same rows, any order

    with LocalHub(repo, "some-org/alpaca-shards") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HOME": str(tmp_path)}
        streamed = selected(cli, "some-org/alpaca-shards", tmp_path / "chosen.json", env)
    assert streamed == expected
    read = {path.split("/resolve/")[1].split("/", 1)[1] for method, path in hub.log if "/resolve/" in path}
    assert {f"data/train-{shard:05d}-of-{shards:05d}.parquet" for shard in range(shards)} <= read
