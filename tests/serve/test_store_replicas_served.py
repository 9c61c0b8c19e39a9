"""The store with reader replicas on a real Ray Serve (``store: {replicas: 2}``, LanceDB):
health lists the writer and both readers, a search right after an acknowledged add sees it,
every shipped retrieval workflow and item listing works unchanged, `mmserve index
add|search|list|drop` beside the server, and a reader SIGKILLed under concurrent searches
costs no search (the shipped client). On the shared app of the weight-free ``fake`` models
(shared_fake.py), whose store has two readers; this module's collections have names of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from serve_support import ROOT, wait_ready
from shared_fake import FakeApp

from mmserve import Client
from mmserve.client.errors import ApiNotFoundError
from mmserve.serve.plan import APP_NAME, STORE_READER_NAME

pytestmark = pytest.mark.serve

#: This module's collections in the shared app (the fuzz run fills its own).
CAPTIONS, IMAGES = "replica_captions", "replica_images"
RETRIEVAL = {
    "caption_then_retrieve": {
        "image": ROOT / "examples" / "images" / "red_circle.png",
        "collection": CAPTIONS,
    },
    "retrieve_then_answer": {"question": "what shape is red?", "collection": IMAGES},
    "search_images": {"text": "a yellow sun", "top_k": 2, "collection": IMAGES},
    "answer_each": {"question": "what shape is it?", "top_k": 2, "collection": IMAGES},
    "caption_matches": {"text": "a red circle", "top_k": 2, "collection": IMAGES},
}
MMSERVE = str(Path(sys.executable).with_name("mmserve"))


@pytest.fixture(scope="module")
def served(fake_app: FakeApp) -> FakeApp:
    """The shared app of the fake models (shared_fake.py): its store has two readers."""
    return fake_app


def _reader_pids() -> list[int]:
    """The live reader replicas' processes, from Ray's actor table (the GCS state)."""
    from ray._private.state import actors

    title = f"ServeReplica:{APP_NAME}:{STORE_READER_NAME}"
    return [
        int(actor["Pid"])
        for actor in actors().values()
        if actor["ActorClassName"] == title and actor["State"] == "ALIVE" and actor["Pid"]
    ]


def test_health_lists_the_writer_and_both_readers(served: FakeApp) -> None:
    deployments = wait_ready(served.url)["deployments"]
    assert deployments["store"]["replicas"] == 1
    assert deployments[STORE_READER_NAME]["replicas"] == 2
    assert len(_reader_pids()) == 2


def test_reads_after_adds_and_every_retrieval_workflow(served: FakeApp) -> None:
    captions = [
        json.loads(line)
        for line in (ROOT / "examples" / "captions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    images = sorted((ROOT / "examples" / "images").glob("*.png"))
    with Client(served.url) as client:
        # each add acknowledged, then read at once: whichever replica answers sees it
        for n, caption in enumerate(captions):
            added = client.collections.add(CAPTIONS, texts=[caption["text"]])
            assert client.collections.get(CAPTIONS)["count"] == n + 1
            top = client.collections.search(CAPTIONS, text=caption["text"], top_k=1)
            assert top[0]["id"] == added["ids"][0]
        names = [path.stem for path in images]
        client.collections.add(IMAGES, images=images, ids=names)
        assert client.collections.search(IMAGES, image=images[0], top_k=1)[0]["id"] == names[0]
        listed = {c["name"]: c["count"] for c in client.collections.list()}
        assert listed[CAPTIONS] == len(captions) and listed[IMAGES] == len(names)
        for workflow, inputs in RETRIEVAL.items():
            result = client.run(workflow, **inputs)
            assert [e["status"] for e in result.trace] == ["ok"] * len(result.trace), workflow
    page = httpx.get(f"{served.url}/v1/collections/{IMAGES}/items", params={"limit": 2}).json()
    assert page["total"] == len(names) and len(page["items"]) == 2
    image = httpx.get(f"{served.url}/v1/collections/{IMAGES}/items/{names[0]}/image")
    assert image.status_code == 200 and image.content == images[0].read_bytes()
    strong = httpx.post(
        f"{served.url}/v1/collections/{CAPTIONS}/search",
        json={"text": captions[0]["text"], "top_k": 1},
        headers={"x-mmserve-consistency": "strong"},  # read from the writer
    )
    assert strong.status_code == 200 and strong.json()["matches"][0]["score"] > 0.99


def _cli(served: FakeApp, *args: str) -> str:
    command = [MMSERVE, "index", *args, "--config", str(served.config_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_mmserve_index_beside_the_served_replicas(served: FakeApp) -> None:
    notes = served.folder / "notes.txt"
    notes.write_text("a note written by the cli\nanother note from the cli\n", encoding="utf-8")
    _cli(served, "add", "cli_notes", str(notes))
    with Client(served.url) as client:  # the readers see what another process committed
        found = client.collections.search("cli_notes", text="a note written by the cli", top_k=1)
        assert found[0]["payload"]["text"] == "a note written by the cli"
        client.collections.add("cli_notes", texts=["a note added over http"])
    query = ["--text", "a note added over http", "--top-k", "1", "--json"]
    searched = json.loads(_cli(served, "search", "cli_notes", *query))
    assert [m["payload"]["text"] for m in searched["matches"]] == ["a note added over http"]
    listed = json.loads(_cli(served, "list", "--json"))["collections"]
    assert {c["name"]: c["count"] for c in listed}["cli_notes"] == 3
    assert "dropped cli_notes (3 items)" in _cli(served, "drop", "cli_notes")
    with Client(served.url) as client, pytest.raises(ApiNotFoundError):
        client.collections.search("cli_notes", text="a note", top_k=1)


def test_a_reader_killed_under_concurrent_searches_costs_no_search(served: FakeApp) -> None:
    """The ingress sends a search whose reader died again (issue 15's re-send), and Serve
    routes it to the other reader: every search of the shipped client is answered."""
    with Client(served.url) as client:
        client.collections.add("killed_reader", texts=[f"note {n}" for n in range(16)])
    victim = _reader_pids()[0]
    answered: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search(worker: int) -> None:
        with Client(served.url) as client:
            n = 0
            while not stop.is_set():
                text = f"note {(worker + n) % 16}"
                try:
                    top = client.collections.search("killed_reader", text=text, top_k=1)
                    answered.append(top[0]["payload"]["text"])
                except Exception as exc:  # reported below
                    errors.append(exc)
                n += 1

    workers = [threading.Thread(target=search, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 300
        while len(answered) < 16 and time.monotonic() < deadline:  # under way
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        before = len(answered)
        while len(answered) < before + 48 and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)
    assert not errors, errors[:3]
    assert len(answered) >= 64
    assert all(text.startswith("note ") for text in answered)
    wait_ready(served.url)  # Serve replaces the reader
    assert victim not in _reader_pids()
