"""Turn our own errors into one clear line and exit code 2, not a traceback."""

from __future__ import annotations

import sys

import typer

from longsift.errors import LongsiftError


def run_app(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except LongsiftError as exc:
        from longsift.llm.redact import redact  # here: importing longsift.llm costs a data command ~0.2 s

        print(f"error: {redact(str(exc))}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))  # 2: the user's to fix; a stage that ran but failed says 1
