"""The LLM commands' vocabulary: new spellings, and each old one still working with one warning line."""

from __future__ import annotations

from pathlib import Path

import orjson

from longsift.llm.server import LocalChatServer, ServedRequest


def deprecations(stderr: str) -> list[str]:
    return sorted(line for line in stderr.splitlines() if "deprecated" in line)


def rater(request: ServedRequest) -> str:
    return f"{len(request.prompt) % 6}\nexplanation"


def test_score_old_spellings_give_the_same_file(cli, tmp_path: Path) -> None:
    source = tmp_path / "pool.json"
    source.write_bytes(orjson.dumps([{"instruction": f"q{i}", "input": "", "output": "a" * i} for i in range(1, 6)]))
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    with LocalChatServer(rater) as server:
        common = ["--base-url", server.base_url, "--model", "m", "--no-progress", "--cache", str(tmp_path / "c.db")]
        done = cli("score", str(source), "-o", str(new), "--output-format", "alpaca", "--local-batch-size", "4",
                   *common)  # fmt: skip
        assert deprecations(done.stderr) == []
        done = cli("score", str(source), "-o", str(old), "--format", "alpaca", "--batch-size", "4", *common)
    assert deprecations(done.stderr) == [
        "warning: --batch-size is deprecated, use --local-batch-size",
        "warning: --format is deprecated, use --output-format",
    ]
    assert old.read_bytes() == new.read_bytes() and len(orjson.loads(new.read_bytes())) == 5


def test_openllm_limit_and_batch_size_warn_once_each(cli, tmp_path: Path) -> None:
    done = cli("openllm", str(tmp_path), "--tasks", "no-such-task", "--limit", "2", "--batch-size", "2", check=False)
    assert done.returncode == 2 and "no-such-task" in done.stderr
    assert deprecations(done.stderr) == [
        "warning: --batch-size is deprecated, use --local-batch-size",
        "warning: --limit is deprecated, use --k",
    ]


def test_serve_name_is_model_name(cli, tmp_path: Path) -> None:
    done = cli("serve", str(tmp_path / "missing"), "--name", "m", check=False)
    assert done.returncode == 2 and "not a model folder" in done.stderr
    assert deprecations(done.stderr) == ["warning: --name is deprecated, use --model-name"]
