"""The ``milvus`` store plugin for mmserve (see README.md).

Importing this module (the package's entry point) registers the store kind ``milvus`` by
import path, so ``mmserve plugins`` lists it without importing pymilvus.
"""

from mmserve.registry import registry

registry.register(
    "store",
    "milvus",
    "mmserve_milvus.store:MilvusStore",
    meta={
        "description": "Milvus: Milvus Lite (embedded, path: ./x.db) or a Milvus server or "
        "cluster (path: http://HOST:19530)."
    },
)
