"""Ingest planning (formats, bad files) and batched ingest with a fake gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fake_gateway import FakeGateway, image_vector  # type: ignore[import-not-found]
from PIL import Image

from mmserve.errors import InputError
from mmserve.local.ingest import Skipped, ingest, plan_ingest
from mmserve.stores import MemoryStore, content_id, open_store_at

pytestmark = pytest.mark.unit


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 6), colour).save(path)
    return path


def test_text_formats_are_parsed(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("red apple\n\n  green pear  \n")
    (tmp_path / "b.jsonl").write_text(
        json.dumps("blue sky")
        + "\n"
        + json.dumps({"text": "red rose", "id": 7, "lang": "en", "metadata": {"k": 1}})
        + "\n{not json\n"
        + json.dumps({"title": "no text"})
        + "\n"
    )
    (tmp_path / "c.csv").write_text("id,text,tag\nx1,green grass,nature\nx2,,empty\n")
    plan = plan_ingest([tmp_path / "a.txt", tmp_path / "b.jsonl", tmp_path / "c.csv"])
    assert [e.text for e in plan.entries] == [
        "red apple",
        "green pear",
        "blue sky",
        "red rose",
        "green grass",
    ]
    rose = plan.entries[3]
    assert rose.id == "7"
    assert rose.metadata == {"source": f"{tmp_path / 'b.jsonl'}:2", "lang": "en", "k": 1}
    assert plan.entries[4].id == "x1" and plan.entries[4].metadata["tag"] == "nature"
    where = [s.where for s in plan.skipped]
    assert where == [
        f"{tmp_path / 'b.jsonl'}:3",
        f"{tmp_path / 'b.jsonl'}:4",
        f"{tmp_path / 'c.csv'}:3",
    ]
    assert plan.modality == "text"


def test_bad_files_in_a_folder_are_reported_by_path(tmp_path: Path) -> None:
    _png(tmp_path / "pics" / "red.png", (255, 0, 0))
    _png(tmp_path / "pics" / "sub" / "blue.png", (0, 0, 255))
    (tmp_path / "pics" / "notes.md").write_text("hello")
    (tmp_path / "pics" / ".DS_Store").write_bytes(b"\0\0")
    (tmp_path / "pics" / "empty.txt").write_text("")
    (tmp_path / "pics" / "no_text.csv").write_text("title\nx\n")
    plan = plan_ingest([tmp_path / "pics"])
    assert [e.image_path.name for e in plan.entries if e.image_path] == ["red.png", "blue.png"]
    reasons = {Path(s.where).name: s.reason for s in plan.skipped}
    assert set(reasons) == {"notes.md", "empty.txt", "no_text.csv"}
    assert "not an image" in reasons["notes.md"]
    assert "empty" in reasons["empty.txt"]
    assert "no 'text' column" in reasons["no_text.csv"]


def test_missing_path_and_mixed_modalities_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        plan_ingest([tmp_path / "nope"])
    _png(tmp_path / "mixed" / "a.png", (1, 2, 3))
    (tmp_path / "mixed" / "b.txt").write_text("text\n")
    with pytest.raises(InputError, match=r"both images \(1\) and texts \(1\)"):
        plan_ingest([tmp_path / "mixed"])


def test_ingest_skips_broken_images_and_keeps_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    red = _png(folder / "a_red.png", (255, 0, 0))
    _png(folder / "b_green.png", (0, 255, 0))
    (folder / "c_fake.jpg").write_bytes(b"this is not a jpeg")
    (folder / "d_empty.png").write_bytes(b"")
    (folder / "e_truncated.png").write_bytes(red.read_bytes()[:40])
    store = MemoryStore()
    progress: list[int] = []
    report = asyncio.run(
        ingest(
            FakeGateway(),
            store,
            "pics",
            plan_ingest([folder]),
            batch_size=2,
            on_progress=progress.append,
        )
    )
    assert (report.inserted, report.count) == (2, 2)
    assert sorted(Path(s.where).name for s in report.skipped) == [
        "c_fake.jpg",
        "d_empty.png",
        "e_truncated.png",
    ]
    assert all(isinstance(s, Skipped) and s.reason for s in report.skipped)
    assert progress == [2, 2, 1]
    [match] = store.search(
        "pics",
        image_vector(Image.new("RGB", (2, 2), (255, 0, 0))),
        space=store.get_collection("pics").space,
        top_k=1,
    )
    assert match.payload.image == red.read_bytes()  # the file itself is kept
    assert match.payload.metadata == {"source": str(red)}


def test_rerun_adds_only_what_is_missing(tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(f"red {n}" for n in range(10)) + "\nred 3\n")
    store = open_store_at("lancedb", str(tmp_path / "store"))
    gateway = FakeGateway()
    first_half = plan_ingest([source])
    first_half.entries = first_half.entries[:5]
    asyncio.run(ingest(gateway, store, "t", first_half, batch_size=2))
    gateway.calls.clear()
    report = asyncio.run(ingest(gateway, store, "t", plan_ingest([source]), batch_size=4))
    assert (report.inserted, report.present, report.count) == (5, 6, 10)
    assert sum(n for _, n in gateway.calls) == 5  # only the missing ones were embedded
    ids = {content_id(text=f"red {n}") for n in range(10)}
    assert store.existing_ids("t", sorted(ids)) == ids
