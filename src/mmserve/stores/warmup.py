"""Warm-up of a store before its replica takes traffic (issue 16).

The first search of a freshly opened store is slow: the store opens the collection's table,
reads its manifest and index, and starts its query engine on first use (measured on LanceDB:
68 ms for the first search of a 20-item collection against 9.5 ms for the second; served on
the ``random://`` profile, ``search_images`` took 3.5x its steady p50 on its first run). The
store replica therefore runs one search (and one listing, when the store can list) in every
collection it holds before Serve marks it healthy, exactly as a model replica runs its roles'
samples (:mod:`mmserve.serve.warmup`).

Warming reads only: nothing is written, so a store shared with other processes is untouched.
A collection that fails to warm is logged and skipped -- the same call made by a user will
answer with the store's own error -- so a damaged collection never keeps the store from
starting. At most :data:`WARMUP_MAX_COLLECTIONS` collections are warmed, the first by name,
so that a store holding thousands of collections still starts in bounded time. This module
imports no Ray.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from mmserve.stores.contract import VectorStore, can_browse

#: Collections warmed at most (the first by name); the others warm on their first use.
WARMUP_MAX_COLLECTIONS = 32

_log = logging.getLogger(__name__)


def warm_store(
    store: VectorStore,
    *,
    max_collections: int = WARMUP_MAX_COLLECTIONS,
    log: logging.Logger | None = None,
) -> float:
    """Run one search (and one listing) per collection of ``store``; the seconds it took."""
    log = log or _log
    started = time.perf_counter()
    collections = sorted(store.list_collections(), key=lambda c: c.name)
    warmed = 0
    for collection in collections[:max_collections]:
        # a unit vector: any direction is a valid cosine query, and the zero vector is not
        probe = np.zeros(collection.space.dim, dtype=np.float32)
        probe[0] = 1.0
        try:
            store.search(collection.name, probe, space=collection.space, top_k=1)
            if can_browse(store):
                store.list_items(collection.name, offset=0, limit=1)
        except Exception as exc:  # a damaged collection must not keep the store from starting
            log.warning("store warm-up: collection %r failed (%s); skipped", collection.name, exc)
            continue
        warmed += 1
    seconds = time.perf_counter() - started
    skipped = max(0, len(collections) - max_collections)
    log.info(
        "store warm-up: %d collection(s) in %.3f s%s",
        warmed,
        seconds,
        f" ({skipped} more warm on first use)" if skipped else "",
    )
    return seconds
