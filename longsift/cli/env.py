"""`longsift env`: what a bug report needs: versions, devices, data folder, optional parts present."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import orjson
import typer

from longsift.manifest import library_versions
from longsift.options import Options, cli_option, option

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "nltk",
            "vllm", "alpaca-eval", "lm-eval", "httpx", "pyarrow")  # fmt: skip


def environment() -> dict[str, Any]:
    versions = library_versions(PACKAGES)
    from longsift.layout import data_dir

    data = data_dir(required=False)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
        "cuda": _cuda(),
        "data_dir": str(data.resolve()),
        "data_dir_present": (data / "README.md").is_file(),
        "hf_offline": os.environ.get("HF_HUB_OFFLINE") == "1",
    }


def _cuda() -> str | None:
    """Only asked when torch is installed; importing it is the one slow part of this command."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return "not available"
    return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


class EnvOptions(Options):
    as_json: bool = option(False, "Print one JSON object.", flags=("--json",))


def env(as_json: bool = cli_option(EnvOptions, "as_json")) -> None:
    """Print versions, devices and where the data is: paste it into bug reports."""
    info = environment()
    if as_json:
        print(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
        return
    for key, value in info.items():
        if key == "packages":
            for name, version in value.items():
                print(f"  {name:<13} {version or '-'}")
        else:
            print(f"{key:<17} {value}")


def register(app: typer.Typer) -> None:
    app.command()(env)
