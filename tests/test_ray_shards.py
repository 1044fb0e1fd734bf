"""The shards of a sharded input (longsift.exec.shards), without Ray: folder, glob, list, @FILE, fsspec URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from longsift.errors import DataError
from longsift.exec import ExecOptions, shards


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("b.jsonl", "a.jsonl.gz", "c.parquet", "notes.txt", "sub/d.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"{}\n")
    return tmp_path


def test_a_folder_is_its_shard_files_in_name_order_subfolders_too(folder: Path) -> None:
    assert shards.expand(folder) == [str(folder / n) for n in ("a.jsonl.gz", "b.jsonl", "c.parquet", "sub/d.json")]


def test_a_glob_a_list_and_a_list_file_keep_their_order(folder: Path) -> None:
    assert shards.expand(str(folder / "*.jsonl*")) == [str(folder / "a.jsonl.gz"), str(folder / "b.jsonl")]
    listed = [str(folder / "c.parquet"), str(folder / "b.jsonl")]
    assert shards.expand(listed) == listed
    (folder / "list.txt").write_text("# shards\n" + "\n".join(listed) + "\n\n")
    assert shards.expand(f"@{folder / 'list.txt'}") == listed


def test_file_urls_stay_urls_and_read_locally(folder: Path) -> None:
    found = shards.expand(f"file://{folder}/*.jsonl")
    assert found == [f"file://{folder}/b.jsonl"]
    with shards.local_copy(found[0]) as path:
        assert Path(path).read_bytes() == b"{}\n"


def test_a_remote_shard_is_copied_to_a_local_file_and_removed_after() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/pool/part-1.jsonl", b'{"instruction": "a", "input": "", "output": "b"}\n')
    fs.pipe("/pool/part-0.jsonl", b"")
    found = shards.expand("memory://pool")
    assert [url.split("://")[0] for url in found] == ["memory", "memory"]
    assert [url.rsplit("/", 1)[1] for url in found] == ["part-0.jsonl", "part-1.jsonl"]
    with shards.local_copy(found[1]) as path:
        assert Path(path).read_bytes().startswith(b'{"instruction"')
    assert not Path(path).exists()


def test_no_shards_is_a_clear_error(folder: Path) -> None:
    with pytest.raises(DataError, match="no shards found"):
        shards.expand(str(folder / "*.csv"))
    with pytest.raises(DataError, match="no such file"):
        shards.expand(str(folder / "missing"))


def test_the_executor_is_a_choice_and_the_address_needs_ray() -> None:
    from pydantic import ValidationError

    from longsift.errors import ConfigError

    assert ExecOptions().uses_ray() is False
    assert ExecOptions(executor="ray").uses_ray() is True
    with pytest.raises(ValidationError):
        ExecOptions(executor="dask")
    with pytest.raises(ConfigError, match="--ray-address applies to --executor ray"):
        ExecOptions(ray_address="auto").uses_ray()


def test_parquet_shards_are_a_folder_written_whole_in_record_order(tmp_path: Path, monkeypatch) -> None:
    from longsift import formats
    from longsift.formats import parquet
    from longsift.formats.load import load_all

    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"instruction": "q{i}", "input": "", "output": "a{i}"}}\n' for i in range(7)))
    records, _ = load_all(source)
    monkeypatch.setattr(parquet, "SHARD_ROWS", 3)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "part-00009.parquet").write_bytes(b"a previous run's shard")
    assert formats.write(records, out, "parquet-shards") == 7
    assert sorted(p.name for p in out.iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    back = [e for shard in shards.expand(out) for e in load_all(shard)[0]]
    assert [e.response for e in back] == [f"a{i}" for i in range(7)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    with pytest.raises(DataError, match="writes a folder"):
        formats.write(records, source, "parquet-shards")


def test_a_shard_commit_is_keyed_by_the_shard_bytes_and_read_back_only_when_it_matches(tmp_path: Path) -> None:
    """exec/commits.py without Ray: a rewritten shard (local or memory://) is another shard; a marker of another
    fingerprint, or not ours, is no commit; a commit is read back as written."""
    import os

    import fsspec

    from longsift.exec import commits

    local = tmp_path / "part-0.jsonl"
    local.write_bytes(b"{}\n")
    fs = fsspec.filesystem("memory")
    fs.pipe("/commits/part-1.jsonl", b"{}\n")
    rewrites = [(str(local), lambda: os.utime(local, ns=(1, 1))),
                ("memory://commits/part-1.jsonl", lambda: fs.pipe("/commits/part-1.jsonl", b"{}\n{}\n"))]  # fmt: skip
    for shard, rewrite in rewrites:
        before = commits.fingerprint(command="select", shard=commits.identity(shard), k=3)
        assert before == commits.fingerprint(command="select", shard=commits.identity(shard), k=3)
        assert before != commits.fingerprint(command="select", shard=commits.identity(shard), k=4)
        rewrite()
        assert before != commits.fingerprint(command="select", shard=commits.identity(shard), k=3)
    work = tmp_path / "run"
    work.mkdir()
    commits.commit(work, 2, {"fingerprint": "abc", "read": 7})
    assert commits.done_marker(work, 2, "abc") == {"fingerprint": "abc", "read": 7}
    assert commits.done_marker(work, 2, "other") is None and commits.done_marker(work, 3, "abc") is None
    commits.marker_path(work, 3).write_bytes(b"not json")
    assert commits.done_marker(work, 3, "abc") is None
    assert sorted(p.name for p in work.iterdir()) == ["part-00002.done.json", "part-00003.done.json"]


def test_what_longsift_leaves_beside_its_outputs_is_never_a_shard(tmp_path: Path) -> None:
    """Side files, temporary files, hidden folders and a job's work folder (OUT.shards/ and its markers) from an
    earlier run stay out of the pool, in a folder and in a glob; a shard merely named like them stays in."""
    root = tmp_path / "pool.shards"  # the root itself may be called anything
    names = ["a.jsonl", "out.json", "out.manifest.json", "out.quarantine.jsonl", "b.failures.jsonl.gz",
             "out.shards/part-00000.done.json", "out.shards/part-00000.parquet", ".longsift-tmp-1.jsonl",
             ".cache/z.jsonl", "sub/c.jsonl", "sub/old.shards/part-00001.done.json", "manifest.jsonl"]  # fmt: skip
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"{}\n")
    kept = [str(root / n) for n in ("a.jsonl", "manifest.jsonl", "out.json", "sub/c.jsonl")]
    assert shards.expand(root) == kept
    assert shards.expand(str(root / "*.json*")) == [str(root / n) for n in ("a.jsonl", "manifest.jsonl", "out.json")]
    assert shards.expand(str(root / "**" / "*.jsonl")) == [str(root / n) for n in ("a.jsonl", "manifest.jsonl",
                                                                                   "sub/c.jsonl")]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "output", "refused"),
    [("*.jsonl", "out.jsonl", True), ("*.jsonl", "out.json", False), ("*.jsonl", "sub/out.jsonl", False),
     ("*/*.parquet", "out", True),  # out/part-00000.parquet: Parquet shards
     ("*/*.parquet", "sub/out", False), ("*.parquet", "out.parquet", True), ("**/*.jsonl", "sub/deep/out.jsonl", True),
     ("part-[0-9].jsonl", "part-7.jsonl", True), ("part-[0-9].jsonl", "part-x.jsonl", False)],
)  # fmt: skip
def test_an_output_a_rerun_of_the_glob_would_read_is_refused(tmp_path: Path, pattern, output, refused) -> None:
    from longsift.errors import UsageError
    from longsift.outputs import guard_paths

    (tmp_path / "sub").mkdir()
    (tmp_path / "part-0.jsonl").write_bytes(b"{}\n")
    if refused:
        with pytest.raises(UsageError, match="is among the input shards"):
            guard_paths([str(tmp_path / pattern)], [tmp_path / output])
    else:
        guard_paths([str(tmp_path / pattern)], [tmp_path / output])


def test_a_listed_shard_or_the_list_itself_is_never_an_output(tmp_path: Path) -> None:
    from longsift.errors import UsageError
    from longsift.outputs import guard_paths

    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.jsonl'}\n")
    for output in ("a.jsonl", "list.txt"):
        with pytest.raises(UsageError, match="is the input"):
            guard_paths([f"@{tmp_path / 'list.txt'}"], [tmp_path / output])
    guard_paths([f"@{tmp_path / 'list.txt'}"], [tmp_path / "b.jsonl"])
    guard_paths([f"@{tmp_path / 'missing.txt'}"], [tmp_path / "b.jsonl"])  # the reader says what is missing
