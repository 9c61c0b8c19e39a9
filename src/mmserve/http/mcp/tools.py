"""Workflows as MCP tools: their descriptions, and their results and failures as tool results.

Pure conversions, no transport (:mod:`mmserve.http.mcp.server` serves them):

* :func:`workflow_tool`: a workflow's name, description and input JSON Schema (image inputs
  are base64 text, as in ``POST /v1/workflows/{name}/run``, and their descriptions say so);
  a workflow without image outputs also declares its output schema.
* :func:`tool_result`: the outputs as one JSON text (and as structured content); every image
  becomes a PNG :class:`~mcp.types.ImageContent` after the text, and the JSON names it there.
* :func:`error_result`: a failure (a bad argument, a failed step, the deadline) as an error
  result (``isError``) whose text the model can read and act on, never a protocol error.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mcp import types
from PIL import Image as PILImage
from PIL.Image import Image

from mmserve.errors import MmserveError
from mmserve.workflow import Workflow
from mmserve.workflow.run.result import to_jsonable

#: What an image input's description says about how to send it.
IMAGE_ARGUMENT_NOTE = (
    "An image file (PNG, JPEG, WebP, ...) as base64 text; a data: URL prefix is allowed."
)


def workflow_tool(
    workflow: Workflow, *, side_effects: Sequence[str] = (), as_job: bool = False
) -> types.Tool:
    """``workflow`` as an MCP tool; ``side_effects``: the ids of its steps that have them;
    ``as_job``: its calls are jobs, which may answer a job's id instead of the outputs, so it
    declares no output schema (clients check structured content against it)."""
    schema = workflow.input_schema()
    properties = {
        name: _argument_schema(value) for name, value in schema.get("properties", {}).items()
    }
    outputs = workflow.output_schema()
    return types.Tool(
        name=workflow.name,
        title=workflow.name.replace("_", " "),
        description=workflow.description or f"The {workflow.name} workflow.",
        input_schema={**schema, "properties": properties},
        output_schema=None if as_job or has_image(outputs) else outputs,
        annotations=types.ToolAnnotations(
            read_only_hint=not side_effects, idempotent_hint=not side_effects
        ),
    )


def _argument_schema(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("contentEncoding") == "base64":
        text = schema.get("description", "")
        if "base64" not in text:
            text = f"{text} {IMAGE_ARGUMENT_NOTE}".strip()
        return {**schema, "description": text}
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, dict):
        return {**schema, "items": _argument_schema(items)}
    return schema


def has_image(schema: Any) -> bool:
    """Whether a JSON Schema describes an image (base64 content) anywhere in it."""
    if isinstance(schema, dict):
        if schema.get("contentEncoding") == "base64":
            return True
        return any(has_image(value) for value in schema.values())
    if isinstance(schema, list):
        return any(has_image(value) for value in schema)
    return False


def png_base64(image: Image) -> str:
    """The image as a base64 PNG (blocking: call it off the event loop for big images)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def outputs_from_json(schema: dict[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A run's outputs as JSON (a job's stored result: images as base64 PNG text) with the
    images the workflow's output ``schema`` declares decoded back into images, for
    :func:`tool_result`."""
    defs = schema.get("$defs", {})

    def resolved(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        return node

    def decoded(node: Any, value: Any) -> Any:
        node = resolved(node)
        if not isinstance(node, dict) or value is None:
            return value
        if node.get("contentEncoding") == "base64" and isinstance(value, str):
            return PILImage.open(io.BytesIO(base64.b64decode(value))).convert("RGB")
        for branch in node.get("anyOf", []):
            if resolved(branch).get("contentEncoding") == "base64" and isinstance(value, str):
                return decoded(branch, value)
        if isinstance(value, list):
            return [decoded(node.get("items"), item) for item in value]
        if isinstance(value, dict):
            fields = node.get("properties", {})
            return {key: decoded(fields.get(key), item) for key, item in value.items()}
        return value

    fields = schema.get("properties", {})
    return {name: decoded(fields.get(name), value) for name, value in outputs.items()}


def tool_result(outputs: Mapping[str, Any]) -> types.CallToolResult:
    """A run's outputs as a tool result (see the module docs); blocking (PNG encoding)."""
    images: list[types.ImageContent] = []

    def replaced(value: Any) -> Any:
        if isinstance(value, Image):
            data = png_base64(value)
            images.append(types.ImageContent(type="image", data=data, mime_type="image/png"))
            return f"(image {len(images)}: attached as image content)"
        if isinstance(value, Mapping):
            return {str(k): replaced(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [replaced(v) for v in value]
        return to_jsonable(value)

    data = {str(name): replaced(value) for name, value in outputs.items()}
    text = types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False))
    return types.CallToolResult(content=[text, *images], structured_content=data, is_error=False)


def error_result(error: BaseException) -> types.CallToolResult:
    """A failure as an error result: the error's code and message (with its hint)."""
    if isinstance(error, MmserveError):
        message = f"{error.code}: {error}"
    else:  # not ours: say what it was without a traceback
        message = f"internal_error: {type(error).__name__}: {error}"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


#: The tool that answers how a job stands (a tool call that outlived its deadline is a job).
JOB_STATUS_TOOL = "job_status"


def job_status_tool() -> types.Tool:
    """The ``job_status`` tool: a job's status, or its result once it has finished."""
    return types.Tool(
        name=JOB_STATUS_TOOL,
        title="job status",
        description="How a job stands, by its id: a tool call that runs longer than the "
        "server's deadline goes on as a job and answers its id. Answers the job's status "
        "and progress, or the workflow's result once it has finished.",
        input_schema={
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The job's id."}},
            "required": ["id"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )


def job_waiting_result(view: Mapping[str, Any]) -> types.CallToolResult:
    """A job that has not finished yet, as a (non-error) tool result naming its id."""
    data = {
        "job_id": view["id"],
        "status": view["status"],
        "position": view.get("position"),
        "steps_done": view.get("steps_done"),
        "steps_total": view.get("steps_total"),
        "note": f"still running as a job: call {JOB_STATUS_TOOL} with this job_id for its result",
    }
    text = types.TextContent(type="text", text=json.dumps(data))
    return types.CallToolResult(content=[text], structured_content=data, is_error=False)


def unknown_tool_result(name: str, known: Sequence[str]) -> types.CallToolResult:
    """The error result of a call to a tool that does not exist."""
    listed = ", ".join(sorted(known)) or "(none)"
    return types.CallToolResult(
        content=[
            types.TextContent(
                type="text", text=f"workflow_not_found: no tool named {name!r}; tools: {listed}"
            )
        ],
        is_error=True,
    )


__all__ = [
    "IMAGE_ARGUMENT_NOTE",
    "JOB_STATUS_TOOL",
    "error_result",
    "has_image",
    "job_status_tool",
    "job_waiting_result",
    "outputs_from_json",
    "png_base64",
    "tool_result",
    "unknown_tool_result",
    "workflow_tool",
]
