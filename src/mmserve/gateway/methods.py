"""What every gateway checks before a model call: the model exists, its role has the method,
and its backend takes the items (as far as the model's config entry tells, without loading it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmserve.config import AppConfig
from mmserve.errors import ModelNotConfiguredError
from mmserve.models.loader import item_check_of
from mmserve.models.roles import RoleMethod, role_spec
from mmserve.models.sources.resolve import absolute_source
from mmserve.models.spec import ModelSpec
from mmserve.registry import Registry, registry


def require_model(config: AppConfig, model: str) -> None:
    """Raise ModelNotConfiguredError, listing the configured models, unless ``model`` is one."""
    if model not in config.models:
        raise ModelNotConfiguredError(
            f"no model named {model!r} in the config; configured: "
            f"{', '.join(sorted(config.models)) or '(none)'}"
        )


def method_of(
    config: AppConfig, model: str, method: str, *, registry: Registry = registry
) -> RoleMethod:
    """The role method ``method`` of the config entry ``model``.

    Raises ModelNotConfiguredError naming the configured models or the role's methods."""
    require_model(config, model)
    role = role_spec(config.role_of(model), registry=registry)
    if method not in role.methods:
        raise ModelNotConfiguredError(
            f"model {model!r} serves the role {role.name!r}, which has no method {method!r} "
            f"(its methods: {', '.join(sorted(role.methods))})",
            hint="call a model whose role has that method",
        )
    return role.methods[method]


def check_items(
    config: AppConfig,
    model: str,
    method: str,
    items: Sequence[Any],
    *,
    registry: Registry = registry,
) -> None:
    """Refuse, before the model is loaded or called, the first of ``items`` that the config
    entry ``model`` alone says its backend would refuse (:func:`item_check_of`: a size off the
    multiple or over ``max_pixels``, steps over ``max_steps``), with the backend's own error.
    ``method`` must be one of the model's (:func:`method_of`)."""
    check = item_check_of(config.models[model].backend, registry=registry)
    if check is None or not items:
        return
    spec = model_spec(config, model)
    for item in items:
        check(spec, method, item)


def model_spec(config: AppConfig, model: str) -> ModelSpec:
    """The :class:`ModelSpec` of the config entry ``model``, its relative folder source made
    absolute against the config's folder (as its backend is loaded from)."""
    spec = config.models[model].to_spec()
    source = absolute_source(spec.source, config.base_dir)
    return spec if source == spec.source else spec.model_copy(update={"source": source})


def require_space(config: AppConfig, model: str, *, registry: Registry = registry) -> None:
    """Raise ModelNotConfiguredError unless ``model``'s role has an embedding space."""
    require_model(config, model)
    role = role_spec(config.role_of(model), registry=registry)
    if not role.has_space:
        raise ModelNotConfiguredError(
            f"model {model!r} serves {role.name!r}, which has no embedding space",
            hint="name an encoder model (image_encoder or text_encoder)",
        )


__all__ = ["check_items", "method_of", "model_spec", "require_model", "require_space"]
