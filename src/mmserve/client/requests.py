"""The request builder under :class:`~mmserve.client.clients.Client` and
:class:`~mmserve.client.clients.AsyncClient`: every API call written once.

A :class:`RequestBuilder` turns each call (run a workflow, add items to a collection, run an
agent, ...) into a :class:`Call`: its method, path, JSON payload and headers, and how its
answer is read. The two clients only send a ``Call`` (with the retry rules of
:mod:`mmserve.client.retry`), one with ``httpx.Client``, the other awaiting
``httpx.AsyncClient``, so their methods are one line each. This module also holds what both
read from an answer: :func:`raise_for_error` (an error answer as its
:class:`~mmserve.client.errors.ApiError`), :class:`RunResult` and :class:`AgentRunResult`.
"""

from __future__ import annotations

import base64
import builtins
import io
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import quote

import httpx

from mmserve.client.errors import (
    ApiAuthError,
    ApiError,
    ApiInputError,
    ApiNotFoundError,
    ApiOverloadedError,
    ApiServerError,
    ApiTimeoutError,
    InputError,
    ServingError,
)
from mmserve.client.outputs import decode_outputs

if TYPE_CHECKING:
    from PIL.Image import Image

API_KEY_ENV = "MMSERVE_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
#: Request header carrying the caller's deadline (seconds); the server may only shorten it.
TIMEOUT_HEADER = "x-mmserve-timeout-s"
#: Sent as ``bypass`` by a client made with ``use_cache=False``.
CACHE_HEADER = "x-mmserve-cache"
#: The content type of a streamed run (Server-Sent Events), asked for with ``accept``.
EVENT_STREAM = "text/event-stream"

#: Where a search reads: ``"default"`` (the store's readers, when it has any) or ``"strong"``
#: (the writer, which has every acknowledged add: read-your-writes; see docs/cluster.md).
Consistency = Literal["default", "strong"]

_BY_STATUS: dict[int, type[ApiError]] = {
    400: ApiInputError,
    401: ApiAuthError,
    404: ApiNotFoundError,
    413: ApiInputError,
    422: ApiInputError,
    429: ApiOverloadedError,
    503: ApiOverloadedError,
    504: ApiTimeoutError,
}


_PLAIN_CODES = {413: "body_too_large", 429: "overloaded", 503: "overloaded", 504: "timeout"}


@dataclass
class RunResult:
    """A workflow run as the server answered it."""

    outputs: dict[str, Any]
    trace: list[dict[str, Any]]
    request_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class AgentRunResult:
    """One agent run: its status (``ok`` or ``max_turns``), the final message (``content``
    and ``tool_calls``), the images the tools made by handle, and the tool trace."""

    status: str
    message: dict[str, Any]
    images: dict[str, Image]
    trace: builtins.list[dict[str, Any]]
    turns: int
    request_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def resolve_api_key(api_key: str | None) -> str | None:
    return api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None


