"""The ``milvus`` store's options (``store.options``) and how its location is opened.

``store.path`` is either a Milvus Lite file (``./milvus.db``: the embedded engine, in this
process, one process at a time) or a server URI (``http://HOST:19530``, ``https://...``,
``tcp://...``, ``unix:...``: a Milvus standalone or cluster). A server's token is never in
the config: ``token_env`` names the environment variable that holds it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mmserve.errors import StoreError

_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")

IndexType = Literal["HNSW", "IVF_FLAT", "IVF_SQ8", "FLAT", "AUTOINDEX"]


class MilvusOptions(BaseModel):
    """Tuning knobs and connection settings of the Milvus store."""

    model_config = ConfigDict(extra="forbid")

    index_type: IndexType = Field(
        default="HNSW", description="Vector index built for each collection (any case)."
    )
    M: int = Field(default=16, ge=2, le=2048, description="HNSW: links per node.")
    ef_construction: int = Field(default=200, ge=1, description="HNSW: build candidate list.")
    ef: int = Field(default=100, ge=1, description="HNSW: search candidate list (>= top_k).")
    nlist: int = Field(default=128, ge=1, le=65536, description="IVF: partitions.")
    nprobe: int = Field(default=16, ge=1, description="IVF: partitions probed per query.")
    consistency_level: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        default="Strong",
        description="Strong: a search sees every acknowledged write (read-your-writes).",
    )
    token_env: str | None = Field(
        default=None, description="Environment variable holding the server token."
    )
    db_name: str | None = Field(default=None, description="Milvus database (server only).")
    blob_path: str | None = Field(
        default=None,
        description="Folder for image bytes and long texts; next to the .db by default "
        "(required for a server: a folder every mmserve process shares).",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Per-call timeout.")

    @field_validator("index_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def index_params(self) -> dict[str, Any]:
        """The build parameters of ``index_type``."""
        if self.index_type == "HNSW":
            return {"M": self.M, "efConstruction": self.ef_construction}
        if self.index_type.startswith("IVF"):
            return {"nlist": self.nlist}
        return {}

    def search_params(self, top_k: int) -> dict[str, Any]:
        if self.index_type == "HNSW":
            return {"ef": max(self.ef, top_k)}
        if self.index_type.startswith("IVF"):
            return {"nprobe": min(self.nprobe, self.nlist)}
        return {}


def parse_options(options: Mapping[str, Any] | None) -> MilvusOptions:
    try:
        return MilvusOptions.model_validate(dict(options or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise StoreError(f"invalid milvus store options: {problems}") from exc


def is_server(location: str) -> bool:
    return location.startswith(_SERVER_SCHEMES)


def server_token(options: MilvusOptions) -> str:
    """The token from the environment variable ``token_env`` names ("" without one)."""
    if options.token_env is None:
        return ""
    token = os.environ.get(options.token_env)
    if not token:
        raise StoreError(
            f"the milvus store's token variable {options.token_env} is not set",
            hint=f"export {options.token_env}=USER:PASSWORD (or an API key) before starting",
        )
    return token


def lite_file(location: str) -> Path:
    """The Milvus Lite data path of ``location`` (it must end in .db); its folder is made."""
    path = Path(location)
    if path.suffix != ".db":
        raise StoreError(
            f"milvus store path {location!r} is neither a server URI nor a .db file",
            hint="use store.path: ./milvus.db (Milvus Lite) or http://HOST:19530 (a server)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def lite_is_locked(path: Path) -> bool:
    """Whether another process holds the Milvus Lite data folder's lock."""
    lock = path / "LOCK"
    if not lock.exists():
        return False
    with open(lock, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


class LiteUsers:
    """How many stores of this process use each Milvus Lite file, so that the embedded
    engine (one per file per process) is shut down, releasing its lock, after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Path, int] = {}

    def acquire(self, path: Path) -> None:
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1

    def release(self, path: Path) -> bool:
        """Forget one user; True when it was the last."""
        with self._lock:
            left = self._counts.get(path, 0) - 1
            if left > 0:
                self._counts[path] = left
                return False
            self._counts.pop(path, None)
            return True


lite_users = LiteUsers()
