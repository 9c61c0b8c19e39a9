"""The ``index`` step: embed texts or images with the collection's encoder and upsert them.

A collection that does not exist yet is created on first use, in the space of the encoder
that embeds its first items (the role's default, or ``model:``). Items get a content-hash id
unless ids are given, so indexing the same content twice leaves one item.
:func:`index_documents` is the same operation for Python callers (the ingest uses it).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL.Image import Image
from pydantic import Field, model_validator

from mmserve.errors import InputError
from mmserve.gateway.contract import Batched, ModelGateway
from mmserve.media import ImageValue, file_bytes
from mmserve.registry import register_step
from mmserve.stores.async_store import AsyncVectorStore, as_async_store, image_work
from mmserve.stores.contract import (
    Collection,
    Item,
    Modality,
    Payload,
    VectorStore,
    content_id,
    image_content_id,
)
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.collections import (
    ENCODER_ROLE,
    encoder_for,
    find_collection,
    require_store,
)
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs


@dataclass
class Document:
    """One thing to index: a text, or an image (with the file bytes to keep, if known)."""

    text: str | None = None
    image: Image | None = None
    #: The image file as it came (kept as the payload); PNG-encoded from ``image`` if None.
    image_bytes: bytes | None = None
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def modality(self) -> Modality:
        return "text" if self.text is not None else "image"

    def resolved_id(self) -> str:
        if self.id is not None:
            return self.id
        if self.text is not None:
            return content_id(text=self.text)
        assert self.image is not None
        return image_content_id(self.image)

    def payload(self) -> Payload:
        if self.text is not None:
            return Payload(text=self.text, metadata=self.metadata)
        assert self.image is not None
        data = self.image_bytes or file_bytes(self.image)
        if data is None:
            buffer = io.BytesIO()
            self.image.save(buffer, format="PNG")
            data = buffer.getvalue()
        return Payload(image=data, metadata=self.metadata)


@dataclass
class IndexReport:
    """What one :func:`index_documents` call did."""

    collection: Collection
    ids: list[str]
    inserted: int = 0
    updated: int = 0
    #: Items skipped because their id was already present (``skip_existing=True``).
    present: int = 0


def _modality_of(documents: Sequence[Document]) -> Modality:
    modalities = {doc.modality for doc in documents}
    if len(modalities) > 1:
        raise InputError(
            "cannot index texts and images in one call; a collection holds one modality",
            hint="index texts and images into separate collections",
        )
    return modalities.pop()


def _ids_and_payloads(documents: Sequence[Document]) -> tuple[list[str], list[Payload]]:
    """Content ids and payloads (image hashing and encoding: blocking, on the image pool)."""
    return [doc.resolved_id() for doc in documents], [doc.payload() for doc in documents]


async def open_collection(
    gateway: ModelGateway,
    store: VectorStore | AsyncVectorStore,
    name: str,
    modality: Modality,
    model: str | None = None,
) -> tuple[Collection, str]:
    """The collection (created in the encoder's space if new) and the encoder to fill it."""
    store = as_async_store(store)
    collection = await find_collection(store, name)
    if collection is None:
        encoder = gateway.model_for(ENCODER_ROLE[modality], model)
        space = await gateway.space(encoder)
        collection = await store.create_collection(name, space=space, modality=modality)
        return collection, encoder
    if collection.modality != modality:
        raise InputError(
            f"collection {name!r} holds {collection.modality} items; cannot add "
            f"{modality} items to it",
            name="collection",
            hint="index them into another collection",
        )
    return collection, await encoder_for(gateway, collection, modality, model)


async def index_documents(
    gateway: ModelGateway,
    store: VectorStore | AsyncVectorStore,
    collection: str,
    documents: Sequence[Document],
    *,
    model: str | None = None,
    skip_existing: bool = False,
    record: Callable[[Batched[Any]], Any] | None = None,
) -> IndexReport:
    """Embed ``documents`` in one batch and upsert them; returns once they are committed."""
    store = as_async_store(store)
    if not documents:
        found = await find_collection(store, collection)
        if found is None:
            raise InputError("nothing to index into a new collection", name="collection")
        return IndexReport(collection=found, ids=[])
    modality = _modality_of(documents)
    target, encoder = await open_collection(gateway, store, collection, modality, model)
    if modality == "text":
        ids, payloads = _ids_and_payloads(documents)
    else:
        ids, payloads = await image_work(_ids_and_payloads, documents)
    todo = list(zip(ids, documents, payloads, strict=True))
    present = 0
    if skip_existing:
        existing = await store.existing_ids(collection, ids)
        todo = [(i, doc, p) for i, doc, p in todo if i not in existing]
        present = len(documents) - len(todo)
    report = IndexReport(collection=target, ids=ids, present=present)
    if not todo:
        return report
    if modality == "text":
        batched = await gateway.call_batch(
            encoder, "embed_texts", [doc.text or "" for _, doc, _ in todo]
        )
    else:
        batched = await gateway.call_batch(
            encoder, "embed_images", [doc.image for _, doc, _ in todo]
        )
    if record is not None:
        record(batched)
    space = await gateway.space(encoder)
    items = [
        Item(id=i, vector=vector, payload=payload)
        for (i, _, payload), vector in zip(todo, batched.items, strict=True)
    ]
    result = await store.upsert(collection, items, space=space)
    report.inserted, report.updated = result.inserted, result.updated
    return report


@register_step("index")
class Index(Step):
    """Add texts or images to a collection (embedded with the collection's encoder)."""

    #: It writes, but upserts by id (content hashes by default): a repeat adds nothing twice.
    side_effects = False

    class Inputs(StepInputs):
        collection: str = Field(description="Collection name; created on first use.")
        text: str | None = Field(default=None, description="One text to index.")
        texts: list[str] | None = Field(default=None, description="Texts to index.")
        image: ImageValue | None = Field(default=None, description="One image to index.")
        images: list[ImageValue] | None = Field(default=None, description="Images to index.")
        ids: list[str] | None = Field(
            default=None, description="Item ids, one per item; content hashes when omitted."
        )
        metadata: dict[str, Any] = Field(
            default_factory=dict, description="Metadata stored with every item."
        )
        model: str | None = Field(
            default=None, description="Encoder (config name); the collection's by default."
        )

        @model_validator(mode="after")
        def _one_source(self) -> Index.Inputs:
            given = [k for k in ("text", "texts", "image", "images") if getattr(self, k)]
            if len(given) != 1:
                raise ValueError(
                    "give exactly one of text, texts, image, images "
                    f"(got {', '.join(given) or 'none'})"
                )
            return self

    class Outputs(StepOutputs):
        collection: str = Field(description="The collection (for steps that search it next).")
        ids: list[str] = Field(description="The ids of the indexed items, in input order.")
        inserted: int = Field(description="Items that were new.")
        updated: int = Field(description="Items whose id existed and were replaced.")
        count: int = Field(description="Items in the collection afterwards.")

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        store = require_store(ctx.store)
        documents = _documents(inputs)
        if inputs.ids is not None and len(inputs.ids) != len(documents):
            raise InputError(f"got {len(inputs.ids)} ids for {len(documents)} items", name="ids")
        for n, doc in enumerate(documents):
            doc.id = inputs.ids[n] if inputs.ids is not None else None
        report = await index_documents(
            ctx.gateway, store, inputs.collection, documents, model=inputs.model, record=ctx.record
        )
        collection = await store.get_collection(inputs.collection)
        return self.Outputs(
            collection=inputs.collection,
            ids=report.ids,
            inserted=report.inserted,
            updated=report.updated,
            count=collection.count,
        )


def _documents(inputs: Index.Inputs) -> list[Document]:
    metadata = inputs.metadata
    texts = [inputs.text] if inputs.text is not None else inputs.texts or []
    images = [inputs.image] if inputs.image is not None else inputs.images or []
    return [Document(text=t, metadata=dict(metadata)) for t in texts] + [
        Document(image=i, metadata=dict(metadata)) for i in images
    ]


__all__ = ["Document", "Index", "IndexReport", "index_documents", "open_collection"]
