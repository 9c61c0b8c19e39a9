"""Reading a run request: a JSON body or a multipart upload, and the deadline header.

JSON: ``{"inputs": {"image": "<base64>", "question": "..."}}`` (no other keys).
Multipart (``multipart/form-data``): one part per input, named after it. A file part is the
raw bytes (an image upload); a text part is the value as text — numbers and booleans as
text are accepted as for the CLI, ``array`` and ``object`` inputs are JSON text (within
``server.limits.max_json_depth``, and ``max_json_nodes`` for all such parts together), and an
``array`` input may instead be given as several parts of the same name (several files).
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from mmserve.config import LimitsConfig, ServerConfig
from mmserve.errors import InputError, RequestError, UnsupportedMediaTypeError
from mmserve.http.limits import json_limits
from mmserve.http.middleware.json_shape import JsonLimits, check_json_shape
from mmserve.http.schemas.workflows import RunRequest
from mmserve.workflow import Workflow

#: A caller's deadline for one request, in seconds; it can only shorten the server's own.
TIMEOUT_HEADER = "x-mmserve-timeout-s"
#: The header as an OpenAPI parameter, for the operations that honour it.
TIMEOUT_PARAMETER: dict[str, Any] = {
    "name": TIMEOUT_HEADER,
    "in": "header",
    "required": False,
    "description": "Deadline in seconds; it can only shorten server.request_timeout_s.",
    "schema": {"type": "number", "exclusiveMinimum": 0},
}


#: ``bypass`` computes every ``cache: true`` step afresh for this request (and refreshes it).
CACHE_HEADER = "x-mmserve-cache"
CACHE_PARAMETER: dict[str, Any] = {
    "name": CACHE_HEADER,
    "in": "header",
    "required": False,
    "description": "`bypass`: compute the workflow's `cache: true` steps afresh (the fresh "
    "results replace the cached ones); `use` (the default): reuse cached results.",
    "schema": {"type": "string", "enum": ["use", "bypass"]},
}


def use_cache(request: Request) -> bool:
    """False when the request asks to bypass the step cache (``x-mmserve-cache: bypass``)."""
    raw = request.headers.get(CACHE_HEADER)
    if raw is None or raw.strip().lower() == "use":
        return True
    if raw.strip().lower() == "bypass":
        return False
    raise RequestError(
        f"header {CACHE_HEADER}: expected 'use' or 'bypass', got {raw[:40]!r}",
        hint=f"send `{CACHE_HEADER}: bypass` to compute cached steps afresh",
    )


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def deadline_s(request: Request, server: ServerConfig, *, ceiling_s: float | None = None) -> float:
    """The request's deadline: the server's (or ``ceiling_s``: a job's), or the caller's
    header when that is shorter."""
    ceiling = server.request_timeout_s if ceiling_s is None else ceiling_s
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return ceiling
    try:
        asked = float(raw)
    except ValueError:
        asked = math.nan
    if not math.isfinite(asked) or asked <= 0:
        raise RequestError(
            f"header {TIMEOUT_HEADER}: expected a positive number of seconds, got {raw[:40]!r}"
        )
    return min(asked, ceiling)


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(
            f"the body is not valid JSON: {exc}",
            hint='send {"inputs": {...}} with content-type application/json',
        ) from exc


def unwrapped_inputs(data: Any, workflow: Workflow) -> list[dict[str, Any]] | None:
    """The validation error for a body that holds the inputs without the ``"inputs"``
    wrapper (``{"image": ...}``), saying how to wrap them; None for other mistakes."""
    if not isinstance(data, dict) or "inputs" in data:
        return None
    names = [key for key in data if key in workflow.spec.inputs]
    if not names:
        return None
    example = ", ".join(f'"{name}": ...' for name in names)
    message = (
        f'the inputs must sit under "inputs": send {{"inputs": {{{example}}}}} '
        f"(the body has {', '.join(repr(n) for n in names)} at its top level)"
    )
    return [{"loc": ("body",), "msg": message, "type": "missing_inputs_wrapper"}]


async def run_inputs(request: Request, workflow: Workflow, limits: LimitsConfig) -> dict[str, Any]:
    """The raw input values of a run request (JSON or multipart), not yet checked."""
    kind = media_type(request)
    if is_json(kind):
        data = await read_json(request)
        try:
            return RunRequest.model_validate(data).inputs
        except ValidationError as exc:
            # the same answer as for the other JSON endpoints: 422 invalid_request, by field
            errors = unwrapped_inputs(data, workflow) or exc.errors(include_url=False)
            raise RequestValidationError(errors, body=data) from exc
    if kind == "multipart/form-data":
        return await _multipart_inputs(request, workflow, limits)
    raise UnsupportedMediaTypeError(
        f"content type {kind or '(none)'!r} is not accepted here",
        hint="send application/json or multipart/form-data",
    )


async def _multipart_inputs(
    request: Request, workflow: Workflow, limits: LimitsConfig
) -> dict[str, Any]:
    try:
        form = await request.form(
            max_files=limits.max_items,
            max_fields=limits.max_items,
            max_part_size=limits.max_text_chars * 4 + 1024,
        )
    except (ValueError, KeyError, AssertionError) as exc:
        raise RequestError(f"the multipart body cannot be read: {exc}") from exc
    inputs: dict[str, Any] = {}
    shape = json_limits(limits)
    try:
        for name in dict.fromkeys(form.keys()):
            values = [await _part_value(v) for v in form.getlist(name)]
            inputs[name], used = _typed(workflow, name, values, shape)
            # the node budget is the request's: what this part used is gone for the next
            shape = JsonLimits(shape.max_depth, shape.max_nodes - used)
    finally:
        await form.close()
    return inputs


async def _part_value(value: UploadFile | str) -> bytes | str:
    if isinstance(value, UploadFile):
        return await value.read()
    return value


def _typed(
    workflow: Workflow, name: str, values: list[bytes | str], shape: JsonLimits
) -> tuple[Any, int]:
    """The value of the parts named ``name``, and how many JSON values it used of ``shape``."""
    spec = workflow.spec.inputs.get(name)
    kind = spec.type if spec is not None else None
    if kind == "array" and (len(values) > 1 or isinstance(values[0], bytes)):
        return values, 0
    if len(values) > 1:
        raise InputError(f"input {name!r} was given {len(values)} times", name=name)
    value = values[0]
    if kind in ("array", "object") and isinstance(value, str):
        used = check_json_shape(value, shape, where=f"input {name!r}")
        try:
            return json.loads(value), used
        except ValueError as exc:
            raise InputError(
                f"input {name!r}: a multipart {kind} value must be JSON text ({exc})", name=name
            ) from exc
    return value, 0


__all__ = [
    "TIMEOUT_HEADER",
    "TIMEOUT_PARAMETER",
    "deadline_s",
    "is_json",
    "media_type",
    "read_json",
    "run_inputs",
    "unwrapped_inputs",
    "use_cache",
]
