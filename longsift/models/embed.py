"""Text embeddings for the selectors (kcenter, diverse, dedup-semantic), from the one model runner, cached on disk.

`embed_texts(model, texts)` gives one L2-normalised, mean-pooled float32 row per text (`TransformersRunner.embed`:
any sentence-transformers folder that pools by mean, or any Hugging Face encoder, by path or hub id). Vectors are
kept in `<cache>/embeddings/<model key>/`, keyed by the model and a BLAKE2b hash of each text, so a text is never
embedded twice by the same model: each call that computes new vectors writes one shard, `<n>.npy` (the vectors)
then `<n>.keys.npy` (their 16-byte text hashes), both by atomic rename; a shard counts only once its keys file is
there, so a killed run leaves at most an unused vectors file. Plain numpy arrays (`allow_pickle=False`), no pickle.

The model key hashes what changes the vectors: the model's path (absolute, for a folder) or hub id, for a
folder its config.json and the sizes and modification times of its files, and the shape of the forward passes
(`batch_size` rows, widths a multiple of SHAPE_STEP: models/hf.py embed), which fixes their last bits; vectors of
the earlier length-batched passes (no shape in their key) are in another folder and not used.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longsift.models.batching import SHAPE_STEP
from longsift.models.loading import LoadOptions
from longsift.outputs import atomic_output

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
KEY_BYTES = 16


def default_cache_dir() -> Path:
    base = os.environ.get("LONGSIFT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"), "longsift"
    )
    return Path(base) / "embeddings"


def model_key(model: str, batch_size: int = 32) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"passes of {batch_size} rows x widths a multiple of {SHAPE_STEP}\n".encode())
    folder = Path(model)
    if folder.is_dir():
        digest.update(str(folder.resolve()).encode())
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        config = folder / "config.json"
        if config.is_file():
            digest.update(config.read_bytes())
    else:
        digest.update(model.encode())
    return digest.hexdigest()


def embedding_width(model: str) -> int | None:
    """A vector's length (the encoder's hidden size), from a model folder's config.json; None: not known here."""
    import json

    config = Path(model) / "config.json"
    if not config.is_file():
        return None
    width = json.loads(config.read_text(encoding="utf-8")).get("hidden_size")
    return width if isinstance(width, int) else None


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


class EmbeddingCache:
    """The vectors one model has computed, by text hash; `folder` holds its shards."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rows: dict[bytes, tuple[int, int]] = {}
        self._shards: list[Any] = []
        self._load()

    def _load(self) -> None:
        import numpy as np

        if not self.folder.is_dir():
            return
        for keys_path in sorted(self.folder.glob("*.keys.npy")):
            vectors_path = keys_path.with_name(keys_path.name.removesuffix(".keys.npy") + ".npy")
            try:
                keys = np.load(keys_path, allow_pickle=False)
                vectors = np.load(vectors_path, allow_pickle=False, mmap_mode="r")
            except (OSError, ValueError):
                continue  # a shard that cannot be read is recomputed, not trusted
            if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or len(keys) != len(vectors):
                continue
            shard = len(self._shards)
            self._shards.append(vectors)
            for row, key in enumerate(keys):
                self._rows.setdefault(key.tobytes(), (shard, row))

    def get(self, key: bytes) -> Any | None:
        found = self._rows.get(key)
        return None if found is None else self._shards[found[0]][found[1]]

    def __contains__(self, key: bytes) -> bool:
        return key in self._rows

    def add(self, keys: Sequence[bytes], vectors: Any) -> None:
        """Write one shard (vectors first, keys last: the keys file is what makes a shard count)."""
        import numpy as np

        if not len(keys):
            return
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # shards sort in the order they were written
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with atomic_output(self.folder / f"{name}.npy") as file:
            np.save(file, vectors, allow_pickle=False)
        with atomic_output(self.folder / f"{name}.keys.npy") as file:
            np.save(file, key_array, allow_pickle=False)
        shard = len(self._shards)
        self._shards.append(vectors)
        for row, key in enumerate(keys):
            self._rows.setdefault(key, (shard, row))


_RUNNERS: dict[tuple[str, LoadOptions], Any] = {}


def runner_for(model: str, options: LoadOptions | None = None) -> Any:
    """One loaded runner per (model, load options) in this process: a selection embeds many batches."""
    from longsift.models.hf import TransformersRunner

    options = options or LoadOptions()
    key = (str(model), options)
    if key not in _RUNNERS:
        _RUNNERS[key] = TransformersRunner(str(model), options)
    return _RUNNERS[key]


def embed_texts(
    model: str, texts: Sequence[str], *, cache_dir: str | Path | None = None, options: LoadOptions | None = None,
    batch_size: int = 32, use_cache: bool = True,
) -> Any:  # fmt: skip
    """A float32 array (len(texts) x width) of normalised mean-pooled embeddings; cached texts are not recomputed."""
    import numpy as np

    keys = [text_key(text) for text in texts]
    folder = Path(cache_dir or default_cache_dir()) / model_key(str(model), batch_size)
    cache = EmbeddingCache(folder) if use_cache else None
    missing: dict[bytes, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if (cache is None or key not in cache) and key not in missing:
            missing[key] = text
    fresh: dict[bytes, Any] = {}
    if missing:
        vectors = runner_for(model, options).embed(list(missing.values()), batch_size=batch_size)
        fresh = dict(zip(missing, vectors, strict=True))
        if cache is not None:
            cache.add(list(missing), vectors)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    rows: list[Any] = [fresh[key] if key in fresh else cache.get(key) for key in keys]  # type: ignore[union-attr]
    return np.stack(rows).astype(np.float32, copy=False)


def record_text(example: Any) -> str:
    """What a record is embedded as: its turns in order, each as `role: text`, blank-line separated."""
    return "\n\n".join(f"{m.role}: {m.content}" for m in example.messages)
