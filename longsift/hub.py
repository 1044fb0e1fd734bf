"""Can a Hugging Face Hub id be used here and now? Answered in a second, before anything starts downloading.

Offline (HF_HUB_OFFLINE=1, or the Hub's host not answering within a few seconds) an id is usable only when the
Hugging Face cache already holds it; otherwise the caller stops at once with one line that says which option or
recipe key to set to a local file, instead of a minute of retries and a traceback.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from longsift.errors import ConfigError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DATA_SUFFIXES = (".json", ".jsonl", ".gz", ".parquet", ".csv", ".txt", ".yaml", ".yml", ".arrow")
PROBE_SECONDS = 3.0


def looks_like_hub_id(value: object) -> bool:
    """`org/name`, not an existing path, not a data file name (a missing `data/x.jsonl` is a missing file)."""
    if not isinstance(value, str) or not HUB_ID.match(value) or "${" in value:
        return False
    return not value.lower().endswith(DATA_SUFFIXES) and not Path(value).exists()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def in_local_cache(hub_id: str) -> bool:
    """The Hugging Face caches (hub files, or a `datasets` build) already hold this id as a model or a dataset."""
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    hub = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub")
    datasets = Path(os.environ.get("HF_DATASETS_CACHE") or home / "datasets")
    flat = hub_id.replace("/", "--")
    candidates = [hub / f"models--{flat}", hub / f"datasets--{flat}", datasets / hub_id.replace("/", "___")]
    return any(path.is_dir() for path in candidates)


@functools.cache
def hub_reachable() -> bool:
    """A TCP connection to the Hub's host (HF_ENDPOINT's) opens within PROBE_SECONDS."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def unreachable_reason(hub_id: str) -> str | None:
    """Why `hub_id` cannot be used now, or None when it can (cached, or the Hub answers)."""
    if in_local_cache(hub_id):
        return None
    if hub_offline():
        return "HF_HUB_OFFLINE is set and the Hugging Face cache does not hold it"
    if not hub_reachable():
        return "the Hugging Face Hub cannot be reached and the cache does not hold it"
    return None


def require_usable(hub_id: str, what: str, fix: str) -> None:
    """Raise one ConfigError line naming `fix` (the flag or recipe key to set) when `hub_id` cannot be used."""
    reason = unreachable_reason(hub_id)
    if reason is not None:
        raise ConfigError(f"{what} {hub_id!r} is a Hugging Face Hub id: {reason}; {fix}")


def check_stage(stage: str, options: dict[str, object]) -> None:
    """Before a recipe stage runs: each of its options that is a Hub id can be used, else one line naming every
    key to set."""
    blocked = {key: (str(value), reason) for key, value in options.items()
               if looks_like_hub_id(value) and (reason := unreachable_reason(str(value))) is not None}  # fmt: skip
    if blocked:
        ids = ", ".join(f"{key} {value!r}" for key, (value, _) in blocked.items())
        reason = next(iter(blocked.values()))[1]
        sets = " ".join(f"--set stages.{stage}.with.{key}=PATH" for key in blocked)
        raise ConfigError(f"stage {stage!r}: {ids}: Hugging Face Hub id(s) that cannot be used: {reason}; "
                          f"use local files or folders: {sets}")  # fmt: skip
