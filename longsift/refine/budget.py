"""Cut an answer so that the whole prompt fits a token budget.

The paper's refine script tokenized instruction + input + output with the Llama-2 tokenizer and, when that came
to more than 2048 tokens, removed `n - 2048` *characters* from the end of the output (`output[:-gap]`): a cut
several times too small, which left prompts over budget. Here the rendered prompt (every message) is counted in
tokens and the answer is cut at a token boundary until the prompt fits.

Tokens are counted with longsift.llm.tokens.TokenCounter: a tokenizer loaded from local files only (the model
name sent to an API is never used to find one), or, without one, an estimate of characters per token. For a
budget the estimate must err towards more tokens, hence a lower ratio than the LLM layer's cost estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from longsift.llm.tokens import TokenCounter

# English BPE text runs at ~4 characters per token (GPT, Llama-2); 3 over-counts, so estimated prompts stay in
# budget for prose. Code, numbers and non-Latin scripts run denser: pass --tokenizer when that matters.
BUDGET_CHARS_PER_TOKEN = 3.0
DEFAULT_MAX_PROMPT_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class Fitted:
    """An answer cut to fit: `text` is what the prompt shows; `tokens` counts the whole prompt with it."""

    text: str
    tokens: int
    truncated: bool


def fit_answer(answer: str, measure: Callable[[str], int], counter: TokenCounter, budget: int) -> Fitted | None:
    """The longest start of `answer` for which `measure(answer)` (the prompt's tokens) is at most `budget`.

    None when even an empty answer does not fit (the instruction alone is over budget).
    """
    full = measure(answer)
    if full <= budget:
        return Fitted(answer, full, truncated=False)
    room = budget - measure("")
    if room < 0:
        return None
    # Token counts are not quite additive across the join, so shrink until the whole prompt fits.
    while room >= 0:
        cut = counter.truncate(answer, room).rstrip()
        tokens = measure(cut)
        if tokens <= budget:
            return Fitted(cut, tokens, truncated=True)
        room -= max(1, tokens - budget)
    return None


def paper_char_cut(instruction: str, input_text: str, answer: str, counter: TokenCounter, budget: int) -> str:
    """`--compat paper`: refine_responses.py's cut. It counted instruction + input + output (stripped, joined with
    nothing) with the Llama-2 tokenizer as called by default (BOS included) and, over 2048 tokens, dropped
    `n - 2048` *characters* from the end of the output (`output_i[:-gap]`); without a tokenizer, the estimate."""
    whole = instruction + input_text + answer
    tokenizer = counter.tokenizer
    n = len(tokenizer(whole)["input_ids"]) if tokenizer is not None else counter.count(whole)
    return answer[: -(n - budget)] if n > budget else answer
