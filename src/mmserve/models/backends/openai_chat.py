"""``openai``: an ``llm`` behind any OpenAI-compatible chat endpoint (vLLM, Ray Serve LLM, a
hosted API), called with httpx (no ``openai`` package needed).

The model entry's ``source`` is the endpoint's base URL (the part before
``/chat/completions``, e.g. ``http://host:8000/v1``); ``endpoint`` names the model there, the
environment variable holding the API key (never the key itself) and the timeout::

    llm:
      backend: openai
      source: http://localhost:8000/v1
      endpoint: {model: Qwen/Qwen2.5-7B-Instruct, api_key_env: VLLM_API_KEY, timeout_s: 60}

Tools go out as OpenAI ``tools`` (``type: function``), the endpoint's ``tool_calls`` come back
as :class:`~mmserve.models.roles.ToolCall` (their JSON ``arguments`` parsed), and tool results
go back as ``role: tool`` messages tied by ``tool_call_id``. Generation: the item's
``max_new_tokens`` (as ``max_tokens``) and ``temperature``. Conversations of one batch are sent
at once, one request each.

Failures are :class:`~mmserve.errors.RemoteModelError` (502) naming the endpoint: a timeout
(:class:`~mmserve.errors.RemoteModelTimeoutError`, 504), a refused key (401/403:
:class:`~mmserve.errors.RemoteModelAuthError`), a rate limit (429:
:class:`~mmserve.errors.RemoteModelBusyError`, 503), any other error status with the
endpoint's own message, an endpoint that cannot be reached, and an answer that is not a chat
completion. Tool-call arguments that are not a JSON object become ``{}`` (the tool then says
what is missing, and the model can try again).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from mmserve.errors import (
    ModelLoadError,
    RemoteModelAuthError,
    RemoteModelBusyError,
    RemoteModelError,
    RemoteModelTimeoutError,
)
from mmserve.models.roles import ChatItem, ChatMessage, ToolCall
from mmserve.models.spec import EndpointSpec, ModelSpec

logger = logging.getLogger(__name__)
_EXAMPLE = "endpoint: {model: <name at the endpoint>, api_key_env: <VARIABLE>}"


def wire_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages in OpenAI's chat format (assistant tool calls, ``tool`` results)."""
    wired: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["content"] = message.content or None
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
        if message.role == "tool":
            entry["tool_call_id"] = message.tool_call_id or ""
        wired.append(entry)
    return wired


def parse_completion(data: Any, where: str) -> ChatMessage:
    """The assistant message of a chat completion body; RemoteModelError if it is not one."""
    try:
        message = data["choices"][0]["message"]
        content = message.get("content") or ""
        calls = [_call(raw, n) for n, raw in enumerate(message.get("tool_calls") or [])]
        if not isinstance(content, str):
            raise TypeError("content is not text")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RemoteModelError(
            f"{where} answered something that is not a chat completion "
            f"({type(exc).__name__}: {exc}): {json.dumps(data)[:200]}",
            hint="is the source the endpoint's base URL (ending in /v1)?",
        ) from exc
    return ChatMessage(role="assistant", content=content, tool_calls=calls)


def _call(raw: dict[str, Any], index: int) -> ToolCall:
    function = raw["function"]
    text = function.get("arguments") or "{}"
    try:
        arguments = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        logger.warning("tool call %r: arguments are not a JSON object: %.200s", function, text)
        arguments = {}
    return ToolCall(
        id=str(raw.get("id") or f"call_{index}"), name=function["name"], arguments=arguments
    )


def _endpoint_of(spec: ModelSpec) -> EndpointSpec:
    if spec.endpoint is None:
        raise ModelLoadError(
            source=spec.source,
            reason="the 'openai' backend needs the model's name at the endpoint",
            hint=f"add {_EXAMPLE} to the model entry",
        )
    return spec.endpoint


