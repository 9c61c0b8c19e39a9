"""Ingesting files into a collection: folders of images, and ``.txt``/``.jsonl``/``.csv`` texts.

Two phases. :func:`plan_ingest` walks the paths (folders recursively, in sorted order so a
re-run sees the same sequence) and parses the text files; anything it cannot use -- a file
that is neither an image nor a text file, an empty file, a bad JSONL line, a CSV without a
``text`` column -- becomes a :class:`Skipped` entry naming the path and the reason, and the
rest goes on. :func:`ingest` then works through the plan in batches: images are decoded (a
truncated or fake image is skipped the same way), ids are content hashes unless given, the
items whose ids are already in the collection are left alone (so a re-run after a crash
only embeds and adds what is missing), and the rest is embedded and upserted. A batch is
reported done through ``on_progress`` only after the store has committed it.

Text file formats:

``.txt``    one text per non-empty line
``.jsonl``  one JSON value per line: a string, or an object with ``text`` and optional
            ``id`` and ``metadata`` (other keys are kept as metadata too)
``.csv``    a header row with a ``text`` column; optional ``id``; other columns -> metadata
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmserve.errors import CollectionNotFoundError, InputError, MmserveError
from mmserve.gateway.contract import ModelGateway
from mmserve.media import decode_image
from mmserve.stores.contract import Modality, VectorStore
from mmserve.workflow.steps.index import Document, index_documents

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
TEXT_SUFFIXES = frozenset({".txt", ".jsonl", ".csv"})
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class Skipped:
    """Something that was not ingested, and why (``where`` is a path, or ``path:line``)."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class Entry:
    """One planned item: a parsed text, or an image file still to be read."""

    where: str
    text: str | None = None
    image_path: Path | None = None
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestPlan:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def modality(self) -> Modality | None:
        if not self.entries:
            return None
        return "image" if self.entries[0].image_path is not None else "text"


@dataclass
class IngestReport:
    collection: str
    planned: int = 0
    inserted: int = 0
    present: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "planned": self.planned,
            "inserted": self.inserted,
            "already_present": self.present,
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
            "count": self.count,
        }


# --- planning ------------------------------------------------------------------------------


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.is_file() and not hidden:
            yield path


def _read_text(path: Path, plan: IngestPlan) -> str | None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        plan.skipped.append(Skipped(str(path), "not UTF-8 text"))
        return None
    if not text.strip():
        plan.skipped.append(Skipped(str(path), "empty file"))
        return None
    return text


def _plan_txt(path: Path, text: str, plan: IngestPlan) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            where = f"{path}:{number}"
            plan.entries.append(Entry(where, text=line.strip(), metadata={"source": where}))


def _jsonl_entry(where: str, value: Any) -> Entry:
    if isinstance(value, str) and value.strip():
        return Entry(where, text=value, metadata={"source": where})
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise ValueError('expected a string or an object with a "text" string')
    if not value["text"].strip():
        raise ValueError('"text" is empty')
    raw_id = value.get("id")
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise ValueError('"id" must be a string or an integer')
    extra = value.get("metadata", {})
    if not isinstance(extra, dict):
        raise ValueError('"metadata" must be an object')
    rest = {k: v for k, v in value.items() if k not in ("text", "id", "metadata")}
    metadata = {"source": where, **rest, **extra}
    item_id = None if raw_id is None else str(raw_id)
    return Entry(where, text=value["text"], id=item_id, metadata=metadata)


def _plan_jsonl(path: Path, text: str, plan: IngestPlan) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            plan.entries.append(_jsonl_entry(where, json.loads(line)))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            plan.skipped.append(Skipped(where, f"bad JSONL line: {exc}"))


def _plan_csv(path: Path, text: str, plan: IngestPlan) -> None:
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "text" not in columns:
        plan.skipped.append(
            Skipped(str(path), f"no 'text' column (columns: {', '.join(columns) or 'none'})")
        )
        return
    for row in reader:
        where = f"{path}:{reader.line_num}"
        value = (row.get("text") or "").strip()
        if not value:
            plan.skipped.append(Skipped(where, "empty 'text' cell"))
            continue
        metadata = {k: v for k, v in row.items() if k not in ("text", "id") and k is not None}
        item_id = (row.get("id") or "").strip() or None
        plan.entries.append(
            Entry(where, text=value, id=item_id, metadata={"source": where, **metadata})
        )


