"""How an mmserve collection is laid out in Milvus: its name, fields and properties.

The collection's embedding space, modality and mmserve name are collection properties, set in
the same call that creates it, so a collection never exists without its space. Rows are ``id``
(primary key, the upsert key), ``vector`` (float32, COSINE), ``text`` (up to 65535 bytes),
``text_blob`` and ``image_blob`` (keys into the blob folder, see :mod:`mmserve_milvus.blobs`)
and ``metadata`` (JSON). Milvus collection names allow no '-', so mmserve names are escaped
(``_`` -> ``__``, ``-`` -> ``_0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymilvus import DataType, MilvusClient

from mmserve.errors import InputError, StoreError
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores.contract import Collection, check_collection_name

SPACE = "mmserve.space"
MODALITY = "mmserve.modality"
NAME = "mmserve.name"
TEXT_MAX = 65535


def milvus_name(name: str) -> str:
    """The Milvus collection name of an mmserve collection (Milvus allows no '-')."""
    escaped = check_collection_name(name).replace("_", "__").replace("-", "_0")
    if len(escaped) > 255:
        raise InputError(f"collection name {name!r} is too long for Milvus", name="collection")
    return escaped


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def schema(space: EmbeddingSpace) -> Any:
    fields = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    fields.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
    fields.add_field("vector", DataType.FLOAT_VECTOR, dim=space.dim)
    fields.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, nullable=True)
    fields.add_field("text_blob", DataType.VARCHAR, max_length=64, nullable=True)
    fields.add_field("image_blob", DataType.VARCHAR, max_length=64, nullable=True)
    fields.add_field("metadata", DataType.JSON, nullable=True)
    return fields


def collection_of(name: str, description: Mapping[str, Any]) -> Collection:
    properties = description.get("properties", {})
    try:
        space = EmbeddingSpace.model_validate_json(properties[SPACE])
        modality = properties[MODALITY]
        return Collection(name=name, space=space, modality=modality)
    except (KeyError, ValueError) as exc:
        raise StoreError(
            f"Milvus collection {name!r} is not an mmserve collection (no embedding space)",
            hint="it was created by another tool; use another collection name",
        ) from exc


__all__ = [
    "MODALITY",
    "NAME",
    "SPACE",
    "TEXT_MAX",
    "collection_of",
    "milvus_name",
    "quote",
    "schema",
]
