"""Strict typed decoders (msgspec) for selection's hot loop: checks in C instead of a dict per record.

msgspec decodes a JSON line straight into a small struct, checking types as it goes, faster than orjson
builds the dict. A decoder built here must accept a line only if orjson accepts it too, with equal values
in the fields read from it; whatever it refuses goes to the exact (orjson) path, so it may be stricter.
Hence every field is typed, from a sample record of the file: unknown fields are refused (msgspec would
skip them without checking UTF-8 or number ranges as orjson does), strings are checked UTF-8, and numbers
decode as floats, so one beyond a double's range is refused as orjson refuses it (as an `int` msgspec
would take it). tests/test_select.py compares the two decoders on hostile lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import reduce
from operator import or_
from typing import Any

Kinds = dict[str, Any]  # JSON kinds seen in a value: "null", "bool", "number", "str", "list" -> Kinds, "dict" -> Kinds

_CACHE: dict[tuple[str, str], Callable[[bytes], Any]] = {}


def decoder_for(name: str, known: list[tuple[str, Any, Any]], sample: dict[str, Any]) -> Callable[[bytes], Any]:
    """`decode(line)` into a struct with the `known` fields (name, type, default or msgspec.field) plus
    every other field of `sample`, optional and typed by its kinds. Built once per shape and process; no
    Python callback runs per line (a `__post_init__` cost a quarter of the decode)."""
    import msgspec

    declared = {getattr(default, "name", None) or field for field, _, default in known}
    extra = {key: _kinds_of(value) for key, value in sample.items() if key not in declared}
    signature = repr(sorted(extra.items()))
    if (name, signature) not in _CACHE:
        if len(_CACHE) >= 256:  # a file whose every block is shaped anew: keep memory bounded
            _CACHE.clear()
        fields = list(known)
        for i, (key, kinds) in enumerate(sorted(extra.items())):
            fields.append((f"extra_{i}", _type_of(kinds) | None, msgspec.field(default=None, name=key)))
        struct = msgspec.defstruct(name, fields, forbid_unknown_fields=True, gc=False)
        _CACHE[name, signature] = msgspec.json.Decoder(struct).decode
    return _CACHE[name, signature]


def _kinds_of(value: Any) -> Kinds:
    if value is None:
        return {"null": True}
    if isinstance(value, bool):
        return {"bool": True}
    if isinstance(value, int | float):
        return {"number": True}
    if isinstance(value, str):
        return {"str": True}
    if isinstance(value, list):
        return {"list": _merged(_kinds_of(item) for item in value)}
    return {"dict": _merged(_kinds_of(item) for item in value.values())}


def _merged(all_kinds: Iterable[Kinds]) -> Kinds:
    out: Kinds = {}
    for kinds in all_kinds:
        for kind, inner in kinds.items():
            out[kind] = _merged([out[kind], inner]) if kind in ("list", "dict") and kind in out else inner
    return out


def _type_of(kinds: Kinds) -> Any:
    """The msgspec type of a value of these kinds; an empty list's items must be strings (else: refused)."""
    scalar = {"null": type(None), "bool": bool, "number": float, "str": str}
    types: list[Any] = [scalar[kind] for kind in scalar if kind in kinds]
    if "list" in kinds:
        types.append(list[_type_of(kinds["list"])])  # type: ignore[misc]
    if "dict" in kinds:
        types.append(dict[str, _type_of(kinds["dict"])])  # type: ignore[misc]
    return reduce(or_, types) if types else str
