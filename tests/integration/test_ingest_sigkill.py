"""Nothing acknowledged is lost: `mmserve index add` killed with SIGKILL, again and again,
on every store kind: the default LanceDB store and Milvus Lite (the mmserve-milvus plugin,
installed for real so that the subprocess finds it through its entry point).

A real subprocess ingests a text file in small batches; its progress bar (stderr) advances
only after a batch is committed. The test kills it at random moments (a fixed seed, so every
run kills at the same points): mostly after a random number of acknowledged batches plus a
random few milliseconds -- mid-embedding, mid-write or mid-commit -- and sometimes during
start-up. After every kill the store must open, hold every acknowledged item, and hold no
duplicate id (read with the engine's own client, so duplicates the store might hide are
seen); a final uninterrupted run must add exactly the missing items.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lancedb
import pytest
import yaml

from milvus_plugin import import_plugin, install_plugin
from mmserve.stores import content_id, open_store_at

pytestmark = pytest.mark.integration

TOTAL = 400
BATCH = 8
ROUNDS = 6
_PROGRESS = re.compile(rb"(\d+)/(\d+)")


def _texts() -> list[str]:
    return [f"sentence number {n} about topic {n % 7}" for n in range(TOTAL)]


class _Child:
    """The ingest subprocess and the highest acknowledged count its progress bar showed."""

    def __init__(self, config: Path, source: Path) -> None:
        env = {**os.environ, "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1", "COLUMNS": "200"}
        command = [sys.executable, "-m", "mmserve.cli.index", "add", "texts", str(source)]
        command += ["--config", str(config), "--batch-size", str(BATCH)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        self.acknowledged = 0
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        while chunk := os.read(self.process.stderr.fileno(), 4096):
            self.stderr += chunk
            counts = [int(m.group(1)) for m in _PROGRESS.finditer(self.stderr[-512:])]
            if counts:
                self.acknowledged = max(self.acknowledged, *counts)

    def kill_after(self, acknowledged: int, delay_s: float, deadline_s: float = 60.0) -> None:
        give_up = time.monotonic() + deadline_s
        while self.acknowledged < acknowledged and self.process.poll() is None:
            assert time.monotonic() < give_up, self.stderr.decode(errors="replace")
            time.sleep(0.002)
        time.sleep(delay_s)
        self.process.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self) -> int:
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=10)
        return code


def _lancedb_ids(store_path: Path) -> list[str]:
    db = lancedb.connect(str(store_path))
    if "texts" not in db.list_tables().tables:
        return []
    ids: list[str] = db.open_table("texts").to_arrow().column("id").to_pylist()
    return ids


def _milvus_ids(db: Path) -> list[str]:
    """Every row's id, repeats included (an empty list before the collection exists)."""
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import MilvusClient

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


@dataclass(frozen=True)
class _Kind:
    """What differs between store kinds: where the store lives, how its ids are read, the
    kill points' seed, and how long one child may take to reach a kill point."""

    path: str
    stored_ids: Callable[[Path], list[str]]
    seed: int
    deadline_s: float


KINDS = {
    "lancedb": _Kind("store", _lancedb_ids, 20261127, 60.0),
    # Milvus Lite starts its engine in the child and is opened by one process at a time
    "milvus": _Kind("milvus.db", _milvus_ids, 20261129, 300.0),
}


def _count(kind: str, location: Path) -> int:
    store = open_store_at(kind, str(location))
    try:
        return store.get_collection("texts").count
    finally:
        store.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    kind: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = KINDS[kind]
    if kind == "milvus":
        import_plugin()
        monkeypatch.setenv("PYTHONPATH", str(install_plugin(tmp_path_factory)))
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(_texts()) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": {"text_encoder": {"backend": "fake", "source": "fake://"}},
                "store": {"kind": kind, "path": spec.path},
                "workflows": [],
            }
        )
    )
    location = tmp_path / spec.path
    expected = [content_id(text=text) for text in _texts()]
    rng = random.Random(spec.seed)
    kills_mid_ingest = 0
    for round_number in range(ROUNDS):
        # a few batches past what is already stored, so each kill lands amid new writes (read
        # before the child starts: Milvus Lite is opened by one process at a time)
        done = len(spec.stored_ids(location))
        target = min(done + rng.randrange(1, 10) * BATCH, TOTAL - BATCH)
        child = _Child(config, source)
        if round_number == 1:  # once: a kill during start-up, before any batch
            time.sleep(rng.uniform(0.0, 0.5))
            child.process.send_signal(signal.SIGKILL)
            child.finish()
        else:
            child.kill_after(target, rng.uniform(0.0, 0.03), deadline_s=spec.deadline_s)
        acknowledged = child.acknowledged
        kills_mid_ingest += 0 < acknowledged < TOTAL

        stored = spec.stored_ids(location)
        assert len(stored) == len(set(stored)), f"round {round_number}: duplicate ids"
        assert set(stored) <= set(expected)
        missing = set(expected[:acknowledged]) - set(stored)
        assert not missing, f"round {round_number}: {len(missing)} acknowledged items lost"
        if stored:  # the store opens again through the mmserve API and counts what is there
            assert _count(kind, location) == len(stored)

    assert kills_mid_ingest >= ROUNDS - 2

    before = len(spec.stored_ids(location))
    command = [sys.executable, "-m", "mmserve.cli.index", "add", "texts", str(source)]
    command += ["--config", str(config), "--batch-size", str(BATCH), "--json"]
    final = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert (report["inserted"], report["already_present"]) == (TOTAL - before, before)
    assert sorted(spec.stored_ids(location)) == sorted(expected)
