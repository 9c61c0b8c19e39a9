"""Nothing acknowledged is lost: `mmserve index add` killed with SIGKILL, again and again.

A real subprocess ingests a text file in small batches; its progress bar (stderr) advances
only after a batch is committed. The test kills it at random moments (a fixed seed, so every
run kills at the same points): mostly after a random number of acknowledged batches plus a
random few milliseconds -- mid-embedding, mid-write or mid-commit -- and sometimes during
start-up. After every kill the store must open, hold every acknowledged item, and hold no
duplicates; a final uninterrupted run must add exactly the missing items.
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
from pathlib import Path

import lancedb
import pytest
import yaml

from mmserve.stores import content_id
from mmserve.stores.lancedb_store import LanceDBStore

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
        command = [sys.executable, "-m", "mmserve.cli_index", "add", "texts", str(source)]
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


def _stored_ids(store_path: Path) -> list[str]:
    db = lancedb.connect(str(store_path))
    if "texts" not in db.list_tables().tables:
        return []
    ids: list[str] = db.open_table("texts").to_arrow().column("id").to_pylist()
    return ids


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(_texts()) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": {"text_encoder": {"backend": "fake", "source": "fake://"}},
                "store": {"kind": "lancedb", "path": "store"},
                "workflows": [],
            }
        )
    )
    store_path = tmp_path / "store"
    expected = [content_id(text=text) for text in _texts()]
    rng = random.Random(20261127)
    kills_mid_ingest = 0
    for round_number in range(ROUNDS):
        child = _Child(config, source)
        if round_number == 1:  # once: a kill during start-up, before any batch
            time.sleep(rng.uniform(0.0, 0.5))
            child.process.send_signal(signal.SIGKILL)
            child.finish()
        else:
            # a few batches past what is already stored, so each kill lands amid new writes
            done = len(_stored_ids(store_path))
            target = min(done + rng.randrange(1, 10) * BATCH, TOTAL - BATCH)
            child.kill_after(target, rng.uniform(0.0, 0.03))
        acknowledged = child.acknowledged
        kills_mid_ingest += 0 < acknowledged < TOTAL

        stored = _stored_ids(store_path)
        assert len(stored) == len(set(stored)), f"round {round_number}: duplicate ids"
        assert set(stored) <= set(expected)
        missing = set(expected[:acknowledged]) - set(stored)
        assert not missing, f"round {round_number}: {len(missing)} acknowledged items lost"
        if stored:  # the store stays readable and searchable through the mmserve API
            reopened = LanceDBStore(str(store_path))
            assert reopened.get_collection("texts").count == len(stored)

    assert kills_mid_ingest >= ROUNDS - 2

    before = len(_stored_ids(store_path))
    command = [sys.executable, "-m", "mmserve.cli_index", "add", "texts", str(source)]
    command += ["--config", str(config), "--batch-size", str(BATCH), "--json"]
    final = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert (report["inserted"], report["already_present"]) == (TOTAL - before, before)
    assert sorted(_stored_ids(store_path)) == sorted(expected)
