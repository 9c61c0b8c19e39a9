"""Loading model backends once per process.

:func:`load_backend` builds a backend from the registry and caches it by (backend name,
spec): two config entries with the same backend and source -- CLIP as both the image and the
text encoder -- share one set of weights. Concurrent first uses of one model load it once.
Different models load one after another: transformers' ``from_pretrained`` initialises
weights on the meta device through process-global patches of torch, so two loads in two
threads at once corrupt each other ("Cannot copy out of meta tensor").
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mmserve.errors import (
    ConfigError,
    MmserveError,
    ModelError,
    ModelLoadError,
    ModelNotConfiguredError,
)
from mmserve.models.roles import RoleSpec
from mmserve.models.spec import EmbeddingSpace, ModelSpec
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
    check_source(name, backend_class, spec)
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


def check_source(name: str, backend_class: Any, spec: ModelSpec) -> None:
    """Ask the backend whether it can load ``spec.source`` (fast; raises ModelLoadError).
    A backend without ``check_source`` is only judged by loading."""
    _run_check(name, getattr(backend_class, "check_source", None), spec)


def check_source_of(name: str, spec: ModelSpec, *, registry: Registry = registry) -> None:
    """:func:`check_source` of the registered backend ``name``, without importing its module
    when its registration names a lighter check (``meta["check_source"]``, "module:attr"):
    the built-in Hugging Face backends' check needs no torch."""
    info = registry.info("model", name)
    lazy = info.meta.get("check_source")
    if lazy is not None and not info.loaded:
        module_name, _, attr = str(lazy).partition(":")
        _run_check(name, getattr(importlib.import_module(module_name), attr), spec)
        return
    check_source(name, registry.get("model", name), spec)


def item_check_of(name: str, *, registry: Registry = registry) -> Callable[..., None] | None:
    """The item check of the registered backend ``name``, or None when it has none.

    An item check ``check(spec, method, item)`` refuses, from the model entry's ``spec`` alone
    and before any model is loaded or called, an item the backend would refuse, raising what
    the backend would raise running it (an InputError for a size or step count over the
    entry's limits). It is the backend's optional ``check_item``, or the lighter one its
    registration names (``meta["check_item"]``, "module:attr"; the diffusion backends':
    no torch). A backend registered by import path without one is not imported here: its
    items are judged when it runs them."""
    info = registry.info("model", name)
    lazy = info.meta.get("check_item")
    if lazy is not None:
        return _light_check(str(lazy))
    if info.loaded:
        check: Callable[..., None] | None = getattr(info.target, "check_item", None)
        return check
    return None


@functools.cache
def _light_check(target: str) -> Callable[..., None]:
    module_name, _, attr = target.partition(":")
    check: Callable[..., None] = getattr(importlib.import_module(module_name), attr)
    return check


def _run_check(name: str, check: Callable[[ModelSpec], None] | None, spec: ModelSpec) -> None:
    if check is None:
        return
    try:
        check(spec)
    except MmserveError:
        raise
    except Exception as exc:  # a backend's own bug must still reach the user as one line
        raise ModelLoadError(
            source=spec.source, reason=f"{name} backend: {type(exc).__name__}: {exc}"
        ) from exc


def check_backend_serves(model: str, backend: str, backend_class: Any, role: RoleSpec) -> None:
    """Raise ConfigError unless ``backend_class`` serves ``role`` and has all its methods."""
    if role.name not in backend_class.roles:
        raise ConfigError(
            f"model {model!r}: backend {backend!r} does not serve the role {role.name!r} "
            f"(it serves {', '.join(sorted(backend_class.roles))})",
            hint="pick a backend for that role (`mmserve plugins` lists them)",
        )
    missing = role.missing_methods(backend_class)
    if missing:
        raise ConfigError(
            f"model {model!r}: backend {backend!r} lacks the methods {missing} of {role.name!r}"
        )


def run_batch(
    func: Callable[[list[Any]], Sequence[Any]], items: list[Any], *, method: str
) -> list[Any]:
    """``func(items)`` as a list of one result per item (checked)."""
    outputs = list(func(items))
    if len(outputs) != len(items):
        raise ModelError(
            f"the backend's {method} returned {len(outputs)} results for {len(items)} items",
            hint="a role method returns one result per item, in order",
        )
    return outputs


def space_of(model: str, backend: Any) -> EmbeddingSpace:
    """The embedding space of a loaded backend; ModelNotConfiguredError if it has none."""
    space = getattr(backend, "space", None)
    if not isinstance(space, EmbeddingSpace):
        raise ModelNotConfiguredError(
            f"model {model!r} has no embedding space (it is not an encoder)",
            hint="name an image_encoder or text_encoder model",
        )
    return space


__all__ = [
    "check_backend_serves",
    "check_source",
    "check_source_of",
    "item_check_of",
    "load_backend",
    "run_batch",
    "space_of",
]
