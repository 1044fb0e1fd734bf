"""The refinement section: what `refine` did to each record (refined, unchanged, failed by reason), the response
lengths before and after, and a few refined answers side by side with the changed words marked (difflib)."""

from __future__ import annotations

import difflib
import statistics
from collections import Counter
from typing import Any

from longsift.records import Example
from longsift.report.markup import Html, join, number, table, tag

EXAMPLES = 3
STATUSES = ("refined", "unchanged", "failed")


def failure_kind(record: Example) -> str:
    """The first word of `metadata.refine_error` is its kind (longsift.refine.refine)."""
    error = str(record.metadata.get("refine_error") or "no reason recorded")
    return error.split(":")[0].split()[0] if error.strip() else "no reason recorded"


def counts(records: list[Example]) -> tuple[Counter[str], Counter[str]]:
    statuses = Counter(str(r.metadata.get("refine_status", "not refined")) for r in records)
    reasons = Counter(failure_kind(r) for r in records if r.metadata.get("refine_status") == "failed")
    return statuses, reasons


def _lengths(texts: list[str]) -> list[str]:
    words = [len(t.split()) for t in texts]
    if not words:
        return ["no records"] * 3
    return [number(statistics.fmean(words), 1), number(float(statistics.median(words)), 1), number(max(words))]


def _original(record: Example) -> str:
    return str(record.metadata.get("original_response", record.response))


def marked_diff(before: str, after: str) -> tuple[Html, Html]:
    """Both texts as escaped HTML, words only in `before` in <del>, words only in `after` in <ins>."""
    old, new = before.split(" "), after.split(" ")
    left: list[Any] = []
    right: list[Any] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        a_text, b_text = " ".join(old[i1:i2]), " ".join(new[j1:j2])
        if op == "equal":
            left += [a_text, " "]
            right += [b_text, " "]
            continue
        if a_text:
            left += [tag("del", a_text), " "]
        if b_text:
            right += [tag("ins", b_text), " "]
    return join(left), join(right)


def refinement_block(name: str, records: list[Example]) -> list[Any]:
    statuses, reasons = counts(records)
    total = len(records)
    status_rows = [[s, number(statuses.get(s, 0)), f"{100.0 * statuses.get(s, 0) / total:.1f}%"] for s in STATUSES]
    status_rows += [[f"failed: {kind}", number(c), f"{100.0 * c / total:.1f}%"] for kind, c in reasons.most_common()]
    refined = [r for r in records if r.metadata.get("refine_status") == "refined"]
    length_rows = [["before (all records)", *_lengths([_original(r) for r in records])],
                   ["after (all records)", *_lengths([r.response for r in records])],
                   ["before (refined only)", *_lengths([_original(r) for r in refined])],
                   ["after (refined only)", *_lengths([r.response for r in refined])]]  # fmt: skip
    body: list[Any] = [
        tag("h3", f"{name}: {total:,} records"),
        table(["Status", "Records", "Share"], status_rows, class_="refine-status"),
        table(["Response length (words)", "Mean", "Median", "Max"], length_rows, class_="refine-lengths"),
    ]
    if not refined:
        body.append(tag("p", "No record was refined, so there is nothing to show side by side.", class_="muted"))
    for record in refined[:EXAMPLES]:
        before, after = marked_diff(_original(record), record.response)
        body.append(tag("div", [
            tag("h4", [f"{record.id}: ", tag("span", record.prompt[:160], class_="muted")]),
            tag("div", [tag("div", [tag("h4", "Before"), tag("p", before, class_="diff")], class_="answer"),
                        tag("div", [tag("h4", "After"), tag("p", after, class_="diff")], class_="answer")],
                class_="answers"),
        ], class_="refine-example"))  # fmt: skip
    return body
