"""How a local model is loaded, decided once for every stage: `from_pretrained` from a folder or a hub id, offline
where the folder exists or the environment says so, no repository code unless asked, a pad token when the tokenizer
has none (UNK, else EOS: what training used), left padding (generation continues at the right edge of every row),
and the device and dtype.

A folder that looks like a model but is half saved (config.json without whole weights, an index naming missing
shards) is refused before anything loads, with one line naming what is missing.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError, MissingDependencyError

DTYPES = ("auto", "float32", "bfloat16", "float16")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """device None: CUDA when available, else CPU. local_files_only None: True for an existing folder or when
    HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set, else a hub id may be fetched."""

    device: str | None = None
    dtype: str = "auto"
    local_files_only: bool | None = None
    trust_remote_code: bool = False

    def offline(self, model: str) -> bool:
        if self.local_files_only is not None:
            return self.local_files_only
        flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
        return Path(model).is_dir() or any(flag.lower() in ("1", "true", "yes", "on") for flag in flags)

    def pretrained_args(self, model: str) -> dict[str, Any]:
        return {"local_files_only": self.offline(model), "trust_remote_code": self.trust_remote_code}


class ModelFolder:
    """What both engines share: the model's path, its load options and its tokenizer, loaded on first use."""

    def __init__(self, model: str, options: LoadOptions | None = None) -> None:
        self.path = str(model)
        self.options = options or LoadOptions()
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.path, self.options)
        return self._tokenizer


def require_transformers(what: str) -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError:
        raise MissingDependencyError("transformers", "train", what) from None
    return transformers


def torch_dtype(name: str) -> Any:
    import torch

    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}")
    return "auto" if name == "auto" else getattr(torch, name)


def pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def check_model_folder(model: str) -> None:
    """Refuse a folder whose config.json is there but whose weights are not whole (a save that was cut short)."""
    folder = Path(model)
    if not (folder / "config.json").is_file():
        return  # a hub id, or not a model folder at all: from_pretrained says what is wrong
    if any((folder / name).is_file() for name in ADAPTER_FILES):
        return  # a LoRA adapter folder: its base model is checked when peft loads it
    for index_name in WEIGHT_INDEXES:
        index = folder / index_name
        if index.is_file():
            _check_shards(folder, index)
            return
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not weights:
        raise ConfigError(f"{folder}: half-saved model folder (config.json but no {' or '.join(WEIGHT_FILES)})")
    _check_weights(weights[0])


def _check_shards(folder: Path, index: Path) -> None:
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{index}: unreadable weight index ({exc})") from None
    missing = [name for name in shards if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder}: half-saved model folder ({len(missing)} of {len(shards)} shards missing: "
                          f"{', '.join(missing[:3])})")  # fmt: skip
    for name in shards:
        _check_weights(folder / name)


def _check_weights(path: Path) -> None:
    if path.suffix == ".safetensors":
        _check_safetensors(path)
    elif path.suffix == ".bin" and not zipfile.is_zipfile(path):  # torch.save writes a zip archive since torch 1.6
        raise ConfigError(f"{path}: truncated weights file (not a whole torch archive)")


def _check_safetensors(path: Path) -> None:
    """A safetensors file states its size: an 8-byte header length, the JSON header, then the tensors."""
    size = path.stat().st_size
    try:
        with path.open("rb") as file:
            header_length = int.from_bytes(file.read(8), "little")
            header = json.loads(file.read(header_length)) if 0 < header_length < size else None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable weights ({exc})") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{path}: truncated weights file (no whole header)")
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_length + max(ends, default=0)
    if size < expected:
        raise ConfigError(f"{path}: truncated weights file ({size} of {expected} bytes)")


def load_tokenizer(model: str, options: LoadOptions) -> Any:
    transformers = require_transformers("Local models")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model, **options.pretrained_args(model))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the model {model!r}: {_first_line(exc)}") from None
    tokenizer.padding_side = "left"
    return with_pad_token(tokenizer)


def with_pad_token(tokenizer: Any) -> Any:
    """Training and inference pad alike: with UNK, else EOS, where the tokenizer has no pad token (the paper's
    FastChat fork pads with <unk>)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def load_weights(model: str, options: LoadOptions, auto_class: str = "AutoModelForCausalLM") -> Any:
    """The model in eval mode on its device; `auto_class` AutoModel gives an encoder for embeddings. Callers check
    the folder first (check_model_folder), before the tokenizer loads."""
    transformers = require_transformers("Local models")
    loader = getattr(transformers, auto_class)
    try:
        loaded = loader.from_pretrained(model, dtype=torch_dtype(options.dtype), **options.pretrained_args(model))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the model {model!r}: {_first_line(exc)}") from None
    return loaded.to(pick_device(options.device)).eval()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
