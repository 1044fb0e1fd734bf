"""`ifd`: Instruction-Following Difficulty (Li et al., NAACL 2024, "From Quantity to Quality", Cherry LLM).

IFD = s(A | Q) / s(A): the mean loss of the answer's tokens given the instruction, over their mean loss without it.
A record with IFD > 1 (the instruction makes the answer *less* likely) is an anomaly and is dropped, as the paper's
script does; the k records with the highest IFD are kept (ties: the earlier source row). Selected records carry
their score in `metadata.ifd`.

What matches tianyi-lab/Cherry_LLM (cherry_seletion/data_analysis.py `--mod cherry` and data_by_IFD.py):
- texts: with `ifd_prompt: alpaca` the instruction Q is the Alpaca template filled with instruction (and input), the
  conditioned text is Q + answer; with `ifd_prompt: wiz`, Q is the instruction (`\\nInput:` + input when there is one)
  + `\\n\\n### Response:`. The unconditioned text is `### Response:` + answer, in both.
- tokens: each text is tokenized whole (special tokens as the tokenizer adds them), cut to its first
  `max_length` tokens (`ifd_max_length`, default 512); the answer starts at the token count of the text before
  the answer's last occurrence (`text.rfind(answer)`), and every token from there to the cut is scored. The
  unconditioned text is cut to `max_length - len(Q tokens) - 2`, so both score about the same answer tokens.
- skipped as there: `max_length - len(Q tokens) - 2 <= 4` ("instruction too long"), no answer token left ("no
  answer tokens"), `len(Q tokens) + answer tokens > max_length`; IFD > 1 is dropped (IFD = 1 kept), unless
  `keep_ifd_above_one`.
Where it deviates: any causal LM and its tokenizer through the model runner (Cherry loads Llama classes); records
in batches of similar length, right-padded with attention masks (Cherry: one record per forward pass; the results
agree to float rounding, tests/test_select_ifd.py), each pass of a fixed shape (`batch_size` rows, a multiple of
SHAPE_STEP tokens; models/hf.py score_tokens) so that a record's IFD is the same bits whatever records share its
batch: in the whole pool, in one shard of it on Ray, in any order (ties and `metadata.ifd` stay exact); a chat
record with more than one exchange uses the turns before its last answer, each as `role: text`, as Q and its last
answer as A (Cherry reads Alpaca records only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.errors import ConfigError
from longsift.models.batching import SHAPE_STEP
from longsift.models.loading import LoadOptions
from longsift.records import Example
from longsift.select.scoring import Item, Skip

PROMPTS = ("alpaca", "wiz")
PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
ANSWER_ALONE_PREFIX = "### Response:"


@dataclass(frozen=True, slots=True)
class Texts:
    instruction: str  # Q, as tokenized for its length
    whole: str  # Q + A
    alone: str  # "### Response:" + A
    answer: str


@dataclass(frozen=True, slots=True)
class Span:
    """Token rows to score and where the answer's tokens start in each."""

    conditioned: list[int]
    conditioned_start: int
    alone: list[int]
    alone_start: int


def texts_of(example: Example, prompt: str = "alpaca") -> Texts:
    turns = [m for m in example.messages if m.role != "system"]
    if len(turns) == 2 and turns[0].role == "user" and turns[1].role == "assistant":
        instruction, given, answer = example.instruction, example.input, turns[1].content
    else:
        last = max((i for i, m in enumerate(example.messages) if m.role == "assistant"), default=-1)
        before = example.messages[:last] if last >= 0 else example.messages
        instruction = "\n\n".join(f"{m.role}: {m.content}" for m in before)
        given, answer = "", example.messages[last].content if last >= 0 else ""
    if prompt == "alpaca":
        template = PROMPT_INPUT if given else PROMPT_NO_INPUT
        question = template.format_map({"instruction": instruction, "input": given})
        whole = question + answer
    else:
        question = instruction + (f"\nInput:{given}" if given else "")
        whole = question + "\n\n### Response:" + answer
        question = instruction  # Cherry measures the wiz instruction's length without the response marker
    return Texts(question, whole, ANSWER_ALONE_PREFIX + answer, answer)


