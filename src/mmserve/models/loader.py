"""Loading model backends once per process.

:func:`load_backend` builds a backend from the registry and caches it by (backend name,
spec): two config entries with the same backend and source -- CLIP as both the image and the
text encoder -- share one set of weights. Concurrent first uses of one model load it once.
Different models load one after another: transformers' ``from_pretrained`` initialises
weights on the meta device through process-global patches of torch, so two loads in two
threads at once corrupt each other ("Cannot copy out of meta tensor").
"""

from __future__ import annotations

import threading
from typing import Any

from mmserve.errors import MmserveError, ModelLoadError
from mmserve.models.base import ModelSpec
from mmserve.registry import Registry, registry

#: (backend class, spec): the class rather than its name, so that two registries that map
#: one name to different classes never share instances.
_Key = tuple[Any, ModelSpec]

_instances: dict[_Key, Any] = {}
_key_locks: dict[_Key, threading.Lock] = {}
_guard = threading.Lock()
#: Serialises every construction (see the module docstring for why).
_loading = threading.Lock()


def load_backend(name: str, spec: ModelSpec, *, registry: Registry = registry) -> Any:
    """The backend instance for ``name`` (a registered model plugin) loaded from ``spec``.

    Raises PluginNotFoundError for an unknown backend name and ModelLoadError when the
    weights cannot be loaded (any unexpected exception of the backend is wrapped in one).
    """
    backend_class = registry.get("model", name)
    key = (backend_class, spec)
    with _guard:
        if key in _instances:
            return _instances[key]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock, _loading:
        with _guard:
            if key in _instances:
                return _instances[key]
        try:
            instance = backend_class(spec)
        except MmserveError:
            raise
        except Exception as exc:  # a backend's own bug must still reach the user as one line
            raise ModelLoadError(
                source=spec.source, reason=f"{name} backend: {type(exc).__name__}: {exc}"
            ) from exc
        with _guard:
            _instances[key] = instance
        return instance


def loaded_backends() -> dict[_Key, Any]:
    """A snapshot of the cache: (backend class, spec) -> instance."""
    with _guard:
        return dict(_instances)


def clear_backends() -> None:
    """Forget every cached backend (their memory is freed once nothing else holds them)."""
    with _guard:
        _instances.clear()
        _key_locks.clear()


__all__ = ["clear_backends", "load_backend", "loaded_backends"]
