"""The one manifest schema: round trip, inputs by what they are, the file-hash cache, and every writing command."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import orjson
import pytest

from longsift import formats
from longsift.generations import iter_generations, write_generations
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.manifest import (
    FileInput,
    FolderInput,
    HashCache,
    Manifest,
    NameInput,
    describe_input,
    manifest_path,
    read_manifest,
    verify,
    write_manifest,
)
from longsift.records import Example, Generation

# -- the schema ---------------------------------------------------------------------------------------------------


def model_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model-00001.safetensors").write_bytes(os.urandom(300_000))
    (path / "sub").mkdir()
    (path / "sub" / "tokenizer.json").write_text("{}")
    return path


def test_a_manifest_round_trips_through_its_file(tmp_path: Path) -> None:
    data, out = tmp_path / "data.jsonl", tmp_path / "out" / "result.json"
    data.write_text('{"a": 1}\n')
    out.parent.mkdir()
    out.write_text("[1, 2]")
    model = model_folder(tmp_path / "model")
    written = write_manifest(
        out, command="select", options={"k": 3, "where": tmp_path}, summary={"kept": 2},
        inputs={"source": data, "model": model, "tokenizer": "org/some-tokenizer", "none": None},
        outputs={"output": out}, started=1.0,
    )  # fmt: skip
    path = tmp_path / "out" / "result.manifest.json"
    assert manifest_path(out) == path and read_manifest(path) == written == read_manifest(out)
    assert Manifest.model_validate_json(written.model_dump_json()) == written
    source, folder, tokenizer = written.inputs
    assert isinstance(source, FileInput) and source.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    assert (
        isinstance(folder, FolderInput)
        and folder.files == 3
        and folder.size == sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    )
    assert isinstance(tokenizer, NameInput) and tokenizer.name == "org/some-tokenizer"  # not on disk: not hashed
    assert written.files["result.json"].sha256 == hashlib.sha256(b"[1, 2]").hexdigest()
    assert written.options == {"k": 3, "where": str(tmp_path)} and written.version == 1
    assert {"longsift", "python"} <= set(written.versions)
    assert verify(written, path.parent, path) is None
    out.write_text("[1, 3]")  # same size, other bytes
    assert "sha256 differs" in (verify(written, path.parent, path) or "")


@pytest.mark.parametrize(
    "content",
    [
        {"stage": "select", "output": "x.json", "summary": {}, "versions": {}},  # the data commands' old manifest
        {"stage": "s", "uses": "write-text", "status": "complete", "options": {}, "options_digest": "0",
         "inputs": {}, "outputs": {}, "files": {}, "versions": {}, "seconds": 1.0},  # the runner's old one
        {"version": 2, "command": "select"},  # a newer schema
        "[]",
    ],
)  # fmt: skip
def test_a_manifest_of_another_schema_is_none(tmp_path: Path, content) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content.encode() if isinstance(content, str) else orjson.dumps(content))
    assert read_manifest(path) is None
    path.write_bytes(b'{"version": 1, "comm')  # torn
    assert read_manifest(path) is None


def test_a_path_that_is_not_on_disk_is_a_name(tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "cache.json")
    assert describe_input("model", "meta-llama/Llama-2-7b-hf", cache) == NameInput(
        role="model", name="meta-llama/Llama-2-7b-hf"
    )
    assert cache.hashed == 0


# -- the hash cache -----------------------------------------------------------------------------------------------


def test_a_model_folder_is_hashed_once_and_a_changed_weight_again(tmp_path: Path) -> None:
    model = model_folder(tmp_path / "model")
    cache_file = tmp_path / "cache" / "hashes.json"
    first = HashCache(cache_file)
    hashed = describe_input("model", model, first)
    first.save()
    assert first.hashed == 3 and cache_file.is_file()

    rerun = HashCache(cache_file)  # another process, later: reads the cache, not the weights
    assert describe_input("model", model, rerun) == hashed and rerun.hashed == 0

    weights = model / "model-00001.safetensors"
    before = weights.stat()
    weights.write_bytes(os.urandom(before.st_size))  # same size, new bytes
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    changed = HashCache(cache_file)
    again = describe_input("model", model, changed)
    assert changed.hashed == 1 and isinstance(again, FolderInput) and again.sha256 != hashed.sha256  # type: ignore[union-attr]

    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))  # touched, same bytes
    touched = HashCache(cache_file)
    assert describe_input("model", model, touched) == again and touched.hashed == 1


def test_write_manifest_reuses_the_cache_for_inputs_and_outputs(tmp_path: Path) -> None:
    model = model_folder(tmp_path / "model")
    out = tmp_path / "out.json"
    out.write_text("{}")
    cache = HashCache(tmp_path / "hashes.json")
    write_manifest(out, command="generate", options={}, inputs={"model": model}, outputs={"output": out}, cache=cache)
    assert cache.hashed == 4
    cache = HashCache(tmp_path / "hashes.json")
    write_manifest(out, command="generate", options={}, inputs={"model": model}, outputs={"output": out}, cache=cache)
    assert cache.hashed == 0


def test_an_unreadable_cache_is_an_empty_one(tmp_path: Path) -> None:
    cache_file = tmp_path / "hashes.json"
    cache_file.write_bytes(b"\x80not json")
    (tmp_path / "f").write_text("x")
    cache = HashCache(cache_file)
    assert cache.sha256(tmp_path / "f") == hashlib.sha256(b"x").hexdigest() and cache.hashed == 1
    cache.save()
    assert orjson.loads(cache_file.read_bytes())["version"] == 1


# -- every command that writes writes one --------------------------------------------------------------------------


def respond(request: ServedRequest) -> str:
    """A reply each LLM stage parses: a refinement, a pair of judge scores, an accuracy rating."""
    if "Better Answer" in request.prompt:
        return "1. Short.\n\n2. [Better Answer] A better answer. [End]"
    if "Assistant 1" in request.prompt:
        return "8 6\nAssistant 1 is more detailed."
    return "4.5\nAccurate."


WRITTEN = {  # command -> its manifest, relative to the workspace
    "select": "run/select/longest.manifest.json",
    "convert": "converted.manifest.json",
    "stats": "stats/manifest.json",
    "train": "model/manifest.json",
    "generate": "run/generate/tiny-a.manifest.json",
    "refine": "refined.manifest.json",
    "score": "scored.manifest.json",
    "judge pairwise": "run/judge/tiny-a__vs__tiny-b/manifest.json",
    "analyze": "run/analyze/analysis.manifest.json",
    "report": "run/report/report.manifest.json",
    "alpacaeval export": "model_outputs.manifest.json",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, alpaca_pool: Path, cli) -> Path:
    """Every writing command once, as a user would chain them into a run folder."""
    ws = tmp_path_factory.mktemp("commands")
    pool = ws / "pool.jsonl"
    words = ["alpha", "beta", "gamma", "delta"]
    formats.write([Example.from_alpaca(f"task {i}", "", " ".join(words[: i % 4 + 1]) * (i + 1), id=str(i), row=i)
                   for i in range(6)], pool)  # fmt: skip
    cli("select", str(pool), "-o", str(ws / "run/select/longest.json"), "--k", "3", "-q")
    cli("convert", str(pool), "-o", str(ws / "converted.jsonl"))
    cli("stats", str(pool), "-o", str(ws / "stats"), "--by", "words")
    threads = {"OMP_NUM_THREADS": "1"}
    cli("train", str(alpaca_pool), "--tiny", "--k", "16", "--max-steps", "1", "-o", str(ws / "model"),
        env=threads)  # fmt: skip
    a = ws / "run/generate/tiny-a.jsonl"
    cli("generate", str(ws / "model"), "vicuna", "-o", str(a), "--k", "2", "--max-new-tokens", "4",
        "--model-name", "tiny-a", env=threads)  # fmt: skip
    b = [Generation.from_dict({**g.to_dict(), "model": "tiny-b"}) for g in iter_generations(a)]
    write_generations(b, ws / "run/generate/tiny-b.jsonl")
    alpaca = [Generation.from_dict({**g.to_dict(), "eval_set": "alpacaeval"}) for g in iter_generations(a)]
    write_generations(alpaca, ws / "alpacaeval.jsonl")
    cli("alpacaeval", "export", str(ws / "alpacaeval.jsonl"), "-o", str(ws / "model_outputs.json"))
    with LocalChatServer(respond) as server:
        llm = ["--base-url", server.base_url, "--model", "local-test"]
        cli("refine", str(pool), "-o", str(ws / "refined.jsonl"), *llm)
        cli("score", str(pool), "-o", str(ws / "scored.jsonl"), *llm)
        cli("judge", "pairwise", str(a), str(ws / "run/generate/tiny-b.jsonl"), "-o",
            str(ws / "run/judge/tiny-a__vs__tiny-b"), *llm)  # fmt: skip
    cli("analyze", str(ws / "run"), "--bootstrap", "10")
    cli("report", str(ws / "run"), "-o", str(ws / "run/report/report.html"))
    return ws


@pytest.mark.parametrize("command", list(WRITTEN))
def test_every_writing_command_writes_the_one_schema(workspace: Path, command: str) -> None:
    path = workspace / WRITTEN[command]
    record = Manifest.model_validate_json(path.read_bytes())  # the one schema, nothing else
    assert record.command == command and record.outputs and record.files
    assert verify(record, path.parent, path, confined=False) is None  # every file as recorded
    assert "--" not in json.dumps(record.options)  # resolved options, not argv
    if command == "alpacaeval export":
        (generations,) = record.inputs_with_role("generations")
        assert isinstance(generations, FileInput) and record.summary["written"] == 2
    if command in ("select", "convert", "stats", "refine", "score"):
        (source,) = record.inputs_with_role("source")
        assert isinstance(source, FileInput) and source.path.endswith("pool.jsonl")
    if command == "generate":
        (model,) = record.inputs_with_role("model")
        assert isinstance(model, FolderInput) and model.files > 3  # the trained model folder, by its files
    if command == "judge pairwise":
        assert {i.role for i in record.inputs} >= {"a", "b"} and record.options["llm"]["model"] == "local-test"


def test_analyze_finds_the_source_in_the_selection_manifest(workspace: Path) -> None:
    analysis = orjson.loads((workspace / "run/analyze/analysis.json").read_bytes())
    assert analysis["inputs"]["source"].endswith("pool.jsonl")


def test_inputs_described_without_a_cache_are_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from longsift.manifest import describe_inputs

    monkeypatch.setenv("LONGSIFT_CACHE_DIR", str(tmp_path / "cache"))
    model = model_folder(tmp_path / "model")
    first = describe_inputs({"model": model})  # as the runner does before a stage
    later = HashCache()
    assert describe_inputs({"model": model}, later) == first and later.hashed == 0
