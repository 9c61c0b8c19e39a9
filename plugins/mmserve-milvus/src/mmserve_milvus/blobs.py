"""Payloads too big for a Milvus field (image bytes, texts over 65535 bytes), kept in a folder.

Milvus has no binary field and caps a string field at 65535 bytes, so the store writes such a
payload to ``<blob folder>/<collection>/<key[:2]>/<key>``, where ``key`` is the SHA-256 of
the bytes, and keeps only the key in the row. A blob is written (to a temporary file, synced,
then renamed into place) before the row that names it, so a row never points at a missing
blob; a kill in between leaves at most an unreferenced blob, which a re-add reuses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from mmserve.errors import StoreError


class BlobFolder:
    """Content-addressed files, one sub-folder per collection."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _folder(self, collection: str) -> Path:
        if self.root is None:
            raise StoreError(
                "this milvus store has no blob folder for image bytes and long texts",
                hint="set store.options.blob_path to a folder every mmserve process shares",
            )
        return self.root / collection

    def put(self, collection: str, data: bytes) -> str:
        """Store ``data`` (once) and return its key."""
        key = hashlib.sha256(data).hexdigest()
        target = self._folder(collection) / key[:2] / key
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, collection: str, key: str) -> bytes:
        path = self._folder(collection) / key[:2] / key
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(
                f"the blob {key} of collection {collection!r} is missing from {path.parent}",
                hint="every process using a milvus server needs the same store.options.blob_path",
            ) from exc

    def drop(self, collection: str) -> None:
        if self.root is not None:
            shutil.rmtree(self.root / collection, ignore_errors=True)


__all__ = ["BlobFolder"]
