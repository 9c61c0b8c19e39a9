"""Nothing acknowledged is lost on Milvus Lite either: `mmserve index add` into a
`kind: milvus` store killed with SIGKILL at random moments, as test_ingest_sigkill.py does to
the LanceDB store. After every kill the store must open, hold every acknowledged item and no
duplicate id (read with pymilvus itself, so duplicates the store might hide are seen); a final
uninterrupted run must add exactly the missing items.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from milvus_lite.server_manager import server_manager_instance
from pymilvus import MilvusClient
from test_ingest_sigkill import BATCH, ROUNDS, TOTAL, _Child, _texts

from milvus_plugin import import_plugin, install_plugin
from mmserve.stores import content_id, open_store_at

pytestmark = pytest.mark.integration


def _stored_ids(db: Path) -> list[str]:
    """Every row's id, repeats included (an empty list before the collection exists)."""
    if not db.exists():
        return []
    client = MilvusClient(str(db))
    try:
        if not client.has_collection("texts"):
            return []
        client.load_collection("texts")
        rows = client.query("texts", filter='id != ""', output_fields=["id"], limit=TOTAL * 2)
        return [str(row["id"]) for row in rows]
    finally:
        client.close()
        server_manager_instance.release_server(str(db))


def _count(db: Path) -> int:
    store = open_store_at("milvus", str(db))
    try:
        return store.get_collection("texts").count
    finally:
        store.close()


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_plugin()
    monkeypatch.setenv("PYTHONPATH", str(install_plugin(tmp_path / "site")))
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(_texts()) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": {"text_encoder": {"backend": "fake", "source": "fake://"}},
                "store": {"kind": "milvus", "path": "milvus.db"},
                "workflows": [],
            }
        )
    )
    db = tmp_path / "milvus.db"
    expected = [content_id(text=text) for text in _texts()]
    rng = random.Random(20261129)
    kills_mid_ingest = 0
    for round_number in range(ROUNDS):
        # a few batches past what is already stored, so each kill lands amid new writes (read
        # before the child starts: Milvus Lite is opened by one process at a time)
        done = len(_stored_ids(db))
        target = min(done + rng.randrange(1, 10) * BATCH, TOTAL - BATCH)
        child = _Child(config, source)
        if round_number == 1:  # once: a kill during start-up, before any batch
            time.sleep(rng.uniform(0.0, 0.5))
            child.process.send_signal(signal.SIGKILL)
            child.finish()
        else:
            child.kill_after(target, rng.uniform(0.0, 0.03), deadline_s=300.0)
        acknowledged = child.acknowledged
        kills_mid_ingest += 0 < acknowledged < TOTAL

        stored = _stored_ids(db)
        assert len(stored) == len(set(stored)), f"round {round_number}: duplicate ids"
        assert set(stored) <= set(expected)
        missing = set(expected[:acknowledged]) - set(stored)
        assert not missing, f"round {round_number}: {len(missing)} acknowledged items lost"
        if stored:  # the store opens again and counts what is there
            assert _count(db) == len(stored)

    assert kills_mid_ingest >= ROUNDS - 2

    before = len(_stored_ids(db))
    command = [sys.executable, "-m", "mmserve.cli_index", "add", "texts", str(source)]
    command += ["--config", str(config), "--batch-size", str(BATCH), "--json"]
    final = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert (report["inserted"], report["already_present"]) == (TOTAL - before, before)
    assert sorted(_stored_ids(db)) == sorted(expected)
