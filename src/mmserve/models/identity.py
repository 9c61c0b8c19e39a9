"""The identity of a model's weights, as recorded in an embedding space.

Vectors are comparable only when they come from the same weights, so a collection records
its encoder's identity (:attr:`~mmserve.models.spec.EmbeddingSpace.model_id`):

* a local folder is identified by its **content**, ``folder:<digest>``: the same weights copied
  to another folder (a laptop's index served from a server's folder) are the same space, and
  other weights put in the same folder are not. The digest covers every config and tokenizer
  file in full and, for each weights file, its name, size and first and last MiB (hashing
  gigabytes on every start would be slow; files that differ only in their middle are not a
  realistic case);
* a hub id is identified by the id and its ``revision`` when one is configured
  (``openai/clip-vit-base-patch32@<sha>``): new weights pushed under the id with a pinned
  revision are another space;
* every other source (``tiny://``, ``random://``, ``pkg://``, ``fake://``) by its text.

Collections created before this recorded a folder's absolute path; :func:`same_model` still
accepts such a path when it holds the same weights here (used by
:func:`mmserve.stores.contract.check_space`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FOLDER_PREFIX = "folder:"
_WEIGHTS = {".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ckpt"}
_EDGE = 1024 * 1024


def _folder_of(source: str) -> Path | None:
    if "://" in source:
        return None
    path = Path(source).expanduser()
    return path if path.is_dir() else None


def _file_digest(path: Path, digest: hashlib._Hash) -> None:
    size = path.stat().st_size
    digest.update(f"{size}\0".encode())
    with path.open("rb") as handle:
        if path.suffix not in _WEIGHTS or size <= 2 * _EDGE:
            digest.update(handle.read())
            return
        digest.update(handle.read(_EDGE))
        handle.seek(size - _EDGE)
        digest.update(handle.read(_EDGE))


def folder_identity(root: Path) -> str:
    """``folder:<digest>`` of a model folder's content."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        _file_digest(path, digest)
    return FOLDER_PREFIX + digest.hexdigest()[:24]


def model_identity(source: str, revision: str | None = None) -> str:
    """The ``model_id`` of an embedding space for weights loaded from ``source``."""
    folder = _folder_of(source)
    if folder is not None:
        return folder_identity(folder)
    if "://" in source or source.startswith(("/", "./", "../", "~")):
        return source
    return f"{source}@{revision}" if revision else source


def same_model(recorded: str, current: str) -> bool:
    """Whether a recorded ``model_id`` and a current one name the same weights; a recorded
    folder path (collections made before content identities) counts when it exists here and
    holds the weights ``current`` identifies."""
    if recorded == current:
        return True
    if not current.startswith(FOLDER_PREFIX):
        return False
    folder = _folder_of(recorded)
    return folder is not None and folder_identity(folder) == current


__all__ = ["FOLDER_PREFIX", "folder_identity", "model_identity", "same_model"]
