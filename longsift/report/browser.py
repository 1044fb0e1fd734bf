"""The prompt browser: every judged prompt with both answers, both verdicts and the judge's own words.

Rows are rendered here (escaped) into an inert `<template>`: the document holds only the page report.js clones
out of it (25 items), so 1,030 prompts x 2 orders x several judges keep the page's DOM small. report.js filters
on the data-* attributes: data-comparison, data-set, data-paper / data-strict (win, tie, lose or failed) and
data-flipped.
"""

from __future__ import annotations

from typing import Any

from longsift.records import Generation, Judgment
from longsift.report.collect import Comparison, RunData
from longsift.report.markup import Html, absent, join, tag
from longsift.report.names import model_label
from longsift.verdicts import POLICIES, PromptOutcome

OUTCOMES = ("win", "tie", "lose", "failed")
VERDICT_TEXT = {"a": "A better", "b": "B better", "tie": "tie", None: "failed"}


def browser(data: RunData) -> Html:
    comparisons = [(i, c) for i, c in enumerate(data.comparisons) if c.outcomes]
    if not comparisons:
        return tag("section", [tag("h2", "Prompt browser"), absent("no per-prompt judgments to browse.")], id="browser")
    sets = sorted({o.eval_set for _, c in comparisons for o in c.outcomes})
    items = [_item(data, i, c, o) for i, c in comparisons for o in sorted(c.outcomes, key=_order)]
    controls = tag("form", [
        _select("filter-comparison", "Comparison", [("all", "all")] + [(str(i), c.title) for i, c in comparisons]),
        _select("filter-set", "Test set", [("all", "all")] + [(s, s) for s in sets]),
        _select("filter-policy", "Policy", [(p, p) for p in POLICIES]),
        _select("filter-outcome", "Outcome (A's view)", [("all", "all"), *((o, o) for o in OUTCOMES),
                                                         ("flipped", "order flipped the verdict")]),  # fmt: skip
        tag("label", ["Search ", Html('<input id="filter-search" type="search" placeholder="text in prompt or '
                                     'answers">')]),  # fmt: skip
    ], class_="filters", id="filters")  # fmt: skip
    status = tag("p", [tag("span", str(len(items)), id="match-count"), f" of {len(items)} prompts match"],
                 class_="match-status")  # fmt: skip
    pager = tag("div", [Html('<button type="button" id="page-prev">‹ Previous</button>'),
                        tag("span", "", id="page-where"), Html('<button type="button" id="page-next">Next ›</button>')],
                id="pager", class_="pager", hidden="")  # fmt: skip
    store = tag("template", items, id="item-store")
    noscript = Html('<noscript><p class="absent">The prompt browser needs JavaScript to show its pages.</p></noscript>')
    return tag("section", [tag("h2", "Prompt browser"), controls, status, pager, noscript, tag("div", "", id="items"),
                           store], id="browser")  # fmt: skip


def _order(outcome: PromptOutcome) -> tuple[str, int, str]:
    digits = "".join(ch for ch in outcome.prompt_id if ch.isdigit())
    return outcome.eval_set, int(digits) if digits else 0, outcome.prompt_id


def _select(name: str, label: str, options: list[tuple[str, str]]) -> Html:
    rendered = [tag("option", text, value=value) for value, text in options]
    return tag("label", [label + " ", tag("select", rendered, id=name)])


def _item(data: RunData, index: int, comparison: Comparison, outcome: PromptOutcome) -> Html:
    key = (outcome.eval_set, outcome.prompt_id)
    gen_a = data.generations.get((comparison.model_a, *key))
    gen_b = data.generations.get((comparison.model_b, *key))
    prompt = gen_a or gen_b
    badges = [tag("span", f"{p}: {outcome.outcomes[p] or 'failed'}", class_=f"badge {outcome.outcomes[p] or 'failed'}")
              for p in POLICIES]  # fmt: skip
    if outcome.flipped:
        badges.append(tag("span", "order flipped", class_="badge flipped"))
    head = tag("header", [tag("span", f"{outcome.eval_set} · {outcome.prompt_id}", class_="where"), *badges])
    turns = prompt.turns if prompt else ()
    question = tag("div", [tag("h4", "Prompt"), *(tag("pre", t) for t in turns)] if turns else
                   [tag("h4", "Prompt"), tag("p", "prompt text not found in generate/", class_="muted")],
                   class_="prompt")  # fmt: skip
    answers = tag("div", [_answer("A", comparison.model_a, gen_a), _answer("B", comparison.model_b, gen_b)],
                  class_="answers")  # fmt: skip
    orders = comparison.judgments.get(key, {})
    verdicts = tag("div", [_verdict(order, orders.get(order)) for order in ("ab", "ba")], class_="verdicts")
    attrs: dict[str, Any] = {f"data_{p}": outcome.outcomes[p] or "failed" for p in POLICIES}
    return tag("article", [head, question, answers, verdicts], class_="item", data_comparison=str(index),
               data_set=outcome.eval_set, data_flipped="1" if outcome.flipped else "0", **attrs)  # fmt: skip


def _answer(side: str, model: str, generation: Generation | None) -> Html:
    title = tag("h4", [f"{side}: ", tag("span", model, class_="model")])
    if generation is None:
        return tag("div", [title, tag("p", "answer not found in generate/", class_="muted")], class_="answer")
    return tag("div", [title, *(tag("pre", output) for output in generation.outputs)], class_="answer")


def _verdict(order: str, judgment: Judgment | None) -> Html:
    shown = "A shown first" if order == "ab" else "B shown first"
    if judgment is None:
        return tag("div", [tag("h4", shown), tag("p", "no judgment in this order", class_="muted")], class_="verdict")
    verdict = judgment.verdict if judgment.status == "ok" else None
    facts: list[Any] = [tag("span", VERDICT_TEXT.get(verdict, str(verdict)), class_=f"verdict-{verdict or 'failed'}")]
    if judgment.score_a is not None or judgment.score_b is not None:
        facts.append(f" · scores A {_score(judgment.score_a)}, B {_score(judgment.score_b)}")
    if judgment.error:
        facts.append(tag("span", f" · {judgment.error}", class_="error"))
    explanation = tag("details", [tag("summary", "Judge's explanation (raw reply)"),
                                  tag("pre", judgment.raw or "(empty reply)", class_="raw")])  # fmt: skip
    return tag("div", [tag("h4", f"{shown} · {model_label(judgment.judge)}"), tag("p", join(facts)), explanation],
               class_="verdict")  # fmt: skip


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"
