"""Store reader replicas in process (no Ray): the config, the deployments they become, where
the store client sends each call (HTTP with and without ``x-mmserve-consistency``), and the
consistency a reader gives on a shared LanceDB folder."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_support import AUTH, build_api
from fastapi.testclient import TestClient
from handle_support import Pending

from mmserve.config import AppConfig
from mmserve.deploy.preflight import required_resources
from mmserve.errors import ConfigError, StoreError
from mmserve.models.spec import EmbeddingSpace
from mmserve.serve.plan import (
    STORE_NAME,
    STORE_READER_NAME,
    all_deployment_options,
    store_reader_options,
)
from mmserve.serve.store_server import StoreClient, StoreServer
from mmserve.stores import Item, Payload

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=8)
FAKE = {"backend": "fake", "source": "fake://", "cpus": 0.5}


def _config(store: dict[str, Any]) -> AppConfig:
    return AppConfig.from_dict({"models": {"captioner": FAKE}, "store": store})


def _item(name: str, seed: int) -> Item:
    vector = np.random.default_rng(seed).standard_normal(SPACE.dim).astype(np.float32)
    return Item(id=name, vector=vector, payload=Payload(text=name))


# -- the config and the deployments ---------------------------------------------------------


def test_store_replicas_become_a_reader_deployment_beside_the_one_writer() -> None:
    entries = {e["name"]: e for e in all_deployment_options(_config({"replicas": 3}))}
    assert entries[STORE_NAME]["num_replicas"] == 1  # still the one writer
    assert entries[STORE_READER_NAME]["num_replicas"] == 3
    assert STORE_READER_NAME not in {e["name"] for e in all_deployment_options(_config({}))}
    # the smallest scale asks Ray for the readers' CPUs too
    without = required_resources(_config({}))["CPU"]
    assert required_resources(_config({"replicas": 3}))["CPU"] == pytest.approx(without + 0.75)


def test_store_autoscaling_scales_the_readers() -> None:
    scaling = {"min_replicas": 2, "max_replicas": 6, "target_ongoing_requests": 8}
    options = store_reader_options(_config({"autoscaling": scaling}))
    assert options is not None and "num_replicas" not in options
    assert options["autoscaling_config"] == {**scaling, "initial_replicas": 2}


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"replicas": 2, "autoscaling": {}}, "either 'replicas' or 'autoscaling'"),
        ({"autoscaling": {"min_replicas": 0}}, "min_replicas must be at least 1"),
        ({"kind": "memory", "replicas": 2}, "memory store lives inside one process"),
        ({"replicas": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_store_replica_settings_are_refused_clearly(
    store: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(store)


# -- where the client sends each call -------------------------------------------------------


class _Handle:
    """A deployment handle over a :class:`StoreServer` in this process; logs each call."""

    def __init__(self, server: StoreServer, label: str, log: list[tuple[str, str]]) -> None:
        self._server, self._label, self._log = server, label, log
        self._method = ""

    def options(self, *, method_name: str) -> _Handle:
        handle = _Handle(self._server, self._label, self._log)
        handle._method = method_name
        return handle

    def remote(self, *args: Any, **kwargs: Any) -> Pending:
        self._log.append((self._label, self._method))
        return Pending(getattr(self._server, self._method)(*args, **kwargs))


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[tuple[StoreClient, list[tuple[str, str]]]]:
    """A store client over a writer and a reader opening the same LanceDB folder."""
    log: list[tuple[str, str]] = []
    writer = _Handle(StoreServer("lancedb", str(tmp_path), {}), "writer", log)
    reader = _Handle(StoreServer("lancedb", str(tmp_path), {}, reader=True), "reader", log)
    yield StoreClient(writer, reader), log  # type: ignore[arg-type]


def test_reads_go_to_the_readers_writes_and_ingest_lookups_to_the_writer(
    routed: tuple[StoreClient, list[tuple[str, str]]],
) -> None:
    client, log = routed

    async def scenario() -> None:
        await client.create_collection("c", space=SPACE, modality="text")
        await client.upsert("c", [_item("a", 1)], space=SPACE)
        await client.existing_ids("c", ["a"])
        # read after an acknowledged add, on another replica: it sees the add
        assert [m.id for m in await client.search("c", _item("a", 1).vector, space=SPACE)] == ["a"]
        assert (await client.get_collection("c")).count == 1
        assert [c.name for c in await client.list_collections()] == ["c"]
        assert [i.id for i in await client.list_items("c")] == ["a"]
        assert (await client.get_item("c", "a")).payload.text == "a"
        await client.optimize("c")
        await client.drop_collection("c")

    asyncio.run(scenario())
    assert log == [
        ("writer", "create_collection"),
        ("writer", "upsert"),
        ("writer", "existing_ids"),
        ("reader", "search"),
        ("reader", "get_collection"),
        ("reader", "list_collections"),
        ("reader", "list_items"),
        ("reader", "get_item"),
        ("writer", "optimize"),
        ("writer", "drop_collection"),
    ]


def test_a_reader_replica_refuses_writes(tmp_path: Path) -> None:
    reader = StoreServer("lancedb", str(tmp_path), {}, reader=True)
    with pytest.raises(StoreError, match="does not write"):
        asyncio.run(reader.create_collection("c", space=SPACE, modality="text"))


def test_the_consistency_header_sends_a_requests_reads_to_the_writer(
    routed: tuple[StoreClient, list[tuple[str, str]]],
) -> None:
    store, log = routed
    with TestClient(build_api(store=store), headers=AUTH) as http:
        added = http.post("/v1/collections/notes/items", json={"items": [{"text": "a red car"}]})
        assert added.status_code == 200, added.text
        for level, replica in [("strong", "writer"), ("default", "reader"), (None, "reader")]:
            log.clear()
            headers = {"x-mmserve-consistency": level} if level else {}
            found = http.post(
                "/v1/collections/notes/search", json={"text": "a red car"}, headers=headers
            )
            assert found.status_code == 200, found.text
            assert found.json()["matches"][0]["payload"]["text"] == "a red car"
            assert ("writer" if replica == "reader" else "reader", "search") not in log
            assert (replica, "search") in log
        bad = http.get("/v1/collections", headers={"x-mmserve-consistency": "eventual"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "invalid_request" and "default, strong" in error["message"]
    assert error["request_id"]


# -- the consistency a reader gives -----------------------------------------------------------


def test_a_reader_with_an_interval_may_lag_the_writer_by_at_most_that_interval(
    tmp_path: Path,
) -> None:
    """``read_consistency_s: 0`` (the default) reads the latest commit every time; a larger
    interval lets a reader answer from the version it holds until the interval has passed,
    while the writer always sees its own writes (what ``x-mmserve-consistency: strong``
    reads from)."""
    writer = StoreServer("lancedb", str(tmp_path), {})
    strong = StoreServer("lancedb", str(tmp_path), {}, reader=True)
    lagging = StoreServer("lancedb", str(tmp_path), {"read_consistency_s": 3600}, reader=True)

    async def counts() -> tuple[int, int, int]:
        found = [await s.get_collection("c") for s in (writer, strong, lagging)]
        return tuple(c.count for c in found)  # type: ignore[return-value,union-attr]

    async def scenario() -> list[tuple[int, int, int]]:
        await writer.create_collection("c", space=SPACE, modality="text")
        await writer.upsert("c", [_item("a", 1)], space=SPACE)
        first = await counts()  # every replica opens the table now
        await writer.upsert("c", [_item("b", 2)], space=SPACE)
        return [first, await counts()]

    assert asyncio.run(scenario()) == [(1, 1, 1), (2, 2, 1)]


def test_the_client_asks_for_read_your_writes_with_consistency_strong(
    routed: tuple[StoreClient, list[tuple[str, str]]],
) -> None:
    """`client.collections.search(..., consistency="strong")` is the header above, from the
    shipped client: its search reads from the writer; the default reads from a reader."""
    import httpx

    from mmserve.client.clients import AsyncClient

    store, log = routed
    app = build_api(store=store)
    key = AUTH["authorization"].removeprefix("Bearer ")

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://api", api_key=key, transport=transport) as client:
            await client.collections.add("notes", texts=["a red car"])
            for consistency, replica in [("strong", "writer"), ("default", "reader")]:
                log.clear()
                matches = await client.collections.search(
                    "notes",
                    text="a red car",
                    consistency=consistency,  # type: ignore[arg-type]
                )
                assert matches[0]["payload"]["text"] == "a red car"
                assert [call for call in log if call[1] == "search"] == [(replica, "search")]

    asyncio.run(scenario())
