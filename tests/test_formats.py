"""Loaders, writers and the quarantine: bad inputs, golden files, round trips, streaming."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longsift import Example, Message, formats, load, load_all, write
from longsift.errors import DataError, UnknownFormatError, UnknownNameError
from longsift.formats import rows
from longsift.formats.arrow import from_arrow, from_hf_dataset, to_arrow, to_hf_dataset

BAD = Path(__file__).parent / "data" / "bad_inputs"
GOLDEN = Path(__file__).parent / "golden" / "writers"

# file -> (kept, quarantined row, its line, a phrase of the reason)
BAD_CASES = {
    "invalid_json.jsonl": (2, 1, 2, "invalid JSON"),
    "missing_response.jsonl": (2, 1, 2, "missing field 'output'"),
    "empty_response.jsonl": (2, 1, 2, "field 'output' is empty"),
    "non_string_field.jsonl": (2, 1, 2, "field 'output' must be a string, got int"),
    "not_an_object.jsonl": (2, 1, 2, "expected a JSON object, got list"),
    "unknown_role.jsonl": (1, 1, 2, "unknown role 'robot'"),
    "duplicate_id.jsonl": (2, 1, 2, "duplicate id 'same'"),
    "oversized_record.jsonl": (2, 1, 2, "over the limit of 1000"),
    "invalid_utf8.jsonl": (2, 1, 2, "invalid UTF-8"),
    "no_assistant_turn.json": (1, 1, 15, "no assistant turn"),
    "truncated_array.json": (1, 1, 3, "invalid JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_each_bad_input_is_quarantined_with_location_and_reason(name: str, tmp_path: Path) -> None:
    kept, row, line, phrase = BAD_CASES[name]
    quarantine = tmp_path / "q.jsonl"
    stream = load(BAD / name, quarantine=quarantine, max_record_bytes=1000)
    examples = list(stream)
    report = stream.report
    assert len(examples) == kept == report.kept
    assert report.read == report.kept + report.quarantined
    assert report.quarantined == 1
    rejection = report.rejections[0]
    assert (rejection.row, rejection.line) == (row, line)
    assert phrase in rejection.reason
    assert rejection.message().startswith(f"{BAD / name}:{line} (row {row}): ")
    lines = quarantine.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["reason"] == rejection.reason


def test_unknown_file_format_is_a_clear_error() -> None:
    with pytest.raises(UnknownFormatError, match="unknown file format"):
        load(BAD / "unknown_format.csv")


def test_unknown_record_layout_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n')
    examples, report = load_all(path)
    assert examples == [] and report.quarantined == 1
    assert "unknown record layout" in report.rejections[0].reason


def test_missing_file_and_unknown_writer_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "absent.json")
    with pytest.raises(UnknownNameError, match="Did you mean 'fastchat'"):
        write([], tmp_path / "x.json", "fastchat2")


def test_cli_reports_bad_rows_and_unknown_format(cli, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = cli("convert", str(BAD / "invalid_json.jsonl"), "-o", str(out))
    assert "rows read 3 = kept 2 + quarantined 1" in " ".join(result.stderr.split())
    assert len(out.read_text().splitlines()) == 2
    assert (tmp_path / "out.quarantine.jsonl").exists()
    failed = cli("convert", str(BAD / "unknown_format.csv"), "-o", str(out), check=False)
    assert failed.returncode == 2
    assert "unknown file format" in failed.stderr and "Traceback" not in failed.stderr


def sample_examples() -> list[Example]:
    return [
        Example.from_alpaca("Name a colour.", "", "Blue.", id="0", row=0),
        Example.from_alpaca("Translate to French.", "Good morning, café", "Bonjour, café.", id="1", row=3),
        Example(
            "chat-7",
            (Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello — hi!")),
            row=7,
            metadata={"score": 4.5},
        ),
    ]


@pytest.mark.parametrize(("fmt", "name"), [("alpaca", "alpaca.json"), ("fastchat", "fastchat.json"),
                                           ("messages", "messages.jsonl")])  # fmt: skip
def test_writers_match_golden_files(fmt: str, name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    write(sample_examples(), out, fmt)
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(out.read_bytes())
    assert out.read_bytes() == golden.read_bytes()


def test_fastchat_writer_is_the_papers_layout(tmp_path: Path) -> None:
    out = tmp_path / "paper.json"
    write(sample_examples()[:2], out, "fastchat")
    data = json.loads(out.read_text())
    assert [d["id"] for d in data] == ["identity_0", "1"]  # a row without an id of its own, then an own id
    assert data[0]["conversations"][0]["value"] == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request. "
        "### Instruction: Name a colour."
    )
    assert data[1]["conversations"][0]["value"].endswith("### Instruction: Translate to French. ### Input: Good "
                                                         "morning, café")  # fmt: skip
    assert "paired with an input that provides further context" in data[1]["conversations"][0]["value"]
    # json.dump(indent=4) byte for byte, as the paper's scripts wrote their files
    assert out.read_text() == json.dumps(data, indent=4)


def test_paper_lima_file_round_trips(data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / "lima" / "fastchat_lima_1k.json"
    examples, report = load_all(source)
    assert report.kept == 1000 and report.layout == "sharegpt"
    assert "### Instruction" not in examples[0].prompt  # the preamble is recognised and kept apart
    out = tmp_path / "lima.json"
    write(examples, out, "fastchat")
    assert out.read_bytes() == source.read_bytes()  # ids, `score` before `conversations`, escapes, no newline


def test_every_format_round_trips_through_every_other(tmp_path: Path) -> None:
    examples = sample_examples()
    for fmt, name in [("messages", "a.jsonl"), ("parquet", "a.parquet")]:
        write(examples, tmp_path / name, fmt)
        back, report = load_all(tmp_path / name)
        assert [(b.id, b.messages, b.row, b.metadata) for b in back] == [
            (e.id, e.messages, e.row, e.metadata) for e in examples
        ]
        assert report.layout == "messages"
    write(examples[:2], tmp_path / "a.json", "alpaca")
    back, _ = load_all(tmp_path / "a.json")
    assert [(b.instruction, b.input, b.response) for b in back] == [
        (e.instruction, e.input, e.response) for e in examples[:2]
    ]


def test_gzip_and_json_array_stream_across_chunk_boundaries(tmp_path: Path) -> None:
    items = [{"instruction": f"q{i} ünïcode", "input": "", "output": "a" * (i % 37 + 1)} for i in range(500)]
    path = tmp_path / "data.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(items, handle, indent=2, ensure_ascii=False)
    raw = list(rows.iter_json_array(path, block_bytes=64))
    assert [r.data for r in raw] == items
    assert raw[1].line == 7  # indent 2: "[", then five lines per element
    examples, report = load_all(path)
    assert report.kept == 500 and report.container == "json"


def test_arrow_and_datasets_conversion_round_trip() -> None:
    examples = sample_examples()
    assert list(from_arrow(to_arrow(examples))) == examples
    assert list(from_hf_dataset(to_hf_dataset(examples))) == examples


def test_hf_save_to_disk_folder_is_a_source(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"instruction": "Hi", "input": "", "output": "Hello"}] * 3).save_to_disk(
        str(tmp_path / "ds")
    )
    examples, report = load_all(tmp_path / "ds")
    assert report.container == "hf" and report.kept == 3 and examples[2].response == "Hello"


def test_output_format_follows_the_extension(tmp_path: Path) -> None:
    assert formats.output_format(tmp_path / "a.jsonl") == "messages"
    assert formats.output_format(tmp_path / "a.json") == "alpaca"
    assert formats.output_format(tmp_path / "a.parquet") == "parquet"
    assert formats.output_format(tmp_path / "a.json", "fastchat") == "fastchat"
    with pytest.raises(UnknownFormatError):
        formats.output_format(tmp_path / "a.txt")


def test_public_pool_loads_and_quarantines_its_empty_outputs(alpaca_pool: Path) -> None:
    examples, report = load_all(alpaca_pool)
    assert report.read == 18669
    assert report.read == report.kept + report.quarantined
    assert all(r.reason == "field 'output' is empty" for r in report.rejections)
    assert examples[0].row == 0 and examples[-1].row == 18668


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(lambda s: s.strip())


@settings(max_examples=60, deadline=None)
@given(instruction=text, input_text=st.one_of(st.just(""), text), output=text)
def test_alpaca_messages_sharegpt_round_trip(instruction: str, input_text: str, output: str) -> None:
    example = Example.from_alpaca(instruction, input_text, output, id="0", row=0)
    from longsift.formats import alpaca, messages, sharegpt

    via_messages = messages.parse(orjson.loads(orjson.dumps(messages.to_messages(example))), 0, "")
    assert via_messages == example
    via_alpaca = alpaca.parse(alpaca.to_alpaca(example), 0, "")
    assert (via_alpaca.instruction, via_alpaca.input, via_alpaca.response) == (instruction, input_text, output)
    via_sharegpt = sharegpt.parse(sharegpt.to_fastchat(example), 0, "")
    if " ### Input: " not in instruction:
        assert (via_sharegpt.instruction, via_sharegpt.input, via_sharegpt.response) == (
            instruction,
            input_text,
            output,
        )


def test_env_command_reports_versions_and_data(cli, data_dir: Path) -> None:
    result = cli("env", "--json", env={"LONGSIFT_DATA": str(data_dir)})
    info = json.loads(result.stdout)
    import importlib.metadata
    import platform

    assert info["packages"]["pyarrow"] == importlib.metadata.version("pyarrow")
    assert info["python"] == platform.python_version()
    assert info["data_dir_present"] is True and info["data_dir"] == str(data_dir)
