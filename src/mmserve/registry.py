"""The plugin registry: one place that knows every step, model backend and vector store.

Four kinds of plugin exist:

* ``step``  -- a workflow operation (a class with ``Inputs``/``Outputs`` pydantic models and an
  ``async run(inputs, ctx)``), see :mod:`mmserve.workflow.steps.step`;
* ``model`` -- a model backend for one or more roles, see :mod:`mmserve.models.spec`;
* ``store`` -- a vector store, see :mod:`mmserve.stores.contract`;
* ``role``  -- a kind of model (its batched methods), see :mod:`mmserve.models.roles`.

Built-ins register with the decorators below (or lazily by import path, so that listing the
registry does not import torch). Third-party packages register through the entry-point group
``mmserve.plugins``; each entry point names either a module (importing it runs its
decorators) or a callable that receives the :class:`Registry`. A plugin that fails to load is
recorded in :attr:`Registry.failures` by name and does not stop the others.

Quick start for a third-party step::

    # my_pkg/steps.py
    from pydantic import BaseModel
    from mmserve.registry import register_step

    @register_step("shout")
    class Shout:
        class Inputs(BaseModel):
            text: str
        class Outputs(BaseModel):
            text: str
        async def run(self, inputs: Inputs, ctx: object) -> Outputs:
            return self.Outputs(text=inputs.text.upper())

    # pyproject.toml
    [project.entry-points."mmserve.plugins"]
    shout = "my_pkg.steps"
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel

from mmserve.errors import PluginLoadError, PluginNotFoundError, PluginRegistrationError

PluginKind = Literal["step", "model", "store", "role"]
PLUGIN_KINDS: tuple[PluginKind, ...] = get_args(PluginKind)
ENTRY_POINT_GROUP = "mmserve.plugins"

#: Modules whose import registers the built-in plugins. They must stay cheap to import.
BUILTIN_MODULES: tuple[str, ...] = (
    "mmserve.models.roles",
    "mmserve.workflow.steps",
    "mmserve.models",
    "mmserve.stores",
)

T = TypeVar("T")


@dataclass
class PluginInfo:
    """One registered plugin.

    ``target`` is the plugin object itself, or a ``"module:attr"`` string for lazily
    registered built-ins, resolved (and shape-checked) on first :meth:`Registry.get`.
    """

    kind: PluginKind
    name: str
    origin: str
    target: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return not isinstance(self.target, str)

    @property
    def description(self) -> str:
        if "description" in self.meta:
            return str(self.meta["description"])
        if self.loaded:
            doc = inspect.getdoc(self.target) or ""
            return doc.splitlines()[0] if doc else ""
        return ""


def _is_model_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, BaseModel)


def _check_step(name: str, target: Any) -> None:
    for attr in ("Inputs", "Outputs"):
        if not _is_model_class(getattr(target, attr, None)):
            raise PluginRegistrationError(
                f"step plugin {name!r} ({target!r}) has no pydantic model {attr!r}",
                hint=f"declare `class {attr}(pydantic.BaseModel)` inside the step class",
            )
    run = getattr(target, "run", None)
    if run is None or not inspect.iscoroutinefunction(run):
        raise PluginRegistrationError(
            f"step plugin {name!r} ({target!r}) has no `async def run(self, inputs, ctx)`",
            hint="define run as a coroutine method returning an Outputs instance",
        )


def _check_model(name: str, target: Any) -> None:
    roles = getattr(target, "roles", None)
    if not roles or not callable(target):
        raise PluginRegistrationError(
            f"model plugin {name!r} ({target!r}) must be a class with a non-empty `roles`",
            hint="set `roles = frozenset({'text_encoder'})` (or the roles it serves)",
        )


def _check_store(name: str, target: Any) -> None:
    missing = [m for m in ("create_collection", "upsert", "search") if not hasattr(target, m)]
    if missing:
        raise PluginRegistrationError(
            f"store plugin {name!r} ({target!r}) lacks {', '.join(missing)}",
            hint="implement the mmserve.stores.contract.VectorStore protocol",
        )


def _check_role(name: str, target: Any) -> None:
    methods = getattr(target, "methods", None)
    if not isinstance(methods, Mapping) or not methods:
        raise PluginRegistrationError(
            f"role plugin {name!r} ({target!r}) has no methods",
            hint="register roles with mmserve.models.roles.register_role",
        )


_CHECKS: dict[PluginKind, Callable[[str, Any], None]] = {
    "step": _check_step,
    "model": _check_model,
    "store": _check_store,
    "role": _check_role,
}


class Registry:
    """Plugins by kind and name. Thread-safe; loading is idempotent."""

    def __init__(self) -> None:
        self._plugins: dict[PluginKind, dict[str, PluginInfo]] = {k: {} for k in PLUGIN_KINDS}
        self.failures: list[PluginLoadError] = []
        self._lock = threading.RLock()
        self._origin = "builtin"
        self._builtins_loaded = False
        self._entry_points_loaded = False

    # -- registration -----------------------------------------------------------------------

    def register(
        self,
        kind: PluginKind,
        name: str,
        target: Any,
        *,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> None:
        """Register ``target`` (an object, or a ``"module:attr"`` string) as ``kind``/``name``."""
        if kind not in PLUGIN_KINDS:
            raise PluginRegistrationError(
                f"unknown plugin kind {kind!r}; kinds are {', '.join(PLUGIN_KINDS)}"
            )
        if not name or not name.replace("-", "_").replace(".", "_").isidentifier():
            raise PluginRegistrationError(
                f"invalid {kind} plugin name {name!r}",
                hint="use letters, digits, '_', '-' or '.', starting with a letter",
            )
        if not isinstance(target, str):
            _CHECKS[kind](name, target)
        with self._lock:
            existing = self._plugins[kind].get(name)
            if existing is not None and not replace and existing.target is not target:
                raise PluginRegistrationError(
                    f"{kind} plugin name {name!r} is already registered by {existing.origin}",
                    hint="choose another name for your plugin",
                )
            self._plugins[kind][name] = PluginInfo(kind, name, self._origin, target, meta or {})

    def decorator(self, kind: PluginKind, name: str, **meta: Any) -> Callable[[T], T]:
        def wrap(target: T) -> T:
            self.register(kind, name, target, meta=meta)
            return target

        return wrap

    # -- lookup -----------------------------------------------------------------------------

    def get(self, kind: PluginKind, name: str) -> Any:
        """The plugin object; raises :class:`PluginNotFoundError` listing the known names."""
        self.ensure_loaded()
        with self._lock:
            info = self._plugins[kind].get(name)
            if info is None:
                raise PluginNotFoundError(kind=kind, name=name, known=list(self._plugins[kind]))
            if not info.loaded:
                self._resolve(info)
            return info.target

    def info(self, kind: PluginKind, name: str) -> PluginInfo:
        self.ensure_loaded()
        with self._lock:
            info = self._plugins[kind].get(name)
            if info is None:
                raise PluginNotFoundError(kind=kind, name=name, known=list(self._plugins[kind]))
            return info

    def names(self, kind: PluginKind) -> list[str]:
        self.ensure_loaded()
        with self._lock:
            return sorted(self._plugins[kind])

    def plugins(self, kind: PluginKind | None = None) -> list[PluginInfo]:
        self.ensure_loaded()
        kinds = PLUGIN_KINDS if kind is None else (kind,)
        with self._lock:
            return [self._plugins[k][n] for k in kinds for n in sorted(self._plugins[k])]

    def _resolve(self, info: PluginInfo) -> None:
        module_name, _, attr = str(info.target).partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attr)
        except Exception as exc:  # a broken plugin must not take the caller's process down
            raise PluginLoadError(
                name=info.name, origin=info.origin, reason=f"{type(exc).__name__}: {exc}"
            ) from exc
        _CHECKS[info.kind](info.name, target)
        info.target = target

    # -- loading ----------------------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Load built-ins and entry-point plugins once."""
        if self._builtins_loaded and self._entry_points_loaded:
            return
        with self._lock:
            if not self._builtins_loaded:
                self._builtins_loaded = True
                for module in BUILTIN_MODULES:
                    importlib.import_module(module)
            if not self._entry_points_loaded:
                self._entry_points_loaded = True
                self.load_entry_points()

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every third-party plugin; record failures instead of raising."""
        for entry_point in metadata.entry_points(group=group):
            dist = entry_point.dist
            origin = f"{dist.name} {dist.version}" if dist is not None else entry_point.value
            try:
                with self._origin_as(origin):
                    loaded = entry_point.load()
                    if callable(loaded) and not inspect.isclass(loaded):
                        loaded(self)
            except Exception as exc:
                self.failures.append(
                    PluginLoadError(
                        name=entry_point.name,
                        origin=origin,
                        reason=f"{type(exc).__name__}: {exc}",
                    )
                )

    @contextmanager
    def _origin_as(self, origin: str) -> Iterator[None]:
        previous, self._origin = self._origin, origin
        try:
            yield
        finally:
            self._origin = previous


def step_schemas(step: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schemas of a step's ``Inputs`` and ``Outputs``; raises what pydantic raises
    for a type it cannot describe (a raw ``PIL.Image`` field, say)."""
    return step.Inputs.model_json_schema(), step.Outputs.model_json_schema()


def record_error(exc: Exception) -> str:
    """Why a plugin's listing record could not be built, in one line."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"cannot describe the plugin: {type(exc).__name__}: {first}"


#: The process-wide registry used by the decorators, the engine and the server.
registry = Registry()


def register_step(name: str, **meta: Any) -> Callable[[T], T]:
    """Class decorator: register a workflow step plugin under ``name``."""
    return registry.decorator("step", name, **meta)


def register_model(name: str, **meta: Any) -> Callable[[T], T]:
    """Class decorator: register a model backend under ``name``."""
    return registry.decorator("model", name, **meta)


def register_store(name: str, **meta: Any) -> Callable[[T], T]:
    """Class decorator: register a vector store under ``name``."""
    return registry.decorator("store", name, **meta)


__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_KINDS",
    "PluginInfo",
    "PluginKind",
    "Registry",
    "record_error",
    "register_model",
    "register_step",
    "register_store",
    "registry",
    "step_schemas",
]