def headers_for(api_key: str | None) -> dict[str, str]:
    headers = {"user-agent": "mmserve-client"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def client_headers(
    api_key: str | None, *, deadline_s: float | None, use_cache: bool
) -> dict[str, str]:
    """The headers every request of a client carries: its API key (``api_key`` or
    ``MMSERVE_API_KEY``), its deadline (``x-mmserve-timeout-s``), ``x-mmserve-cache: bypass``."""
    headers = headers_for(resolve_api_key(api_key))
    if deadline_s is not None:
        headers[TIMEOUT_HEADER] = f"{deadline_s:g}"
    if not use_cache:
        headers[CACHE_HEADER] = "bypass"
    return headers


def consistency_headers(consistency: Consistency) -> dict[str, str]:
    """The request header asking for ``consistency`` (none for the default)."""
    return {} if consistency == "default" else {"x-mmserve-consistency": consistency}


def raise_for_error(response: httpx.Response) -> None:
    """Turn an error answer into the matching :class:`ApiError` subclass."""
    if response.is_success:
        return
    status = response.status_code
    # Answers that are not mmserve's JSON (Serve's proxy refusing a request when the queue
    # is full, a reverse proxy's timeout) still get a code a caller can branch on.
    code = _PLAIN_CODES.get(status, "http_error")
    message = response.text[:500] or response.reason_phrase
    request_id = response.headers.get("x-request-id")
    trace = None
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        request_id = error.get("request_id") or request_id
        trace = error.get("trace") if isinstance(error.get("trace"), list) else None
    except (ValueError, KeyError, TypeError):
        pass
    failure = api_error(status, code, message, request_id)
    failure.trace = trace
    raise failure


def api_error(status: int, code: str, message: str, request_id: str | None) -> ApiError:
    """The :class:`ApiError` subclass for ``status``, carrying the server's answer."""
    cls = _BY_STATUS.get(status, ApiServerError if status >= 500 else ApiInputError)
    return cls(message, status=status, code=code, request_id=request_id)


def _image_bytes(name: str, value: Any) -> bytes:
    from PIL import Image  # deferred: Pillow, only when images are handled

    if isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str | Path):
        try:
            return Path(value).expanduser().read_bytes()
        except OSError as exc:
            raise InputError(
                f"input {name!r}: cannot read {str(value)!r}: {exc.strerror or exc}", name=name
            ) from exc
    raise InputError(
        f"input {name!r}: expected an image as a path, bytes or a PIL image, "
        f"got {type(value).__name__}",
        name=name,
    )


def is_image_schema(schema: dict[str, Any]) -> bool:
    return str(schema.get("contentMediaType", "")).startswith("image/")


def encode_inputs(inputs: dict[str, Any], input_schema: dict[str, Any] | None) -> dict[str, Any]:
    """JSON-ready inputs: images (by schema, or by Python type) become base64 text."""
    properties: dict[str, Any] = (input_schema or {}).get("properties", {})
    encoded: dict[str, Any] = {}
    for name, value in inputs.items():
        declared_image = is_image_schema(properties.get(name, {}))
        if declared_image or _looks_like_image(value):
            value = base64.b64encode(_image_bytes(name, value)).decode("ascii")
        encoded[name] = value
    return encoded


def _looks_like_image(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | memoryview | Path):
        return True
    try:
        from PIL import Image  # deferred: Pillow, only when images are handled
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(value, Image.Image)


def result_from_body(body: dict[str, Any], request_id: str | None) -> RunResult:
    """A run's answer (the JSON body, or a streamed run's ``result`` event)."""
    return RunResult(
        outputs=body.get("outputs", {}),
        trace=body.get("trace", []),
        request_id=body.get("request_id") or request_id,
        raw=body,
    )


def image_base64(name: str, value: Any) -> str:
    """An image (path, bytes or PIL image) as base64 text for a JSON body."""
    return base64.b64encode(_image_bytes(name, value)).decode("ascii")


