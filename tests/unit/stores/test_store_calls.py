"""The store's calls are written once (mmserve.stores.calls.STORE_CALLS): the contract's
protocols, the awaitable view, the thread-pool wrapper, the store replica and its client all
have exactly those methods, and the last three derive them from the table."""

from __future__ import annotations

import inspect

import pytest

from mmserve.serve.store_server import StoreClient, StoreServer
from mmserve.stores.async_store import AsyncStore, AsyncVectorStore
from mmserve.stores.calls import CALLS, STORE_CALLS, StoreCalls
from mmserve.stores.contract import (
    CAPABILITY_METHODS,
    BrowsableStore,
    ImagesOnRequestStore,
    VectorStore,
)

pytestmark = pytest.mark.unit

LIFECYCLE = {"__init__", "close"}


def _methods(protocol: type) -> set[str]:
    return {
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and (not name.startswith("_") or name == "__init__")
    }


def test_the_table_lists_the_contract_methods_and_the_awaitable_view_has_them_all() -> None:
    contract = _methods(VectorStore) | _methods(BrowsableStore) | _methods(ImagesOnRequestStore)
    assert {call.name for call in STORE_CALLS} == contract - LIFECYCLE
    assert {call.name for call in STORE_CALLS} == _methods(AsyncVectorStore) - LIFECYCLE
    assert _methods(BrowsableStore) == set(CAPABILITY_METHODS["browse"])
    assert _methods(ImagesOnRequestStore) == set(CAPABILITY_METHODS["images_on_request"])


@pytest.mark.parametrize("forwarder", [AsyncStore, StoreServer, StoreClient])
def test_the_forwarding_layers_derive_every_call_from_the_table(forwarder: type) -> None:
    assert issubclass(forwarder, StoreCalls)
    for call in STORE_CALLS:
        assert call.name not in vars(forwarder), f"{forwarder.__name__} spells out {call.name}"
        assert inspect.iscoroutinefunction(getattr(forwarder, call.name)), call.name


def test_what_is_sent_again_after_a_dead_replica() -> None:
    assert CALLS["upsert"].repeats({}) and CALLS["search"].repeats({"top_k": 3})
    assert not CALLS["drop_collection"].repeats({})
    assert CALLS["create_collection"].repeats({}) and CALLS["create_collection"].repeats(
        {"exist_ok": True}
    )
    assert not CALLS["create_collection"].repeats({"exist_ok": False})
    kinds = {call.name: call.kind for call in STORE_CALLS}
    assert kinds["existing_ids"] == "lookup"  # an ingest's lookups go to the writer
    assert {n for n, k in kinds.items() if k == "write"} == {
        "create_collection",
        "drop_collection",
        "upsert",
        "optimize",
    }
