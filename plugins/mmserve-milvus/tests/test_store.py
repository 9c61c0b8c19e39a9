"""What only the milvus store plugin does (the contract itself is test_contract.py): survive
reopening, keep payloads Milvus cannot hold in a blob folder, build the configured
index, refuse a second process clearly, and talk to a Milvus server by URI with a token."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmserve.errors import StoreError
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Payload, VectorStore, open_store_at

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=16)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, SPACE.dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _open(location: Path | str, options: dict[str, object] | None = None) -> VectorStore:
    return open_store_at("milvus", str(location), options)


def wait_for_index(db: Path, collection: str) -> None:
    """Wait for Milvus Lite's background index build on ``collection`` (in this process's
    engine for ``db``), so that searches run on the index. Milvus Lite has no public call
    for it (describe_index always says Finished): private engine API, tests only."""
    from milvus_lite.server_manager import server_manager_instance

    _, engine, _ = server_manager_instance._servers[str(db.resolve())]
    engine.get_collection(collection)._wait_for_bg()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[VectorStore]:
    store = _open(tmp_path / "milvus.db")
    yield store
    store.close()


def test_collections_items_and_images_survive_reopening(tmp_path: Path) -> None:
    first = _open(tmp_path / "milvus.db")
    first.create_collection("pics", space=SPACE, modality="image")
    vectors = _vectors(3)
    items = [
        Item(id=f"i{n}", vector=v, payload=Payload(image=PNG + bytes([n]), metadata={"n": n}))
        for n, v in enumerate(vectors)
    ]
    first.upsert("pics", items, space=SPACE)
    first.close()

    again = _open(tmp_path / "milvus.db")
    [collection] = again.list_collections()
    assert (collection.name, collection.space, collection.modality, collection.count) == (
        "pics",
        SPACE,
        "image",
        3,
    )
    [match] = again.search("pics", vectors[1], space=SPACE, top_k=1)
    assert (match.id, match.payload.metadata) == ("i1", {"n": 1})
    assert match.payload.image == PNG + b"\x01"
    again.close()


def test_images_live_in_the_blob_folder_beside_the_db(lite: VectorStore, tmp_path: Path) -> None:
    lite.create_collection("pics", space=SPACE, modality="image")
    [vector] = _vectors(1)
    lite.upsert("pics", [Item(id="p", vector=vector, payload=Payload(image=PNG))], space=SPACE)
    key = hashlib.sha256(PNG).hexdigest()
    assert (tmp_path / "milvus-blobs" / "pics" / key[:2] / key).read_bytes() == PNG
    [without] = lite.search("pics", vector, space=SPACE, top_k=1, include_images=False)  # type: ignore[call-arg]
    assert (without.id, without.payload.image) == ("p", None)
    lite.drop_collection("pics")
    assert not (tmp_path / "milvus-blobs" / "pics").exists()


def test_a_text_longer_than_a_milvus_field_round_trips(lite: VectorStore) -> None:
    lite.create_collection("docs", space=SPACE, modality="text")
    long_text = "é" * 40_000  # 80000 bytes of UTF-8, over Milvus' 65535
    [vector] = _vectors(1)
    lite.upsert("docs", [Item(id="d", vector=vector, payload=Payload(text=long_text))], space=SPACE)
    [match] = lite.search("docs", vector, space=SPACE, top_k=1)
    assert match.payload.text == long_text


def test_names_with_dashes_and_underscores_stay_apart(lite: VectorStore) -> None:
    for name in ("a-b", "a_b", "a_0b"):
        lite.create_collection(name, space=SPACE, modality="text")
        lite.upsert(name, [Item(id=name, vector=_vectors(1)[0])], space=SPACE)
    assert {c.name: c.count for c in lite.list_collections()} == {"a-b": 1, "a_b": 1, "a_0b": 1}
    assert lite.existing_ids("a-b", ["a-b", "a_b"]) == {"a-b"}


@pytest.mark.parametrize(
    ("options", "index_type", "params"),
    [
        ({}, "HNSW", {"M": 16, "efConstruction": 200}),
        ({"index_type": "ivf_flat", "nlist": 8, "nprobe": 8}, "IVF_FLAT", {"nlist": 8}),
        (
            {"index_type": "hnsw", "M": 8, "ef_construction": 64},
            "HNSW",
            {"M": 8, "efConstruction": 64},
        ),
    ],
)
def test_the_index_is_built_from_the_options(
    tmp_path: Path, options: dict[str, object], index_type: str, params: dict[str, int]
) -> None:
    store = _open(tmp_path / "milvus.db", options)
    store.create_collection("big", space=SPACE, modality="text")
    vectors = _vectors(600)
    store.upsert("big", [Item(id=f"v{n}", vector=v) for n, v in enumerate(vectors)], space=SPACE)
    store.optimize("big")
    info = store.index_info("big")  # type: ignore[attr-defined]
    assert (info["index_type"], info["metric_type"]) == (index_type, "COSINE")
    assert info["indexed_rows"] == 600
    assert {k: int(v) for k, v in info["params"].items()} == params
    hits = sum(
        store.search("big", vectors[n], space=SPACE, top_k=1)[0].id == f"v{n}"
        for n in range(0, 600, 30)
    )
    assert hits == 20
    store.close()


@pytest.mark.parametrize(
    ("index", "narrow", "wide"),
    [
        ({"index_type": "ivf_flat", "nlist": 32}, {"nprobe": 1}, {"nprobe": 32}),
        ({"index_type": "hnsw", "M": 4, "ef_construction": 8}, {"ef": 10}, {"ef": 400}),
    ],
)
def test_the_query_options_reach_the_engine(
    tmp_path: Path, index: dict[str, object], narrow: dict[str, int], wide: dict[str, int]
) -> None:
    """Recall@10 follows nprobe / ef: the search parameters are sent in the form Milvus Lite
    reads (probing every IVF list is an exact search)."""
    vectors, queries = _vectors(2000, seed=1), _vectors(20, seed=2)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    db = tmp_path / "milvus.db"
    store = _open(db, index)
    store.create_collection("c", space=SPACE, modality="text")
    store.upsert("c", [Item(id=str(n), vector=v) for n, v in enumerate(vectors)], space=SPACE)
    store.optimize("c")
    wait_for_index(db, "c")
    store.close()
    recall = {}
    for name, query_options in (("narrow", narrow), ("wide", wide)):
        store = _open(db, {**index, **query_options})
        found = [
            {int(m.id) for m in store.search("c", query, space=SPACE, top_k=10)}
            for query in queries
        ]
        hits = [len(f & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
        recall[name] = sum(hits) / (10 * len(queries))
        store.close()
    assert recall["wide"] >= 0.95 and recall["narrow"] < 0.8, recall


def test_optimize_rebuilds_the_index_when_the_options_change(tmp_path: Path) -> None:
    first = _open(tmp_path / "milvus.db")
    first.create_collection("c", space=SPACE, modality="text")
    vectors = _vectors(50)
    first.upsert("c", [Item(id=f"v{n}", vector=v) for n, v in enumerate(vectors)], space=SPACE)
    first.close()
    second = _open(tmp_path / "milvus.db", {"index_type": "IVF_FLAT", "nlist": 4})
    assert second.index_info("c")["index_type"] == "HNSW"  # type: ignore[attr-defined]
    second.optimize("c")
    assert second.index_info("c")["index_type"] == "IVF_FLAT"  # type: ignore[attr-defined]
    assert second.search("c", vectors[7], space=SPACE, top_k=1)[0].id == "v7"
    second.close()


def test_bad_options_and_paths_are_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="index_type"):
        _open(tmp_path / "m.db", {"index_type": "DISKANN_PLUS"})
    with pytest.raises(StoreError, match="colour"):
        _open(tmp_path / "m.db", {"colour": "red"})
    with pytest.raises(StoreError, match=r"neither a server URI nor a \.db file"):
        _open(tmp_path / "folder")
    with pytest.raises(StoreError, match="MMSERVE_TEST_MILVUS_TOKEN is not set"):
        _open("http://127.0.0.1:1", {"token_env": "MMSERVE_TEST_MILVUS_TOKEN"})


def test_a_second_process_is_refused_clearly(lite: VectorStore, tmp_path: Path) -> None:
    lite.create_collection("c", space=SPACE, modality="text")
    program = (
        "from mmserve.errors import StoreError\n"
        "from mmserve.stores import open_store_at\n"
        "try:\n"
        f"    open_store_at('milvus', {str(tmp_path / 'milvus.db')!r})\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert "another process has it open" in result.stdout, result.stderr


def test_a_milvus_server_by_uri_with_a_token_and_a_blob_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server (here Milvus Lite's own gRPC server, as `milvus-lite` runs it standalone) is
    reached by URI; the token comes from the named variable; images need a shared blob_path."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path / "server-data"))
    monkeypatch.setenv("MMSERVE_TEST_MILVUS_TOKEN", "root:Milvus")
    options: dict[str, object] = {"token_env": "MMSERVE_TEST_MILVUS_TOKEN"}
    try:
        no_blobs = _open(f"http://127.0.0.1:{port}", options)
        no_blobs.create_collection("pics", space=SPACE, modality="image")
        [vector] = _vectors(1)
        item = Item(id="p", vector=vector, payload=Payload(image=PNG, metadata={"k": 1}))
        with pytest.raises(StoreError, match="blob_path"):
            no_blobs.upsert("pics", [item], space=SPACE)
        no_blobs.close()
        store = _open(f"http://127.0.0.1:{port}", {**options, "blob_path": str(tmp_path / "b")})
        assert store.upsert("pics", [item], space=SPACE).inserted == 1
        [match] = store.search("pics", vector, space=SPACE, top_k=1)
        assert (match.id, match.payload.image, match.payload.metadata) == ("p", PNG, {"k": 1})
        assert match.score == pytest.approx(1.0, abs=1e-5)
        store.close()
    finally:
        server.stop(grace=0)
        db.close()


def test_browsing_pages_walk_every_item_once_in_id_order(lite: VectorStore) -> None:
    """Milvus gives a plain limited query no stable order; the pages still cover every item
    once, in id order, whatever order the items were written in."""
    lite.create_collection("notes", space=SPACE, modality="text")
    ids = [f"n{k:03d}" for k in range(40)]
    written = ids[::-1][::2] + ids[::-1][1::2]  # neither id order nor its reverse
    vectors = _vectors(len(ids), seed=3)
    for start in range(0, len(written), 7):
        batch = written[start : start + 7]
        items = [
            Item(id=i, vector=vectors[ids.index(i)], payload=Payload(text=i, metadata={"i": i}))
            for i in batch
        ]
        lite.upsert("notes", items, space=SPACE)
    pages = [lite.list_items("notes", offset=o, limit=9) for o in range(0, 45, 9)]  # type: ignore[attr-defined]
    assert [i.id for page in pages for i in page] == ids
    assert pages[0][0].payload.text == "n000" and pages[0][0].payload.metadata == {"i": "n000"}
