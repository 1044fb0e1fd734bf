"""One generic name -> object registry used for formats, selectors, units, templates, backends, judges.

An entry may be a lazy "package.module:attr" string so that heavy dependencies load only when chosen.
"""

from __future__ import annotations

import difflib
import importlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar, overload

from longsift.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    _instances: ClassVar[weakref.WeakSet[Registry[Any]]] = weakref.WeakSet()

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        Registry._instances.add(self)

    @classmethod
    def snapshot_all(cls) -> dict[Registry[Any], dict[str, Any]]:
        """The entries of every registry now, for `restore_all` (a test's own entries must not outlive it)."""
        return {registry: dict(registry._entries) for registry in cls._instances}

    @staticmethod
    def restore_all(snapshot: dict[Registry[Any], dict[str, Any]]) -> None:
        """Put back what `snapshot_all` saw: entries added since are gone, replaced ones are back."""
        for registry, entries in snapshot.items():
            registry._entries = dict(entries)

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T | str) -> T | str: ...

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T | str:
        """Register `obj` (or a "module:attr" string) under `name`; without `obj`, act as a decorator."""
        if obj is not None:
            self._entries[name] = obj
            return obj

        def decorate(target: T) -> T:
            self._entries[name] = target
            return target

        return decorate

    def get(self, name: str) -> T:
        try:
            entry = self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.suggest(name), self.names()) from None
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            module = importlib.import_module(module_name)
            loaded: T = getattr(module, attr) if attr else module  # type: ignore[assignment]
            self._entries[name] = loaded
            return loaded
        return entry

    def suggest(self, name: str) -> list[str]:
        return difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
