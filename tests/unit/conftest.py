"""Unit tier: no Ray, no weights. Starting Ray here is a bug, so make it fail loudly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import ray

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/serve")

    monkeypatch.setattr(ray, "init", refuse)
    yield
