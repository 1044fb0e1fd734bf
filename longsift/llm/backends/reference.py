"""Reference judges that need no LLM: `longest` prefers the longer answer (as AlpacaEval's `longest` annotator),
`random` tosses a seeded coin. They are backends, so their verdicts go through the same judge path as an LLM's
(both orders, the template's parser, the cache, every downstream number): what they score is the baseline an LLM
judge is compared with (longsift.analyze.length_bias: how much of a judge a length-only judge reproduces).

They read the pair from `ChatRequest.inputs` (set by the pairwise judge: the answers in presented order and the
name of the template's parser), not from the rendered prompt: parsing answers back out of a template is
ambiguous whenever an answer contains the template's own words, and a user's template could be anything. The
reply is written in the form the template's parser reads, so reading it is the judge's ordinary code.

`longest`: length is the answer's number of characters (Python code points, the unit of the judge's
`length_a`/`length_b` and of AlpacaEval's avg_length), whitespace included, untrimmed. Equal lengths are a tie;
a template that cannot say "tie" (AlpacaEval's m/M) gets the answer shown first, so the two orders disagree and
the both-order policies count that prompt a tie.
`random`: a fair coin between the two answers (never a tie), drawn from a hash of the seed, the request's
sampling seed and the prompt, so the same request always gets the same verdict (the cache and reruns agree)
and a resample (another sampling seed) gets a new toss. The seed is the LLM settings' seed, part of the cache
key (`key_model`).
A request that is not a pair (refinement, MT-Bench single grading) or a parser they cannot answer for stops the
run with a ConfigError: no reply of theirs would mean anything there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from longsift.errors import ConfigError
from longsift.llm.backends.base import LocalBackend
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion, Usage

Preferred = Literal["first", "second", "tie"]
SCORES = {"first": (2, 1), "second": (1, 2), "tie": (1, 1)}  # score-pair replies: "2 1" etc., 0-10 scale
BRACKETS = {"first": "[[A]]", "second": "[[B]]", "tie": "[[C]]"}
IDENTIFIERS = {"first": "m", "second": "M"}  # no tie: the first shown wins an equal pair (see above)
SCORE_FORMATS = ("score-pair", "paper-gpt4", "paper-palm2")
REFERENCE_JUDGES = ("longest", "random")  # their backend names (longsift.llm.backends.BACKENDS)


def reply_text(preferred: Preferred, reply_format: str, reason: str) -> str:
    """A reply the template's parser reads as `preferred`."""
    if reply_format in SCORE_FORMATS:
        first, second = SCORES[preferred]
        return f"{first} {second}\n{reason}"
    if reply_format == "bracket-verdict":
        return f"{reason}\n{BRACKETS[preferred]}"
    if reply_format == "model-identifier":
        return IDENTIFIERS.get(preferred, "m")
    raise ConfigError(f"a reference judge cannot reply in the form of parser {reply_format!r}; it knows: "
                         f"{', '.join((*SCORE_FORMATS, 'bracket-verdict', 'model-identifier'))}")  # fmt: skip


def pair_of(request: ChatRequest) -> Mapping[str, Any]:
    inputs = request.inputs
    if not inputs or inputs.get("kind") != "pair":
        raise ConfigError("a reference judge (longest, random) judges pairs only (judge pairwise): this request "
                             "carries no pair of answers")  # fmt: skip
    return inputs


class ReferenceJudge(LocalBackend):
    """A LocalBackend whose verdict is a rule on the pair of answers; subclasses give `prefer`."""

    batch_size = 256

    def __init__(self, model: str | None = None, seed: int = 0) -> None:
        self.model = model or self.name
        self.seed = seed

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> ReferenceJudge:
        return cls(settings.model, settings.seed)

    def prefer(self, request: ChatRequest, first: str, second: str) -> tuple[Preferred, str]:
        raise NotImplementedError

    def generate_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return [self.answer(request) for request in requests]

    def answer(self, request: ChatRequest) -> Completion:
        pair = pair_of(request)
        preferred, reason = self.prefer(request, str(pair["first"]), str(pair["second"]))
        text = reply_text(preferred, str(pair["reply_format"]), reason)
        return Completion(text, "stop", Usage(0, 0))


class LongestJudge(ReferenceJudge):
    name: ClassVar[str] = "longest"

    def prefer(self, request: ChatRequest, first: str, second: str) -> tuple[Preferred, str]:
        preferred: Preferred = "first" if len(first) > len(second) else "second" if len(second) > len(first) else "tie"
        return preferred, f"Length only: {len(first)} vs {len(second)} characters."


class RandomJudge(ReferenceJudge):
    name: ClassVar[str] = "random"

    def key_model(self) -> str:
        return f"{self.model}/seed={self.seed}"

    def prefer(self, request: ChatRequest, first: str, second: str) -> tuple[Preferred, str]:
        digest = hashlib.sha256(f"{self.seed}\0{request.sampling.seed}\0".encode())
        for message in request.messages:
            digest.update(f"{message.role}\0{message.content}\0".encode())
        preferred: Preferred = "first" if digest.digest()[0] % 2 == 0 else "second"
        return preferred, f"A coin toss (seed {self.seed})."
