"""What a workflow run returns: its outputs and a trace of its steps.

A trace entry is part of the wire format (a streamed run's ``step_finished`` event carries
one), so :class:`TraceEntry` is defined in :mod:`mmserve.client.events` and re-exported here.
"""

from __future__ import annotations

import base64
from typing import Any

from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic_core import to_jsonable_python

from mmserve.client.events import ItemStatus, StepStatus, TraceEntry
from mmserve.errors import MmserveError
from mmserve.media import encode_png_base64

_TRACE_ATTRIBUTE = "mmserve_trace"


def _fallback(value: Any) -> Any:
    if isinstance(value, PILImage.Image):
        return encode_png_base64(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    return str(value)


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: images as base64 PNG, arrays as lists, models as dicts."""
    return to_jsonable_python(value, fallback=_fallback)


class RunResult(BaseModel):
    """The outputs of a run (Python values as the steps produced them) and its trace.

    ``model_dump(mode="json")`` is JSON-safe: images become base64 PNG, numpy arrays lists.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    outputs: dict[str, Any] = Field(description="Output name -> value.")
    trace: list[TraceEntry] = Field(description="One entry per step, in declaration order.")

    @field_serializer("outputs", when_used="json")
    def _outputs_json(self, outputs: dict[str, Any]) -> dict[str, Any]:
        return {name: to_jsonable(value) for name, value in outputs.items()}


def failure_of(exc: BaseException) -> dict[str, Any]:
    """What a failed run reports: ``{"code", "message", "status"}`` of the error (an
    unexpected one as ``internal_error`` without internals) and, when the run had started,
    its ``trace``: the fields of the HTTP error answer, for a stream or a job."""
    if isinstance(exc, MmserveError):
        status, code, message = exc.status, exc.code, str(exc)
    else:
        status, code = 500, "internal_error"
        message = f"internal error ({type(exc).__name__}); the server log has the details"
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    trace = trace_of(exc)
    if trace:
        error["trace"] = [entry.model_dump(mode="json") for entry in trace]
    return error


def attach_trace(error: BaseException, trace: list[TraceEntry]) -> None:
    """Remember the trace of a failed run on the error it raised (see :func:`trace_of`)."""
    setattr(error, _TRACE_ATTRIBUTE, trace)


def trace_of(error: BaseException) -> list[TraceEntry] | None:
    """The trace of the run that raised ``error`` (which steps ran, failed, were skipped)."""
    trace = getattr(error, _TRACE_ATTRIBUTE, None)
    return trace if isinstance(trace, list) else None


__all__ = [
    "ItemStatus",
    "RunResult",
    "StepStatus",
    "TraceEntry",
    "attach_trace",
    "failure_of",
    "to_jsonable",
    "trace_of",
]
