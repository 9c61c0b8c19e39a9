"""The files of jobs, beside the store: ``<jobs folder>/files/<id>/inputs.json`` (the inputs
as submitted: images as base64 text, other bytes marked) and ``result.json`` (the outputs and
trace exactly as ``/run`` answers them: images as base64 PNG). Queue messages carry only the
job's id. Each file is written whole to a temporary name and renamed into place, so a killed
process never leaves half a file."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

_BYTES = "__bytes_base64__"


def _encoded(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list):
        return [_encoded(item) for item in value]
    if isinstance(value, dict):
        return {key: _encoded(item) for key, item in value.items()}
    return value


def _decoded(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_BYTES}:
            return base64.b64decode(value[_BYTES])
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


class JobFiles:
    """The folder of the jobs' files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "files"

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def _write(self, job_id: str, name: str, data: Any) -> None:
        folder = self.folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, separators=(",", ":"))
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, job_id: str, name: str) -> Any:
        try:
            return json.loads((self.folder(job_id) / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def save_inputs(self, job_id: str, inputs: dict[str, Any]) -> None:
        self._write(job_id, "inputs.json", _encoded(inputs))

    def inputs(self, job_id: str) -> dict[str, Any] | None:
        found = self._read(job_id, "inputs.json")
        return None if found is None else dict(_decoded(found))

    def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        self._write(job_id, "result.json", result)

    def result(self, job_id: str) -> dict[str, Any] | None:
        found = self._read(job_id, "result.json")
        return found if isinstance(found, dict) else None

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)


__all__ = ["JobFiles"]
