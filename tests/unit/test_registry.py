from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from mmserve.errors import PluginLoadError, PluginNotFoundError, PluginRegistrationError
from mmserve.registry import Registry, registry


class _In(BaseModel):
    text: str


class _Out(BaseModel):
    text: str


def _step_class() -> type:
    class Upper:
        Inputs = _In
        Outputs = _Out

        async def run(self, inputs: _In, ctx: Any) -> _Out:
            return _Out(text=inputs.text.upper())

    return Upper


def test_builtins_are_registered_by_kind() -> None:
    steps = registry.names("step")
    for name in ("embed_image", "embed_text", "caption", "answer", "classify"):
        assert name in steps
    assert {"clip", "sentence", "blip-caption", "blip-vqa", "vilt-vqa"} <= set(
        registry.names("model")
    )


def test_model_plugins_are_listed_without_importing_torch_backends() -> None:
    info = registry.info("model", "clip")
    assert info.meta["roles"] == ["image_encoder", "text_encoder"]
    assert info.origin == "builtin"


def test_lookup_miss_lists_the_known_names() -> None:
    with pytest.raises(PluginNotFoundError) as caught:
        registry.get("step", "captoin")
    message = str(caught.value)
    assert "'captoin'" in message
    assert "caption" in message and "embed_text" in message
    assert caught.value.known == registry.names("step")


def test_decorator_registers_and_checks_shape() -> None:
    fresh = Registry()
    upper = fresh.decorator("step", "upper")(_step_class())
    assert fresh.get("step", "upper") is upper

    class NoOutputs:
        Inputs = _In

        async def run(self, inputs: Any, ctx: Any) -> Any:
            return None

    with pytest.raises(PluginRegistrationError, match="Outputs"):
        fresh.register("step", "broken", NoOutputs)

    class SyncRun:
        Inputs = _In
        Outputs = _Out

        def run(self, inputs: Any, ctx: Any) -> Any:
            return None

    with pytest.raises(PluginRegistrationError, match="async def run"):
        fresh.register("step", "sync", SyncRun)


def test_duplicate_names_are_refused_with_the_owner_named() -> None:
    fresh = Registry()
    fresh.register("step", "upper", _step_class())
    with pytest.raises(PluginRegistrationError, match="already registered by builtin"):
        fresh.register("step", "upper", _step_class())


def test_invalid_kind_and_name_are_refused() -> None:
    fresh = Registry()
    with pytest.raises(PluginRegistrationError, match="unknown plugin kind"):
        fresh.register("widget", "x", object())  # type: ignore[arg-type]
    with pytest.raises(PluginRegistrationError, match="invalid step plugin name"):
        fresh.register("step", "no spaces", _step_class())


def test_lazy_target_that_fails_to_import_is_reported_by_name() -> None:
    fresh = Registry()
    fresh.register("model", "ghost", "mmserve_no_such_module:Backend", meta={"roles": ["vqa"]})
    assert [p.name for p in fresh.plugins("model")] == ["ghost"]
    with pytest.raises(PluginLoadError, match="'ghost'.*ModuleNotFoundError"):
        fresh.get("model", "ghost")
