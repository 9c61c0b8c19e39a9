"""``mmserve index ... --url``: the index commands through a server's HTTP API.

The same work as the local forms of :mod:`mmserve.cli.index`, through
:class:`~mmserve.client.clients.Client` instead of a store and models of this process, so it
needs nothing of the ``server`` extra. ``add`` plans and reads the files exactly as the local
ingest does (:func:`~mmserve.local.ingest.plan_ingest`,
:func:`~mmserve.local.ingest.load_documents`), so both give an item the same id and metadata;
it sends those ids with the items, and asks the server first which ids the collection holds
(``GET /v1/collections/{name}/items``, read from the store's writer) to send only the
missing ones: re-running an add, complete or interrupted, embeds and adds only what is not
there yet. Each batch is one ``POST .../items``, answered once the server has committed it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmserve.cli.common import CLI_CONNECT_BUDGET_S
from mmserve.client.clients import Client, RetryPolicy
from mmserve.client.errors import ApiError, ApiNotFoundError
from mmserve.local.ingest import Entry, IngestPlan, IngestReport, Skipped, load_documents
from mmserve.workflow.steps.index import Document

#: Seconds to wait for one answer (a batch embedded and committed on a slow server).
REMOTE_TIMEOUT_S = 600.0
#: Items per page when listing the ids a collection holds (the most the route gives).
ID_PAGE = 200


def connect(url: str) -> Client:
    """A client of the server at ``url`` as ``mmserve run --url`` makes it: the API key from
    ``$MMSERVE_API_KEY``, a few seconds of reconnecting to a server that does not answer."""
    retry = RetryPolicy(budget_s=CLI_CONNECT_BUDGET_S)
    return Client(url, timeout=REMOTE_TIMEOUT_S, retry=retry)


def existing_ids(client: Client, collection: str) -> set[str] | None:
    """The ids ``collection`` holds (none when it does not exist yet), read from the store's
    writer; None when the server cannot list them (a store without the browse capability)."""
    ids: set[str] = set()
    offset = 0
    try:
        while True:
            page = client.collections.items(
                collection, offset=offset, limit=ID_PAGE, consistency="strong"
            )
            ids.update(str(item["id"]) for item in page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return ids
    except ApiNotFoundError as exc:
        if exc.code == "collection_not_found":
            return set()
        return None  # a server without the browse route
    except ApiError as exc:
        if exc.status == 501:  # the store cannot list its items
            return None
        raise


def _item(document: Document, item_id: str) -> dict[str, Any]:
    """One item of an add request: the text or the image file as read, its id and metadata."""
    item: dict[str, Any] = {"id": item_id, "metadata": document.metadata}
    if document.text is not None:
        item["text"] = document.text
    else:
        assert document.image_bytes is not None  # load_documents keeps the file's bytes
        item["image"] = document.image_bytes
    return item


def ingest_remote(
    client: Client,
    collection: str,
    plan: IngestPlan,
    present: set[str] | None,
    *,
    batch_size: int,
    model: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> IngestReport:
    """Add ``plan`` to ``collection`` on the server, ``batch_size`` entries a request, leaving
    out the ids of ``present`` (:func:`existing_ids`; None: send every item, the server then
    replaces what it has); ``on_progress(n)`` after each batch the server committed."""
    report = IngestReport(collection=collection, planned=len(plan.entries))
    report.skipped.extend(plan.skipped)
    seen = set(present or ())
    count: int | None = len(seen) if present is not None else None
    for start in range(0, len(plan.entries), batch_size):
        batch: list[Entry] = plan.entries[start : start + batch_size]
        documents, skipped = load_documents(batch)
        for item in skipped:
            report.skipped.append(item)
            if on_skip is not None:
                on_skip(item)
        items = []
        for document in documents:
            item_id = document.resolved_id()
            if item_id in seen:  # in the collection, or earlier in this plan
                report.present += 1
                continue
            seen.add(item_id)
            items.append(_item(document, item_id))
        if items:
            answer = client.collections.add(collection, items=items, model=model)
            report.inserted += int(answer["inserted"])
            report.present += int(answer["updated"])  # added meanwhile by someone else
            count = int(answer["count"])
        if on_progress is not None:
            on_progress(len(batch))  # only now: the server committed the batch
    report.count = count if count is not None else _count(client, collection)
    return report


def _count(client: Client, collection: str) -> int:
    try:
        return int(client.collections.get(collection)["count"])
    except ApiNotFoundError:  # nothing usable was found, so nothing was created
        return 0


def collection_record(info: dict[str, Any]) -> dict[str, Any]:
    """A collection of ``GET /v1/collections`` in the local form's shape (its field order)."""
    return {
        "name": info["name"],
        "space": info["space"],
        "modality": info["modality"],
        "count": info["count"],
    }


def space_text(space: dict[str, Any]) -> str:
    """An embedding space as the local form prints it: ``backend:model_id:dim``."""
    return f"{space['backend']}:{space['model_id']}:{space['dim']}"


__all__ = [
    "ID_PAGE",
    "REMOTE_TIMEOUT_S",
    "collection_record",
    "connect",
    "existing_ids",
    "ingest_remote",
    "space_text",
]
