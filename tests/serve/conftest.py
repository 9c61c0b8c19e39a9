"""Serve tier: a real Ray Serve on CPU. Each module starts what it needs once and stops only
that (never `ray stop`, never other processes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_support import RAY_INIT


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A private local Ray for this module; Serve and Ray are shut down after it."""
    import ray
    from ray import serve

    ray.init(**RAY_INIT)
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()