_TEXT_PARSERS: dict[str, Callable[[Path, str, IngestPlan], None]] = {
    ".txt": _plan_txt,
    ".jsonl": _plan_jsonl,
    ".csv": _plan_csv,
}


def _plan_file(path: Path, plan: IngestPlan) -> None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        plan.entries.append(Entry(str(path), image_path=path, metadata={"source": str(path)}))
    elif suffix in TEXT_SUFFIXES:
        text = _read_text(path, plan)
        if text is not None:
            _TEXT_PARSERS[suffix](path, text, plan)
    else:
        plan.skipped.append(Skipped(str(path), "not an image or a text file (.txt, .jsonl, .csv)"))


def plan_ingest(paths: Sequence[Path]) -> IngestPlan:
    """Find and parse everything to ingest under ``paths``; refuses mixed modalities."""
    plan = IngestPlan()
    for path in paths:
        if path.is_dir():
            for file in _files(path):
                _plan_file(file, plan)
        elif path.is_file():
            _plan_file(path, plan)
        else:
            raise InputError(f"no such file or folder: {str(path)!r}", name="path")
    images = sum(entry.image_path is not None for entry in plan.entries)
    if 0 < images < len(plan.entries):
        raise InputError(
            f"the paths hold both images ({images}) and texts ({len(plan.entries) - images}); "
            "a collection holds one modality",
            hint="ingest images and texts into separate collections",
        )
    return plan


# --- ingesting -----------------------------------------------------------------------------


def _load_image(entry: Entry) -> Document | Skipped:
    assert entry.image_path is not None
    try:
        data = entry.image_path.read_bytes()
        image = decode_image(data, name="file")
    except OSError as exc:
        return Skipped(entry.where, f"cannot read: {exc.strerror or exc}")
    except MmserveError as exc:
        # the path is already in `where`; drop decode_image's "input 'file': " prefix
        return Skipped(entry.where, exc.message.removeprefix("input 'file': "))
    return Document(image=image, image_bytes=data, id=entry.id, metadata=dict(entry.metadata))


def load_documents(batch: Sequence[Entry]) -> tuple[list[Document], list[Skipped]]:
    """The documents of ``batch`` (image files read and decoded; blocking), and the entries
    skipped on the way; ``Document.resolved_id()`` is then each item's id. The ingest here,
    and ``mmserve index add --url`` (which sends them over HTTP), both build items by it."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    for entry in batch:
        if entry.text is not None:
            documents.append(Document(text=entry.text, id=entry.id, metadata=dict(entry.metadata)))
            continue
        loaded = _load_image(entry)
        (skipped if isinstance(loaded, Skipped) else documents).append(loaded)  # type: ignore[arg-type]
    return documents, skipped


async def ingest(
    gateway: ModelGateway,
    store: VectorStore,
    collection: str,
    plan: IngestPlan,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    model: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> IngestReport:
    """Index ``plan`` into ``collection`` batch by batch; ``on_progress(n)`` after each commit."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}", name="batch_size")
    report = IngestReport(collection=collection, planned=len(plan.entries))
    report.skipped.extend(plan.skipped)
    for start in range(0, len(plan.entries), batch_size):
        batch = plan.entries[start : start + batch_size]
        documents, skipped = await asyncio.to_thread(load_documents, batch)
        for item in skipped:
            report.skipped.append(item)
            if on_skip is not None:
                on_skip(item)
        if documents:
            done = await index_documents(
                gateway, store, collection, documents, model=model, skip_existing=True
            )
            report.inserted += done.inserted
            report.present += done.present
        if on_progress is not None:
            on_progress(len(batch))  # only now: the batch is committed
    if report.inserted:
        await asyncio.to_thread(store.optimize, collection)
    try:
        report.count = (await asyncio.to_thread(store.get_collection, collection)).count
    except CollectionNotFoundError:  # nothing usable was found, so nothing was created
        report.count = 0
    return report


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IMAGE_SUFFIXES",
    "TEXT_SUFFIXES",
    "Entry",
    "IngestPlan",
    "IngestReport",
    "Skipped",
    "ingest",
    "load_documents",
    "plan_ingest",
]
