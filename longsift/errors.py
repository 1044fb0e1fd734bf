"""Errors that name the file, the row and what to do about it."""

from __future__ import annotations


class LongsiftError(Exception):
    """Base class: every error longsift raises on purpose is one of these."""


class UnknownNameError(LongsiftError, KeyError):
    def __init__(self, kind: str, name: str, suggestions: list[str], known: list[str]) -> None:
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}.")
        self.kind, self.name = kind, name

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataError(LongsiftError):
    """A problem with input data, located as precisely as we can."""

    def __init__(self, path: str, reason: str, line: int | None = None, row: int | None = None) -> None:
        self.path, self.reason, self.line, self.row = path, reason, line, row
        super().__init__(self.location() + ": " + reason)

    def __reduce__(self) -> tuple[type, tuple[str, str, int | None, int | None]]:  # raised in a worker process
        return (type(self), (self.path, self.reason, self.line, self.row))

    def location(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        if self.row is not None:
            where += f" (row {self.row})"
        return where


class UnknownFormatError(DataError):
    pass


class MissingDependencyError(LongsiftError, ImportError):
    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'longsift[{extra}]' (or pip install {package})"
        )


class ConfigError(LongsiftError):
    pass


class UsageError(LongsiftError):
    """A command asked for something it must not do (an output on top of its input, an unwritable folder)."""


class ParseError(LongsiftError, ValueError):
    """An LLM reply that a PromptTask parser could not read; carries the text for the report."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(reason)
        self.reason, self.text = reason, text