def encode(tokenizer: Any, text: str, max_length: int | None = None) -> list[int]:
    if max_length is None:
        return list(tokenizer(text, add_special_tokens=True)["input_ids"])
    return list(tokenizer(text, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"])


def span_of(tokenizer: Any, texts: Texts, max_length: int) -> Span | Skip:
    """The two token rows Cherry LLM scores for one record, or why it skips the record."""
    question_length = len(encode(tokenizer, texts.instruction, max_length))
    alone_limit = max_length - question_length - 2
    if alone_limit <= 4:
        return Skip("IFD: instruction too long for max length")

    def cut(text: str, limit: int) -> tuple[list[int], int]:
        ids = encode(tokenizer, text, limit)
        return ids, len(encode(tokenizer, text[: text.rfind(texts.answer)]))

    alone, alone_start = cut(texts.alone, alone_limit)
    conditioned, conditioned_start = cut(texts.whole, max_length)
    if len(alone) <= alone_start or len(conditioned) <= conditioned_start or alone_start < 1:
        return Skip("IFD: no answer tokens")
    if question_length + len(alone) - alone_start > max_length:
        return Skip("IFD: instruction too long for max length")
    return Span(conditioned, conditioned_start, alone, alone_start)


def mean_answer_loss(scored: Sequence[Any], start: int) -> float:
    """scored[j] is token j + 1 given tokens 0..j: the answer's tokens start..end are scored[start-1:]."""
    losses = [-token.logprob for token in scored[start - 1 :]]
    return sum(losses) / len(losses)


def ifd_scores(
    runner: Any, examples: Sequence[Example], *, max_length: int = 512, prompt: str = "alpaca", batch_size: int = 8
) -> list[float | Skip]:
    """IFD of each example (or why it has none), all forward passes batched by length on the model runner."""
    spans = [span_of(runner.tokenizer, texts_of(example, prompt), max_length) for example in examples]
    real = [span for span in spans if isinstance(span, Span)]
    rows = [row for span in real for row in (span.conditioned, span.alone)]
    scored = iter(runner.score_tokens(rows, top=0, batch_size=batch_size, shape_step=SHAPE_STEP) if rows else [])
    out: list[float | Skip] = []
    for span in spans:
        if isinstance(span, Skip):
            out.append(span)
            continue
        conditioned = mean_answer_loss(next(scored), span.conditioned_start)
        alone = mean_answer_loss(next(scored), span.alone_start)
        out.append(conditioned / alone if alone > 0 else Skip("IFD: answer has zero loss alone"))
    return out


@dataclass(frozen=True)
class IFD:
    """The k records with the highest IFD below 1, scored by `model` (a causal LM path or hub id)."""

    model: str | None = None
    ifd_max_length: int = 512
    ifd_prompt: str = "alpaca"
    keep_ifd_above_one: bool = False
    batch_size: int = 8
    device: str | None = None
    trust_remote_code: bool = False
    name = "ifd"
    needs_example = True
    uses_length = False
    in_process = True  # the model loads once, in this process (not in forked block workers)
    metadata_key = "ifd"

    def __post_init__(self) -> None:
        if self.ifd_prompt not in PROMPTS:
            raise ConfigError(f"--ifd-prompt must be one of {', '.join(PROMPTS)}, got {self.ifd_prompt!r}")
        if not self.scorer:
            raise ConfigError(f"--method {self.name} needs --model (a causal LM path or hub id)")
        if self.ifd_max_length < 8:
            raise ConfigError(f"--ifd-max-length must be at least 8, got {self.ifd_max_length}")

    @property
    def scorer(self) -> str | None:
        return self.model

    def runner(self) -> Any:
        from longsift.models.embed import runner_for

        return runner_for(str(self.scorer), LoadOptions(device=self.device, trust_remote_code=self.trust_remote_code))

    def scores(self, examples: Sequence[Example]) -> list[float | Skip]:
        return ifd_scores(self.runner(), examples, max_length=self.ifd_max_length, prompt=self.ifd_prompt,
                          batch_size=self.batch_size)  # fmt: skip

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]:
        examples = [item.example for item in items]
        assert all(example is not None for example in examples)
        above = Skip("IFD above 1")
        return [
            value if isinstance(value, Skip) or self.keep_ifd_above_one or value <= 1 else above
            for value in self.scores(examples)  # type: ignore[arg-type]
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.name, "model": self.scorer, "max_length": self.ifd_max_length, "prompt": self.ifd_prompt,
            "keep_above_one": self.keep_ifd_above_one,
            "score": "IFD = mean answer-token loss given the instruction / without it (Cherry LLM)",
            "ties": "equal IFD: the earlier source row wins",
        }  # fmt: skip
