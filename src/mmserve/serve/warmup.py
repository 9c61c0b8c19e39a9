"""Warm-up before ready: a model replica runs its roles' sample items before taking traffic.

The first call of a freshly loaded model is slow (lazy initialisation, allocator growth, the
first pass through every kernel): measured on the tiny profile, 5-6 s for the first caption
against 0.03 s for the second. A replica therefore runs every method of every role it warms,
on its own device, with the role's ``sample_items`` -- once at batch size 1 and once at the
largest batch it will see (its ``max_batch_size``, capped at :data:`WARMUP_MAX_BATCH`) -- in
its first ``reconfigure``, which Serve runs before it marks the replica healthy. So "ready"
means warm, and every new replica (autoscaling included) warms before it gets a request.

A role without sample items is skipped with a log line. A failure fails the replica start
with :class:`~mmserve.errors.ModelLoadError`: a model that cannot run its own samples cannot
serve. This module imports no Ray.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from mmserve.errors import ModelLoadError
from mmserve.models.roles.role import RoleSpec

#: Largest warm-up batch: enough to reach the batched code paths without making a replica
#: with a large ``batch.max_size`` spend long on start-up.
WARMUP_MAX_BATCH = 8

_log = logging.getLogger(__name__)


def warmup_sizes(max_batch_size: int) -> list[int]:
    """The batch sizes a replica warms: 1 and its largest batch (capped), without repeats."""
    return sorted({1, max(1, min(max_batch_size, WARMUP_MAX_BATCH))})


def warmup_batches(role: RoleSpec, max_batch_size: int) -> list[tuple[str, list[Any]]]:
    """``(method, items)`` batches warming ``role``: per method and batch key of its samples,
    one batch of each size of :func:`warmup_sizes` (the samples repeated to fill it).

    Samples of different batch keys never share a batch, as served batches never do."""
    batches: list[tuple[str, list[Any]]] = []
    for method_name, samples in sorted(role.sample_items.items()):
        method = role.method(method_name)
        by_key: dict[Hashable, list[Any]] = {}
        for sample in samples:
            by_key.setdefault(method.key_of(sample), []).append(sample)
        for group in by_key.values():
            for size in warmup_sizes(max_batch_size):
                batches.append((method_name, list(itertools.islice(itertools.cycle(group), size))))
    return batches


def warm_up(
    backend: Any,
    roles: Sequence[RoleSpec],
    max_batch_size: int,
    *,
    label: str,
    source: str,
    run: Callable[..., list[Any]],
    log: logging.Logger = _log,
) -> float:
    """Run the warm-up batches of ``roles`` on ``backend``; the seconds it took.

    ``run(func, items, method=...)`` calls one backend method on one batch (the loader's
    checked ``run_batch``); ``log`` gets the lines (a replica passes Serve's logger, whose
    INFO lines reach the replica's log and the console). Raises ModelLoadError naming the
    role, method and batch size."""
    start = time.perf_counter()
    for role in roles:
        if not role.sample_items:
            log.info("%s: role %r has no sample items; not warmed up", label, role.name)
            continue
        unwarmed = sorted(set(role.methods) - set(role.sample_items))
        if unwarmed:
            log.info("%s: role %r has no sample items for %s", label, role.name, unwarmed)
        for method, items in warmup_batches(role, max_batch_size):
            try:
                run(getattr(backend, method), items, method=method)
            except Exception as exc:
                raise ModelLoadError(
                    source=source,
                    reason=f"warm-up failed: role {role.name!r}, method {method!r} on a batch "
                    f"of {len(items)} sample items: {type(exc).__name__}: {exc}",
                    hint="the model cannot serve its own sample items; fix the model, or set "
                    "'warmup: false' on its model entry to start it without warming up",
                ) from exc
    seconds = time.perf_counter() - start
    log.info("%s: warmed up in %.2f s (%s)", label, seconds, ", ".join(r.name for r in roles))
    return seconds


__all__ = ["WARMUP_MAX_BATCH", "warm_up", "warmup_batches", "warmup_sizes"]
