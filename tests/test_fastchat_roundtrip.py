"""The paper's released FastChat files round-trip through `convert --format fastchat` byte for byte.

The released layout (tml-epfl/long-is-more-for-alignment `data/`): `json.dump(items, f, indent=4)`, so ASCII
escapes and no final newline; ids `identity_<Alpaca row>`; `score` after `conversations` in the Alpaca and
Evol-Instruct files, before it in the LIMA file. A selection keeps the source's ids, so the link to the Alpaca
row survives any number of conversions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longsift import load_all, write
from longsift.formats.alpaca import PREAMBLE, PREAMBLE_WITH_INPUT

HEAD = PREAMBLE + " ### Instruction: "
HEAD_INPUT = PREAMBLE_WITH_INPUT + " ### Instruction: "


def turns(human: str, gpt: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]


def released_alpaca_layout() -> list[dict[str, Any]]:
    """Rows of a longest-k selection out of Alpaca-52k: sparse ids, score last, unicode, inputs."""
    return [
        {"id": "identity_8015", "conversations": turns(HEAD + "A poem on café culture.", "Café — “crème”,\n\n☕ 日本"),
         "score": 3.5},
        {"id": "identity_21", "conversations": turns(HEAD_INPUT + "Translate. ### Input: Grüß Gott", "Hello 👋"),
         "score": 4.5},
        {"id": "identity_3", "conversations": turns(HEAD + "List ### Input: markers", "a ### Input: b"), "score": 4.0},
        {"id": "identity_52001", "conversations": turns("no preamble here", "plain"), "score": 5.0},
    ]  # fmt: skip


def released_lima_layout() -> list[dict[str, Any]]:
    """The LIMA file's order (score before conversations), plus extra keys a user file may carry."""
    return [
        {"id": "identity_7", "score": 0.0, "conversations": turns(HEAD + "Why?", "Because\u00a0so.")},
        {"id": "identity_9", "score": 0.0, "conversations": turns(HEAD_INPUT + "Sum ### Input: ", "0")},
        {"source": "stack", "id": "identity_11", "conversations": turns(HEAD + "Q", "A"), "tags": ["x", "ü"],
         "score": 1},
        {"id": "chat-42", "conversations": [{"from": "system", "value": "Be brief."}, *turns("Hi", "Hello")]},
    ]  # fmt: skip


def dumped(items: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w") as handle:
        json.dump(items, handle, indent=4)  # as the paper's utils/reformat_data.py wrote its files
    return path


@pytest.mark.parametrize("build", [released_alpaca_layout, released_lima_layout])
def test_convert_round_trips_the_released_layout_byte_for_byte(build, cli, tmp_path: Path) -> None:
    source = dumped(build(), tmp_path / "released.json")
    out = tmp_path / "out.json"
    cli("convert", str(source), "-o", str(out), "--output-format", "fastchat")
    assert out.read_bytes() == source.read_bytes()
    again = tmp_path / "again.json"  # and through the messages layout, back again
    cli("convert", str(out), "-o", str(tmp_path / "mid.jsonl"))
    cli("convert", str(tmp_path / "mid.jsonl"), "-o", str(again), "--output-format", "fastchat")
    assert again.read_bytes() == source.read_bytes()


def test_shared_lima_file_converts_byte_for_byte(cli, data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / "lima" / "fastchat_lima_1k.json"
    out = tmp_path / "lima.json"
    cli("convert", str(source), "-o", str(out), "--output-format", "fastchat")
    assert out.read_bytes() == source.read_bytes()


def test_own_ids_survive_a_selection_and_sources_without_ids_get_their_row(tmp_path: Path) -> None:
    source = dumped(released_alpaca_layout(), tmp_path / "released.json")
    examples, _ = load_all(source)
    write(examples[2:], tmp_path / "subset.json", "fastchat")
    assert [d["id"] for d in json.loads((tmp_path / "subset.json").read_text())] == ["identity_3", "identity_52001"]
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(3)]))
    rows, _ = load_all(alpaca)
    write(rows[1:], tmp_path / "rows.json", "fastchat")
    items = json.loads((tmp_path / "rows.json").read_text())
    assert [d["id"] for d in items] == ["identity_1", "identity_2"]
    assert [list(d) for d in items] == [["id", "conversations"]] * 2


def test_layout_key_does_not_leak_into_alpaca_files(tmp_path: Path) -> None:
    source = dumped(released_lima_layout(), tmp_path / "lima.json")
    examples, _ = load_all(source)
    write(examples[:1], tmp_path / "a.json", "alpaca")
    assert json.loads((tmp_path / "a.json").read_text()) == [
        {"instruction": "Why?", "input": "", "output": "Because\u00a0so.", "score": 0.0}
    ]