class OpenAIChatBackend:
    """An OpenAI-compatible chat endpoint as an ``llm`` (see the module docs)."""

    roles: ClassVar[frozenset[str]] = frozenset({"llm"})

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """The source must be an http(s) URL, the entry must name the remote model, and the
        API key's variable, when named, must be set (nothing is sent)."""
        parts = urlsplit(spec.source)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ModelLoadError(
                source=spec.source,
                reason="the 'openai' backend takes the endpoint's base URL as its source",
                hint="e.g. source: http://localhost:8000/v1 (vLLM) or https://api.openai.com/v1",
            )
        endpoint = _endpoint_of(spec)
        if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env, "").strip():
            raise ModelLoadError(
                source=spec.source,
                reason=f"endpoint.api_key_env names ${endpoint.api_key_env}, but it is unset "
                "or empty",
                hint=f"export {endpoint.api_key_env}=<key> before `mmserve serve` (and before "
                "Ray starts, on a cluster), or remove api_key_env for an endpoint without keys",
            )

    def __init__(self, spec: ModelSpec) -> None:
        self.check_source(spec)
        self.spec = spec
        self.endpoint = _endpoint_of(spec)
        headers = {"accept": "application/json"}
        if self.endpoint.api_key_env:
            headers["authorization"] = f"Bearer {os.environ[self.endpoint.api_key_env].strip()}"
        timeout = httpx.Timeout(self.endpoint.timeout_s, connect=min(self.endpoint.timeout_s, 10))
        self._url = spec.source.rstrip("/") + "/chat/completions"
        self._where = f"the endpoint {self._url} (model {self.endpoint.model!r})"
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="openai-chat")

    def chat(self, items: Sequence[ChatItem]) -> list[ChatMessage]:
        """One assistant message per conversation, the conversations sent at once."""
        if len(items) == 1:
            return [self._reply(items[0])]
        return list(self._pool.map(self._reply, items))

    def request_body(self, item: ChatItem) -> dict[str, Any]:
        """The chat completion request for ``item``."""
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": wire_messages(item.messages),
            "max_tokens": item.max_new_tokens,
            "temperature": item.temperature,
        }
        if item.tools:
            body["tools"] = [{"type": "function", "function": t.model_dump()} for t in item.tools]
        return body

    def _reply(self, item: ChatItem) -> ChatMessage:
        try:
            answer = self._client.post(self._url, json=self.request_body(item))
        except httpx.TimeoutException as exc:
            raise RemoteModelTimeoutError(
                f"{self._where} did not answer within {self.endpoint.timeout_s:g}s",
                hint="raise endpoint.timeout_s in the model entry, or check the endpoint's load",
            ) from exc
        except httpx.HTTPError as exc:
            raise RemoteModelError(
                f"cannot reach {self._where}: {type(exc).__name__}: {exc}",
                hint="check the source URL and that the endpoint is up",
            ) from exc
        if answer.status_code >= 400:
            raise self._status_error(answer)
        try:
            data = answer.json()
        except ValueError as exc:
            raise RemoteModelError(
                f"{self._where} answered {answer.status_code} with a body that is not JSON: "
                f"{answer.text[:200]!r}",
                hint="is the source the endpoint's base URL (ending in /v1)?",
            ) from exc
        return parse_completion(data, self._where)

    def _status_error(self, answer: httpx.Response) -> RemoteModelError:
        said = _error_message(answer)
        status = answer.status_code
        if status in (401, 403):
            variable = self.endpoint.api_key_env
            return RemoteModelAuthError(
                f"{self._where} refused the API key ({status}): {said}",
                hint=f"check the key in ${variable}"
                if variable
                else "set endpoint.api_key_env to the variable holding the endpoint's key",
            )
        if status == 429:
            return RemoteModelBusyError(f"{self._where} is rate-limited or busy (429): {said}")
        return RemoteModelError(f"{self._where} failed ({status}): {said}")

    def close(self) -> None:
        """Close the connections (the loader keeps backends for the process's life)."""
        self._client.close()
        self._pool.shutdown(wait=False)


def _error_message(answer: httpx.Response) -> str:
    """The endpoint's own error message (OpenAI's ``{"error": {"message"}}``) or its text."""
    try:
        data = answer.json()
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else None
        if message is None:
            message = data.get("detail") or data.get("message") or data.get("error")
        if message:
            return str(message)[:300]
    except (ValueError, AttributeError, TypeError, KeyError):
        pass
    return answer.text[:300] or answer.reason_phrase


__all__ = ["OpenAIChatBackend", "parse_completion", "wire_messages"]
