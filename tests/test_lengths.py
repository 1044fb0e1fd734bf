"""Length units on hand-made text, NLTK's count and its cheap bounds on every row of the shared Alpaca pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longsift.errors import ConfigError
from longsift.formats import rows
from longsift.lengths import UNITS, get_unit, record_lengths
from longsift.lengths.nltk_words import PUNKT_PACKAGE, bounds

REPO = Path(__file__).resolve().parents[1]


def test_chars_and_words_on_hand_made_text() -> None:
    assert get_unit("chars").count(["", "héllo", "a b\n c"]) == [0, 5, 6]
    assert get_unit("words").count(["", "  one\ttwo\nthree  ", "naïve café"]) == [0, 3, 2]


def test_a_record_length_sums_its_assistant_turns() -> None:
    assert record_lengths(get_unit("words").count, [["one two", "three"], [], ["x"]]) == [3, 0, 1]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # nltk.word_tokenize's own doctest: 'York.' ends a sentence, so its period is split off
        ("Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.",
         ["Good", "muffins", "cost", "$", "3.88", "in", "New", "York", ".", "Please", "buy", "me", "two", "of",
          "them", ".", "Thanks", "."]),
        ("They'll save and invest more.", ["They", "'ll", "save", "and", "invest", "more", "."]),
        ("I cannot go, can't you see?", ["I", "can", "not", "go", ",", "ca", "n't", "you", "see", "?"]),
        ("Mr. Smith paid $5 (cash).", ["Mr.", "Smith", "paid", "$", "5", "(", "cash", ")", "."]),
        ('"Hi!" she said.', ["``", "Hi", "!", "''", "she", "said", "."]),
    ],
)  # fmt: skip
def test_nltk_unit_counts_nltk_word_tokens(text: str, tokens: list[str]) -> None:
    unit = get_unit("nltk")
    assert unit.count([text]) == [len(tokens)]
    sentences = unit._sentences.tokenize(text) if unit._sentences is not None else [text]
    assert [t for s in sentences for t in unit._words.tokenize(s)] == tokens


def punkt_in_subprocess(data_dir: Path, texts: list[str]) -> tuple[str, list[int], list[int]]:
    """With NLTK's data searched in `data_dir` only: which Punkt model the nltk unit picks, its counts, and
    `len(nltk.word_tokenize(t))` for each text (NLTK's own path, as the paper ran it)."""
    script = "\n".join([
        "import sys, orjson, nltk",
        "nltk.data.path[:] = [sys.argv[1]]",
        "from longsift.lengths.nltk_words import NltkWords",
        "unit, texts = NltkWords(), orjson.loads(sys.stdin.buffer.read())",
        "try:",
        "    paper = [len(nltk.word_tokenize(t)) for t in texts]",
        "except LookupError:",
        "    paper = []",
        "print(orjson.dumps([unit.punkt, unit.count(texts), paper]).decode())",
    ])  # fmt: skip
    env = {**os.environ, "NLTK_DATA": str(data_dir), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script, str(data_dir)], input=orjson.dumps(texts),
                         capture_output=True, check=True, env=env)  # fmt: skip
    punkt, counts, paper = orjson.loads(out.stdout)
    return punkt, counts, paper


def test_our_punkt_equals_nltk_loading_punkt_tab(tmp_path: Path, alpaca_pool: Path) -> None:
    """Without NLTK's punkt_tab data the unit runs the package's English parameters and says so; saved as punkt_tab
    files, NLTK's own loader and `nltk.word_tokenize` take over, say so, and count the same."""
    from nltk.tabdata import TabEncoder

    from longsift.lengths.nltk_words import PUNKT_TAB, package_punkt

    texts = [orjson.loads(line)["output"] for _, line in zip(range(400), rows.open_binary(alpaca_pool), strict=False)]
    (tmp_path / "empty").mkdir()
    punkt, ours, _ = punkt_in_subprocess(tmp_path / "empty", texts)
    assert punkt == PUNKT_PACKAGE
    tab = tmp_path / "data" / "tokenizers" / "punkt_tab" / "english"
    tab.mkdir(parents=True)
    params, encode = package_punkt()[0]._params, TabEncoder()  # NLTK's own punkt_tab encoder
    (tab / "collocations.tab").write_text(encode.tups2tab(params.collocations), encoding="utf-8")
    (tab / "sent_starters.txt").write_text(encode.set2txt(params.sent_starters), encoding="utf-8")
    (tab / "abbrev_types.txt").write_text(encode.set2txt(params.abbrev_types), encoding="utf-8")
    (tab / "ortho_context.tab").write_text(encode.ivdict2tab(params.ortho_context), encoding="utf-8")
    punkt, with_tab, paper = punkt_in_subprocess(tmp_path / "data", texts)
    assert punkt == PUNKT_TAB
    assert ours == with_tab == paper == get_unit("nltk").count(texts)  # this process: whichever model it found


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"ab1 .'\"!?()[]-,:;$`*n't\nCANOTgimewl«»“”’…—İ", "cannot", "Gonna", "'tis", "Mr."])))
def test_nltk_bounds_hold_on_punctuation_heavy_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    low, high = bounds(text)
    assert low <= get_unit("nltk").count([text])[0] <= high


