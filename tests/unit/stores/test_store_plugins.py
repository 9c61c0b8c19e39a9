"""Stores are plugins: the config picks one by name, a third engine needs no engine change."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.config import AppConfig
from mmserve.errors import PluginNotFoundError, PluginRegistrationError
from mmserve.registry import Registry, registry
from mmserve.stores import MemoryStore, open_store
from mmserve.stores.lancedb_store import LanceDBStore

pytestmark = pytest.mark.unit


class RecordingStore(MemoryStore):
    """A stand-in third-party engine."""

    def __init__(self, location: str, options: dict[str, object] | None = None) -> None:
        super().__init__(location)
        self.options = options


def test_builtin_stores_are_registered() -> None:
    assert {"memory", "lancedb"} <= set(registry.names("store"))


def test_config_opens_the_lancedb_store_under_its_folder(tmp_path: Path) -> None:
    config = AppConfig.from_dict({"store": {"kind": "lancedb", "path": "data"}}, base_dir=tmp_path)
    store = open_store(config)
    assert isinstance(store, LanceDBStore)
    assert Path(store.location) == tmp_path / "data"
    assert (tmp_path / "data").is_dir()


def test_a_third_store_plugs_in_by_name(tmp_path: Path) -> None:
    own = Registry()
    own.register("store", "recording", RecordingStore)
    config = AppConfig.from_dict(
        {"store": {"kind": "recording", "path": "x", "options": {"shards": 3}}},
        base_dir=tmp_path,
    )
    store = open_store(config, registry=own)
    assert isinstance(store, RecordingStore)
    assert store.options == {"shards": 3}


def test_unknown_store_kind_lists_the_known_ones(tmp_path: Path) -> None:
    config = AppConfig.from_dict({"store": {"kind": "nope"}}, base_dir=tmp_path)
    with pytest.raises(PluginNotFoundError, match="lancedb"):
        open_store(config)


def test_a_store_lacking_methods_is_refused() -> None:
    with pytest.raises(PluginRegistrationError, match="search"):
        Registry().register("store", "broken", type("Broken", (), {"upsert": None}))
