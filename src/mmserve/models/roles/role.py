"""What a model role is: named, batched methods with typed items and results.

A role is a plugin (registry kind ``role``). Each of its methods takes a list of items and
returns a list of results, same order; a backend serving the role implements every method
under the same name. The gateway calls one method of one model with one item (or a list, for
ingest); served, one generic model deployment builds one ``@serve.batch`` queue per method,
and items whose ``batch_key`` differ never share a batch.

Quick start (a third-party role, registered from its package's entry-point module)::

    from mmserve.models.roles import RoleMethod, register_role

    register_role(
        "image_tagger",
        description="Tags that describe an image.",
        methods={"tag": RoleMethod(item=TagItem, result=list, description="...")},
    )
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmserve.errors import ModelNotConfiguredError, PluginRegistrationError
from mmserve.registry import Registry, registry


@dataclass(frozen=True)
class RoleMethod:
    """One batched method of a role: the type of one item, of one result, and which items
    may share a batch (``batch_key(item)``; ``None`` lets any items share one)."""

    item: Any
    result: Any
    batch_key: Callable[[Any], Hashable] | None = None
    description: str = ""
    #: How to swap the images of an item that the model reads through its image processor
    #: (``model_images(item, reduce)`` -> the item with ``reduce(image)`` for each): such
    #: images are reduced to the model's input size before the call (see
    #: :mod:`mmserve.media.sizes`). ``None``: the item's images reach the model as they are.
    model_images: Callable[[Any, Callable[[Any], Any]], Any] | None = None

    def key_of(self, item: Any) -> Hashable:
        """The batch key of ``item`` (``None`` when the method has no batch key)."""
        return None if self.batch_key is None else self.batch_key(item)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (for ``mmserve plugins`` and ``GET /v1/plugins``)."""
        return {
            "item": type_name(self.item),
            "result": type_name(self.result),
            "batched_by_key": self.batch_key is not None,
            "description": self.description,
        }


@dataclass(frozen=True)
class RoleSpec:
    """A registered role: its name, description, methods and optional sample items."""

    name: str
    description: str
    methods: Mapping[str, RoleMethod]
    sample_items: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    #: Its results are vectors of the backend's ``space`` (an EmbeddingSpace).
    has_space: bool = False

    def method(self, name: str) -> RoleMethod:
        """The method ``name``; raises ModelNotConfiguredError listing the role's methods."""
        found = self.methods.get(name)
        if found is None:
            raise ModelNotConfiguredError(
                f"the role {self.name!r} has no method {name!r}; its methods: "
                f"{', '.join(sorted(self.methods))}"
            )
        return found

    def missing_methods(self, backend: Any) -> list[str]:
        """Methods of this role that ``backend`` (a class or instance) does not implement."""
        return sorted(m for m in self.methods if not callable(getattr(backend, m, None)))


def the_image(item: Any, reduce: Callable[[Any], Any]) -> Any:
    """``model_images`` of a method whose item is an image."""
    return reduce(item)


def image_field(item: Any, reduce: Callable[[Any], Any]) -> Any:
    """``model_images`` of a method whose item is a pydantic model with an ``image`` field."""
    return item.model_copy(update={"image": reduce(item.image)})


def type_name(value: Any) -> str:
    """``module.Qualname`` of a type (``str`` for builtins), or the value's repr."""
    if isinstance(value, type):
        if value.__module__ == "builtins":
            return value.__qualname__
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def register_role(
    name: str,
    *,
    description: str,
    methods: Mapping[str, RoleMethod],
    sample_items: Mapping[str, Sequence[Any]] | None = None,
    has_space: bool = False,
    registry: Registry = registry,
) -> RoleSpec:
    """Register the role ``name`` and return its :class:`RoleSpec`.

    ``has_space``: the role's results are vectors in an embedding space that its backends
    expose as ``space`` (the encoders); ``gateway.space(model)`` works for its models."""
    if not methods:
        raise PluginRegistrationError(f"role {name!r} declares no methods")
    for method_name, method in methods.items():
        if not method_name.isidentifier() or method_name.startswith("_"):
            raise PluginRegistrationError(
                f"role {name!r}: method name {method_name!r} is not a public Python identifier",
                hint="backends implement each method under its name, e.g. 'embed_texts'",
            )
        if not isinstance(method, RoleMethod):
            raise PluginRegistrationError(
                f"role {name!r}: method {method_name!r} must be a RoleMethod, got {method!r}"
            )
    unknown = sorted(set(sample_items or {}) - set(methods))
    if unknown:
        raise PluginRegistrationError(f"role {name!r}: sample items for unknown methods {unknown}")
    spec = RoleSpec(name, description, dict(methods), dict(sample_items or {}), has_space)
    meta = {
        "description": description,
        "has_space": has_space,
        "methods": {m: method.describe() for m, method in spec.methods.items()},
    }
    registry.register("role", name, spec, meta=meta)
    return spec


def role_spec(name: str, *, registry: Registry = registry) -> RoleSpec:
    """The registered role ``name`` (raises PluginNotFoundError listing the roles)."""
    spec: RoleSpec = registry.get("role", name)
    return spec


__all__ = [
    "RoleMethod",
    "RoleSpec",
    "image_field",
    "register_role",
    "role_spec",
    "the_image",
    "type_name",
]
