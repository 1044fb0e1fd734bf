"""Tiny HTML building blocks. Every piece of text is escaped unless it is already `Html` we built ourselves:
model outputs, prompts, judge text and even model names are untrusted."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import orjson


class Html(str):
    """Markup we produced; everything else is text and gets escaped."""


def esc(value: Any) -> Html:
    return value if isinstance(value, Html) else Html(html.escape("" if value is None else str(value), quote=True))


def tag(name: str, content: Any = "", **attrs: Any) -> Html:
    """<name attrs>content</name>; attribute names use _ for - (data_set -> data-set), class_ for class."""
    rendered = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{esc(value)}"' for key, value in attrs.items() if value is not None
    )
    return Html(f"<{name}{rendered}>{join(content) if _is_seq(content) else esc(content)}</{name}>")


def _is_seq(value: Any) -> bool:
    return isinstance(value, list | tuple)


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(esc(part) for part in parts if part is not None))


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], **attrs: Any) -> Html:
    head = tag("thead", [tag("tr", [tag("th", h) for h in header])])
    body = tag("tbody", [tag("tr", [tag("td", cell) for cell in row]) for row in rows])
    return tag("table", [head, body], **attrs)


def image(data_base64: str | None, alt: str, mime: str = "image/svg+xml") -> Html | None:
    """A plot (SVG from `longsift.report.plots` by default), embedded: the page fetches nothing."""
    if data_base64 is None:
        return None
    return Html(f'<img class="plot" alt="{esc(alt)}" src="data:{mime};base64,{data_base64}">')


def pre_json(value: Any) -> Html:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    return tag("pre", text, class_="json")


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def absent(message: str, hint: str | None = None) -> Html:
    parts: list[Any] = [tag("strong", "Absent. "), message]
    if hint:
        parts += [" ", tag("code", hint)]
    return tag("p", parts, class_="absent")
