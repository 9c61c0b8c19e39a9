"""Warm-up before ready: a model replica runs its roles' sample items in its first
reconfigure (Serve's start, before the replica is healthy), driven here in process."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image

from mmserve.errors import ModelLoadError
from mmserve.models.backends.fake import FAIL_MARKER, FakeBackend
from mmserve.models.loader import run_batch
from mmserve.models.roles import CaptionItem, RoleMethod, RoleSpec, role_spec
from mmserve.models.spec import ModelSpec
from mmserve.serve.model_server import ModelServer
from mmserve.serve.warmup import warm_up, warmup_batches

pytestmark = pytest.mark.unit

ROLES = ["captioner", "image_encoder", "text_encoder", "vqa"]
METHODS = {"caption", "embed_images", "embed_texts", "answer"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """Every batch the fake backend runs, as (method, items); the methods still run."""
    seen: list[tuple[str, list[Any]]] = []
    for method in METHODS:
        original = getattr(FakeBackend, method)

        def spy(self: Any, items: Sequence[Any], _m: str = method, _f: Any = original) -> Any:
            seen.append((_m, list(items)))
            return _f(self, items)

        monkeypatch.setattr(FakeBackend, method, spy)
    return seen


def _server(warmup_roles: Sequence[str], max_batch: int) -> ModelServer:
    server = ModelServer("fake", ModelSpec(source="fake://").model_dump(), ROLES, warmup_roles)
    server.reconfigure({"max_batch_size": max_batch, "batch_wait_timeout_s": 0.01})
    return server


def test_the_first_reconfigure_runs_every_method_with_its_samples_at_the_batch_sizes(
    calls: list[tuple[str, list[Any]]],
) -> None:
    server = _server(ROLES, max_batch=4)
    assert {method for method, _ in calls} == METHODS
    for name in ROLES:
        for method, samples in role_spec(name).sample_items.items():
            batches = [items for m, items in calls if m == method]
            assert [len(items) for items in batches] == [1, 4]
            ids = {id(sample) for sample in samples}  # the role's own sample objects
            assert all(id(item) in ids for items in batches for item in items)
            assert {id(item) for item in batches[1]} == ids  # the full batch holds them all
    warmup_s = server.settings()["warmup_s"]
    assert isinstance(warmup_s, float) and warmup_s >= 0

    calls.clear()
    server.reconfigure({"max_batch_size": 2, "batch_wait_timeout_s": 0.01})  # a live change
    assert calls == []  # warm-up is once per replica, at its start


def test_batch_sizes_are_capped_and_warmup_off_runs_nothing(
    calls: list[tuple[str, list[Any]]],
) -> None:
    _server(["text_encoder"], max_batch=64)
    assert [(m, len(items)) for m, items in calls] == [("embed_texts", 1), ("embed_texts", 8)]

    calls.clear()
    server = _server([], max_batch=8)
    assert calls == []
    assert server.settings()["warmup_s"] is None


def test_a_failing_warmup_fails_the_replica_start_naming_role_and_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any, items: Sequence[Any]) -> Any:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(FakeBackend, "answer", broken)
    with pytest.raises(ModelLoadError, match=r"warm-up failed: role 'vqa', method 'answer'") as e:
        _server(["captioner", "vqa"], max_batch=8)
    assert "CUDA out of memory" in str(e.value) and "warmup: false" in str(e.value)


def test_a_role_without_samples_is_skipped_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bare = RoleSpec("bare", "no samples", {"caption": RoleMethod(item=CaptionItem, result=str)})
    backend = FakeBackend(ModelSpec(source="fake://"))
    with caplog.at_level(logging.INFO, logger="mmserve.serve.warmup"):
        seconds = warm_up(backend, [bare], 8, label="test", source="fake://", run=run_batch)
    assert seconds >= 0
    assert "role 'bare' has no sample items; not warmed up" in caplog.text


def test_a_plugins_bad_sample_fails_warmup_and_batch_keys_never_mix() -> None:
    image = Image.new("RGB", (8, 8))
    method = RoleMethod(item=CaptionItem, result=str, batch_key=lambda item: item.prompt)
    samples = [CaptionItem(image=image, prompt=p) for p in ("a", "b", FAIL_MARKER)]
    role = RoleSpec("keyed", "keyed", {"caption": method}, {"caption": samples})
    batches = warmup_batches(role, 3)
    assert [len(items) for _, items in batches] == [1, 3] * 3
    assert all(len({item.prompt for item in items}) == 1 for _, items in batches)

    backend = FakeBackend(ModelSpec(source="fake://"))
    with pytest.raises(ModelLoadError, match="role 'keyed', method 'caption' on a batch of 1"):
        warm_up(backend, [role], 3, label="test", source="fake://", run=run_batch)
