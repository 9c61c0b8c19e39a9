"""What the sync and async clients share: encoding inputs, reading answers, retry policy."""

from __future__ import annotations

import base64
import io
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
)

API_KEY_ENV = "MMSERVE_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"

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


@dataclass(frozen=True)
class RetryPolicy:
    """When a request is sent again (:mod:`mmserve.client.retry` has the rules).

    ``budget_s``: how long a request that could not be sent, or was cut mid-way where
    repeating is safe, is tried again (30 s covers a restart of Serve's proxy or ingress);
    ``attempts``: sends in all on a 503 with Retry-After (the proxy's backpressure; never
    mmserve's own 503 to a run: its earlier steps may have committed side effects; mmserve's
    503 to a collection write is sent again within ``budget_s``, an upsert by id being
    applied once);
    ``backoff_s`` doubles per try up to ``max_backoff_s``; ``max_wait_s`` caps a Retry-After.
    ``RetryPolicy(budget_s=0, attempts=1)`` never sends a request twice.
    """

    attempts: int = 3
    backoff_s: float = 0.25
    max_wait_s: float = 10.0
    budget_s: float = 30.0
    max_backoff_s: float = 2.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_wait_s)
            except ValueError:
                pass
        jitter = random.uniform(0.5, 1.0)
        return float(min(self.backoff_s * (2 ** min(attempt, 30)) * jitter, self.max_backoff_s))


def resolve_api_key(api_key: str | None) -> str | None:
    return api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None


def headers_for(api_key: str | None) -> dict[str, str]:
    headers = {"user-agent": "mmserve-client"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


#: Methods that change nothing on the server: repeating them is always safe.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_retryable_status(response: httpx.Response) -> bool:
    """Whether a 503 with Retry-After may be answered by sending the request again.

    A read (GET) may always be repeated. Any other request only when the app never ran it:
    Ray Serve's proxy refusing it because the ingress queue is full (its backpressure answer
    is plain text, not mmserve's JSON error shape). mmserve's own 503 (``overloaded`` or
    ``unavailable`` raised by a model deployment mid-run) may come after earlier steps wrote
    something, so it is reported to the caller instead of repeated.
    """
    if response.status_code != 503 or "retry-after" not in response.headers:
        return False
    return response.request.method in _SAFE_METHODS or not is_app_error(response)


def is_app_error(response: httpx.Response) -> bool:
    """Whether ``response`` is mmserve's JSON error answer (the app handled the request)."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and "code" in error


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
    from PIL import Image

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
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(value, Image.Image)


def run_result(response: httpx.Response) -> RunResult:
    return result_from_body(response.json(), response.headers.get("x-request-id"))


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


__all__ = [
    "API_KEY_ENV",
    "DEFAULT_URL",
    "RetryPolicy",
    "RunResult",
    "api_error",
    "encode_inputs",
    "headers_for",
    "image_base64",
    "is_app_error",
    "is_retryable_status",
    "items_payload",
    "raise_for_error",
    "resolve_api_key",
    "result_from_body",
    "run_result",
    "search_payload",
]
