"""Turn our own errors into one clear line and exit code 2, not a traceback."""

from __future__ import annotations

import sys

import typer

from longsift.errors import LongsiftError


def run_app(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except LongsiftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