@pytest.fixture(scope="module")
def pool_exact(alpaca_pool: Path) -> dict[int, int]:
    """Exact NLTK lengths of every kept pool row, counted in parallel (the `stats` path)."""
    from longsift.select.stats import lengths_of

    outcome = lengths_of(str(alpaca_pool), "nltk", None, None, None)
    return {row: length for _, row, (length, _) in outcome.heap.items()}


def test_nltk_bounds_hold_on_every_pool_row(alpaca_pool: Path, pool_exact: dict[int, int]) -> None:
    outputs = [orjson.loads(line)["output"] for line in rows.open_binary(alpaca_pool)]
    assert len(pool_exact) == 18659  # 18,669 rows less 10 with an empty response
    misses = [
        row for row, exact in pool_exact.items() if not bounds(outputs[row])[0] <= exact <= bounds(outputs[row])[1]
    ]
    assert misses == []


@pytest.mark.parametrize("k", [1, 100, 1000])
def test_pruned_nltk_selection_equals_brute_force(alpaca_pool: Path, pool_exact: dict[int, int], k: int) -> None:
    from longsift.select import select

    brute = sorted(sorted(pool_exact, key=lambda row: (-pool_exact[row], row))[:k])
    chosen = select(alpaca_pool, k=k, by="nltk")
    assert [e.row for e in chosen.examples] == brute
    assert chosen.lengths == [pool_exact[row] for row in brute]
    assert chosen.summary.exact_counts < len(pool_exact)  # the bounds did prune


def test_unknown_unit_suggests_a_name() -> None:
    with pytest.raises(KeyError, match="Did you mean .nltk."):
        UNITS.get("nltkk")


# --- tokens: a real fast tokenizer, trained here (nothing can be downloaded) -------------------------------


@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["the quick brown fox jumps over the lazy dog", "long responses are more helpful", "hello world"] * 50
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>"]))
    folder = tmp_path_factory.mktemp("bpe")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>").save_pretrained(folder)
    return folder


def test_tokens_unit_counts_like_the_tokenizer_without_special_tokens(bpe_tokenizer: Path) -> None:
    from transformers import AutoTokenizer

    texts = ["the quick brown fox", "hello world, long responses!", ""] * 1500  # more than one batch of 2,000
    unit = get_unit("tokens", str(bpe_tokenizer))
    reference = AutoTokenizer.from_pretrained(bpe_tokenizer)
    assert unit.count(texts) == [len(reference(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert unit.count(["hello world"])[0] < unit.count(["hello world hello world"])[0]
    assert unit.describe()["fast"] is True


def test_tokens_unit_needs_a_tokenizer_and_never_downloads() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        UNITS.get("tokens")()
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):
        UNITS.get("tokens")(tokenizer="no-such-org/no-such-tokenizer")


def test_every_unit_and_layout_declares_its_hot_loop_capability() -> None:
    """`Unit.fast` and `Schema.FAST` are declared on every unit and layout (None where there is no shortcut)."""
    from longsift import formats
    from longsift.formats.schema import FastPath, Schema
    from longsift.lengths import FastCount, Unit

    for name in ("chars", "words", "nltk"):
        unit = get_unit(name)
        assert isinstance(unit, Unit) and (unit.fast is None or isinstance(unit.fast, FastCount)), name
    chars, words = get_unit("chars").fast, get_unit("words").fast
    assert chars is not None and chars.count_one("héllo") == 5 and chars.chars_per_unit == 0
    assert words is not None and words.count_one(" a  b\n") == 2 and words.chars_per_unit == 2
    assert get_unit("nltk").fast is None  # counted in batches, pruned by bounds
    for name in formats.SCHEMAS:
        schema = formats.SCHEMAS.get(name)
        assert isinstance(schema, Schema) and (schema.FAST is None or isinstance(schema.FAST, FastPath)), name
    alpaca = formats.SCHEMAS.get("alpaca").FAST
    assert alpaca is not None and alpaca.decoder is not None
    assert alpaca.response({"instruction": "i", "output": "o"}) == "o" and alpaca.response({"output": "o"}) is None
    assert formats.SCHEMAS.get("sharegpt").FAST is None and formats.SCHEMAS.get("messages").FAST is None
