"""What both gateways check before a model call: the model exists and its role has the method."""

from __future__ import annotations

from mmserve.config import AppConfig
from mmserve.errors import ModelNotConfiguredError
from mmserve.models.roles import RoleMethod, role_spec
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


def require_space(config: AppConfig, model: str, *, registry: Registry = registry) -> None:
    """Raise ModelNotConfiguredError unless ``model``'s role has an embedding space."""
    require_model(config, model)
    role = role_spec(config.role_of(model), registry=registry)
    if not role.has_space:
        raise ModelNotConfiguredError(
            f"model {model!r} serves {role.name!r}, which has no embedding space",
            hint="name an encoder model (image_encoder or text_encoder)",
        )


__all__ = ["method_of", "require_model", "require_space"]