def items_payload(
    *,
    items: list[dict[str, Any]] | None,
    texts: list[str] | None,
    images: list[Any] | None,
    ids: list[str] | None,
    metadata: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The ``items`` of an add-items request from exactly one of items, texts or images."""
    given = [n for n, v in (("items", items), ("texts", texts), ("images", images)) if v]
    if len(given) != 1:
        raise InputError(f"give exactly one of items, texts or images (got {given or 'none'})")
    if items:
        return [
            {**item, "image": image_base64(f"items[{n}].image", item["image"])}
            if item.get("image") is not None and not isinstance(item["image"], str)
            else dict(item)
            for n, item in enumerate(items)
        ]
    if ids is not None and len(ids) != len(texts or images or []):
        raise InputError(f"got {len(ids)} ids for {len(texts or images or [])} items", name="ids")
    built: list[dict[str, Any]] = [{"text": text} for text in texts or []] + [
        {"image": image_base64(f"images[{n}]", image)} for n, image in enumerate(images or [])
    ]
    for n, item in enumerate(built):
        if ids is not None:
            item["id"] = ids[n]
        if metadata:
            item["metadata"] = dict(metadata)
    return built


def add_payload(
    *,
    items: list[dict[str, Any]] | None,
    texts: list[str] | None,
    images: list[Any] | None,
    ids: list[str] | None,
    metadata: dict[str, Any] | None,
    model: str | None,
) -> dict[str, Any]:
    """The body of an add-items request."""
    body: dict[str, Any] = {
        "items": items_payload(items=items, texts=texts, images=images, ids=ids, metadata=metadata)
    }
    if model is not None:
        body["model"] = model
    return body


def search_payload(
    *, text: str | None, image: Any, top_k: int, model: str | None, include_images: bool
) -> dict[str, Any]:
    if (text is None) == (image is None):
        raise InputError("give exactly one of text or image to search with")
    body: dict[str, Any] = {"top_k": top_k, "include_images": include_images}
    if text is not None:
        body["text"] = text
    else:
        body["image"] = image_base64("image", image)
    if model is not None:
        body["model"] = model
    return body


def agent_payload(messages: str | list[dict[str, Any]], images: Any) -> dict[str, Any]:
    """The body of an agent run: a text is one user message; images are paths, bytes or PIL
    images (``image_1``, ``image_2``, ... in the messages)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return {
        "messages": messages,
        "images": [image_base64(f"images[{n}]", image) for n, image in enumerate(images or [])],
    }


def job_path(job_id: str) -> str:
    """The path of a job (its id quoted: an id is 32 hex characters, but any text is sent
    as one path segment)."""
    return f"/v1/jobs/{quote(job_id, safe='')}"


def image_answer(response: httpx.Response) -> Image:
    """An answer whose body is an image file (an item's image), as a loaded PIL image."""
    from PIL import Image  # deferred: Pillow, only when images are handled

    try:
        image = Image.open(io.BytesIO(response.content))
        image.load()
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        kind = response.headers.get("content-type", "no content type")
        raise ServingError(f"the server's answer is not an image ({kind}): {exc}") from exc
    return image


def agent_result(response: httpx.Response) -> AgentRunResult:
    """An agent run's answer, its images decoded to PIL images."""
    from PIL import Image  # deferred: Pillow, only when images are handled

    body: dict[str, Any] = response.json()
    images: dict[str, Image.Image] = {}
    for handle, data in body.get("images", {}).items():
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()
        images[handle] = image
    return AgentRunResult(
        status=body["status"],
        message=body["message"],
        images=images,
        trace=body.get("trace", []),
        turns=body.get("turns", 0),
        request_id=body.get("request_id"),
        raw=body,
    )


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Call(Generic[T_co]):
    """One API call: what to send, and how to read a successful answer (an error answer is
    raised by :func:`raise_for_error` before ``read`` sees it). ``stream``: the answer's body
    is left unread for the caller (``read`` gets the open response)."""

    method: str
    path: str
    read: Callable[[httpx.Response], T_co]
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    #: The query string's parameters.
    params: Mapping[str, str | int] | None = None


class SyncSend(Protocol):
    """How :class:`~mmserve.client.clients.Client` sends a :class:`Call`."""

    def __call__(self, call: Call[T], /) -> T: ...


class AsyncSend(Protocol):
    """How :class:`~mmserve.client.clients.AsyncClient` sends a :class:`Call`."""

    def __call__(self, call: Call[T], /) -> Awaitable[T]: ...


def _json_dict(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def _json_list(key: str) -> Callable[[httpx.Response], builtins.list[dict[str, Any]]]:
    def read(response: httpx.Response) -> builtins.list[dict[str, Any]]:
        found: builtins.list[dict[str, Any]] = response.json()[key]
        return found

    return read


def _open(response: httpx.Response) -> httpx.Response:
    return response


class RequestBuilder:
    """Every API call as a :class:`Call`, and what a client knows of the server's workflows
    (their input and output schemas, whether a run may be repeated: ``GET /v1/workflows``)."""

    def __init__(self) -> None:
        #: The server's workflows by name, as its listing has them.
        self.listing: dict[str, dict[str, Any]] = {}

    def knows(self, workflow: str) -> bool:
        """Whether the listing has ``workflow`` (else list the workflows before running it)."""
        return workflow in self.listing

    def health(self) -> Call[dict[str, Any]]:
        """Liveness and per-deployment readiness."""
        return Call("GET", "/v1/health", _json_dict)

    def plugins(self) -> Call[dict[str, Any]]:
        return Call("GET", "/v1/plugins", _json_dict)

    def workflows(self) -> Call[builtins.list[dict[str, Any]]]:
        """The server's workflows with their input and output JSON Schemas (remembered)."""

        def read(response: httpx.Response) -> builtins.list[dict[str, Any]]:
            listing: builtins.list[dict[str, Any]] = response.json()["workflows"]
            self.listing.update({w["name"]: w for w in listing})
            return listing

        return Call("GET", "/v1/workflows", read)

    def _run_payload(self, workflow: str, inputs: dict[str, Any]) -> dict[str, Any]:
        schema: dict[str, Any] | None = self.listing.get(workflow, {}).get("inputs")
        return {"inputs": encode_inputs(inputs, schema)}

    def decoded(self, workflow: str, result: RunResult) -> RunResult:
        """``result`` with its image outputs as PIL images (by the workflow's output schema)."""
        schema: dict[str, Any] | None = self.listing.get(workflow, {}).get("outputs")
        result.outputs = decode_outputs(result.outputs, schema)
        return result

    def run(self, workflow: str, inputs: dict[str, Any]) -> Call[RunResult]:
        """Run ``workflow``: image inputs encoded, image outputs decoded."""

        def read(response: httpx.Response) -> RunResult:
            result = result_from_body(response.json(), response.headers.get("x-request-id"))
            return self.decoded(workflow, result)

        path, payload = f"/v1/workflows/{workflow}/run", self._run_payload(workflow, inputs)
        return Call("POST", path, read, json=payload)

    def stream(self, workflow: str, inputs: dict[str, Any]) -> Call[httpx.Response]:
        """Run ``workflow`` as a stream of events (:mod:`mmserve.client.stream` reads it)."""
        path, payload = f"/v1/workflows/{workflow}/run", self._run_payload(workflow, inputs)
        accept = {"accept": EVENT_STREAM}
        return Call("POST", path, _open, json=payload, headers=accept, stream=True)

    def submit(
        self, workflow: str, inputs: dict[str, Any], *, webhook: str | None
    ) -> Call[dict[str, Any]]:
        """Queue a run of ``workflow`` as a job (inputs encoded as for :meth:`run`):
        ``{"id", "status", "url", "request_id"}``."""
        payload = self._run_payload(workflow, inputs)
        if webhook is not None:
            payload["webhook"] = webhook
        return Call("POST", f"/v1/workflows/{workflow}/jobs", _json_dict, json=payload)

    def job(self, job_id: str) -> Call[dict[str, Any]]:
        """A job's view: status, progress, and outputs and trace once it has succeeded."""
        return Call("GET", job_path(job_id), _json_dict)

    def jobs(
        self, *, status: str | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Call[dict[str, Any]]:
        """A page of jobs, newest first: ``{"jobs": [...], "next_cursor"}``."""
        given = {"status": status, "workflow": workflow, "limit": limit, "cursor": cursor}
        params = {key: value for key, value in given.items() if value is not None}
        return Call("GET", "/v1/jobs", _json_dict, params=params)

    def cancel_job(self, job_id: str) -> Call[dict[str, Any]]:
        """Cancel a job: its view after the cancel (409 ``job_finished`` once it has ended)."""
        return Call("DELETE", job_path(job_id), _json_dict)

    def job_events(self, job_id: str) -> Call[httpx.Response]:
        """A job's events (Server-Sent Events, from the start; :mod:`mmserve.client.jobs`)."""
        accept = {"accept": EVENT_STREAM}
        return Call("GET", f"{job_path(job_id)}/events", _open, headers=accept, stream=True)

    def collections(self) -> Call[builtins.list[dict[str, Any]]]:
        """Every collection: name, modality, count and embedding space."""
        return Call("GET", "/v1/collections", _json_list("collections"))

    def collection(self, name: str) -> Call[dict[str, Any]]:
        """One collection (:class:`~mmserve.client.errors.ApiNotFoundError` if unknown)."""
        return Call("GET", f"/v1/collections/{name}", _json_dict)

    def drop_collection(self, name: str) -> Call[dict[str, Any]]:
        """Delete ``name`` and its items: ``{"collection", "count"}`` (the items dropped)."""
        return Call("DELETE", f"/v1/collections/{name}", _json_dict)

    def items(
        self, name: str, *, offset: int, limit: int, consistency: Consistency
    ) -> Call[dict[str, Any]]:
        """A page of ``name``'s items (without their images) and the collection's total."""
        params = {"offset": offset, "limit": limit}
        path, headers = f"/v1/collections/{name}/items", consistency_headers(consistency)
        return Call("GET", path, _json_dict, headers=headers, params=params)

    def item_image(
        self, name: str, item_id: str, *, size: int | None, consistency: Consistency
    ) -> Call[Image]:
        """An image item's image (as stored, or a thumbnail of at most ``size`` pixels)."""
        path = f"/v1/collections/{name}/items/{quote(item_id, safe='')}/image"
        params = {} if size is None else {"size": size}
        headers = consistency_headers(consistency)
        return Call("GET", path, image_answer, headers=headers, params=params)

    def add_items(self, name: str, **given: Any) -> Call[dict[str, Any]]:
        """Add items (the arguments of :func:`add_payload`); ids, inserted, updated, count."""
        payload = add_payload(**given)
        return Call("POST", f"/v1/collections/{name}/items", _json_dict, json=payload)

    def search(
        self, name: str, *, consistency: Consistency, **given: Any
    ) -> Call[builtins.list[dict[str, Any]]]:
        """Search (the arguments of :func:`search_payload`); the matches, best first."""
        path, headers = f"/v1/collections/{name}/search", consistency_headers(consistency)
        payload = search_payload(**given)
        return Call("POST", path, _json_list("matches"), json=payload, headers=headers)

    def agents(self) -> Call[builtins.list[dict[str, Any]]]:
        """Every agent: name, description, model, tools, max_turns."""
        return Call("GET", "/v1/agents", _json_list("agents"))

    def agent_run(
        self, agent: str, messages: str | builtins.list[dict[str, Any]], images: Any
    ) -> Call[AgentRunResult]:
        payload = agent_payload(messages, images)
        return Call("POST", f"/v1/agents/{agent}/run", agent_result, json=payload)


__all__ = [
    "API_KEY_ENV",
    "CACHE_HEADER",
    "DEFAULT_URL",
    "EVENT_STREAM",
    "TIMEOUT_HEADER",
    "AgentRunResult",
    "AsyncSend",
    "Call",
    "Consistency",
    "RequestBuilder",
    "RunResult",
    "SyncSend",
    "agent_payload",
    "agent_result",
    "api_error",
    "client_headers",
    "consistency_headers",
    "encode_inputs",
    "headers_for",
    "image_answer",
    "image_base64",
    "items_payload",
    "job_path",
    "raise_for_error",
    "resolve_api_key",
    "result_from_body",
    "search_payload",
]
