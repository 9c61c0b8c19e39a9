"""``cache: true``: a bounded, in-memory LRU of step results, one per process.

The key of a result is a SHA-256 over the step plugin's name and version, the models the
gateway serves (each entry's backend, source and revision: a config change never reuses a
stale result) and the step's validated inputs, images hashed by their pixels. Only steps that
declare ``deterministic`` (True, or a function of the inputs that says True) are cached.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PIL import Image as PILImage
from pydantic import BaseModel

import mmserve

#: Entries a process keeps at most (the least recently used go first).
DEFAULT_MAX_ENTRIES = 1024


def is_deterministic(cls: Any, inputs: BaseModel) -> bool:
    """Whether ``cls`` gives the same result for ``inputs`` every time."""
    declared: bool | Callable[[BaseModel], bool] = getattr(cls, "deterministic", False)
    if callable(declared):
        return bool(declared(inputs))
    return declared is True


def _canonical(value: Any) -> Any:
    if isinstance(value, PILImage.Image):
        digest = hashlib.sha256(value.tobytes())
        return {"image": f"{value.mode}:{value.size}:{digest.hexdigest()}"}
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump())
    if isinstance(value, bytes | bytearray):
        return {"bytes": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if hasattr(value, "tobytes") and hasattr(value, "dtype"):  # numpy arrays
        return {
            "array": f"{value.dtype}:{value.shape}:{hashlib.sha256(value.tobytes()).hexdigest()}"
        }
    return value


def models_fingerprint(gateway: Any) -> Any:
    """What identifies the models behind ``gateway``: its config's model entries (backend,
    source, revision) when it has one, else the names and roles it serves."""
    config = getattr(gateway, "config", None) or getattr(gateway, "_config", None)
    models = getattr(config, "models", None)
    if isinstance(models, dict):
        return {
            name: [
                getattr(entry, "backend", None),
                getattr(entry, "source", None),
                getattr(entry, "revision", None),
            ]
            for name, entry in sorted(models.items())
        }
    return gateway.models()


def cache_key(uses: str, cls: Any, gateway: Any, inputs: BaseModel) -> str:
    version = getattr(cls, "version", None) or mmserve.__version__
    data = {
        "step": [uses, f"{cls.__module__}.{cls.__qualname__}", str(version)],
        "models": models_fingerprint(gateway),
        "inputs": _canonical(inputs),
    }
    text = json.dumps(data, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class StepCache:
    """A thread-safe LRU of step results by :func:`cache_key`."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, BaseModel] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: str) -> BaseModel | None:
        with self._guard:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: str, value: BaseModel) -> None:
        with self._guard:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: The process's cache, shared by every engine unless one is given its own.
process_cache = StepCache()

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "StepCache",
    "cache_key",
    "is_deterministic",
    "models_fingerprint",
    "process_cache",
]
