"""When the clients send a request again: one :class:`Attempts` per request.

Three kinds of failure, three rules (:class:`RetryPolicy` sets the numbers):

* **the request never reached the server** (connection refused, connect timeout): sent again
  with backoff until ``budget_s`` has passed since the first failure, which covers a restart
  of Serve's proxy, the ingress or a load balancer in front;
* **a 503 with Retry-After** that :func:`is_retryable_status` accepts
  (the proxy's backpressure: the app never ran it): up to ``attempts`` sends;
* **the request was cut mid-way** (connection reset or closed before the answer, or a 5xx
  that is not mmserve's JSON error, i.e. a proxy's own answer: the app may or may not have
  run it): sent again within ``budget_s`` only when repeating is safe. Reads are; adding to a
  collection is (items are upserted by id, content hashes by default), dropping one is not
  (a drop that went through would come back as a 404); a workflow run is when
  the server's listing says so (``repeatable``: none of its steps declares side effects).
  Otherwise :class:`~mmserve.client.errors.RequestInterruptedError` says the run was not repeated
  and why;
* **mmserve's own 503 to an add to a collection** (the store replica or the embedding model
  restarting, or overloaded): sent again within ``budget_s``, after at least its
  Retry-After, since an upsert by id applied twice is applied once (a drop is not sent
  again: :func:`_repeatable_collection_write`).

A timeout waiting for the answer (``timeout=``) is never repeated: the work may be running;
it raises :class:`~mmserve.client.errors.ClientTimeoutError` (an ``ApiTimeoutError``).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mmserve.client.errors import (
    ClientTimeoutError,
    RequestInterruptedError,
    ServerUnreachableError,
)

#: The request was never sent: repeating it is always safe.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Sent, and cut before the answer came: repeat only where that is safe.
_CUT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.WriteTimeout)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: In a collection's path (``/v1/collections/NAME...``, after the base URL's own path if it
#: has one): what its writes may repeat is :func:`_repeatable_collection_write`.
_COLLECTION = re.compile(r"/v1/collections/")
_RUN = re.compile(r"^/v1/workflows/([^/]+)/run$")


@dataclass(frozen=True)
class RetryPolicy:
    """When a request is sent again (this module has the rules).

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


def repeat_blocker(method: str, path: str, listing: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why a request cut mid-way must not be sent again, or None when that is safe.
    ``listing``: the server's workflows by name (``GET /v1/workflows``)."""
    if method.upper() in _SAFE_METHODS or _repeatable_collection_write(method, path):
        return None
    if _COLLECTION.search(path):
        return "a dropped collection cannot be dropped again"
    match = _RUN.match(path)
    if match is None:
        return f"{method} {path} is not known to be safe to repeat"
    name = match.group(1)
    info = listing.get(name)
    if info is None or "repeatable" not in info:
        return f"the server does not say whether workflow {name!r} is safe to repeat"
    if info["repeatable"]:
        return None
    steps = ", ".join(info.get("side_effects") or []) or "some steps"
    return f"workflow {name!r} has steps with side effects ({steps})"


def _repeatable_collection_write(method: str, path: str) -> bool:
    """A write to a collection that may be sent twice: an add (items are upserted by id,
    content hashes by default, so sending it again never adds an item twice), not a drop (a
    drop that went through would come back as a 404)."""
    upper = method.upper()
    return bool(_COLLECTION.search(path)) and upper not in _SAFE_METHODS and upper != "DELETE"


def _idempotent_write_refused(response: httpx.Response) -> bool:
    """mmserve's own 503 (with Retry-After) to a collection write that may be sent twice."""
    request = response.request
    return (
        response.status_code == 503
        and "retry-after" in response.headers
        and _repeatable_collection_write(request.method, request.url.path)
        and is_app_error(response)
    )


def _unreachable(url: str, exc: Exception) -> ServerUnreachableError:
    return ServerUnreachableError(
        f"cannot reach mmserve at {url}: {exc}",
        hint="is `mmserve serve` running there? check the URL and port",
    )


def timed_out(url: str, timeout_s: float | None) -> ClientTimeoutError:
    waited = f"{timeout_s:g} s" if timeout_s is not None else "its timeout"
    return ClientTimeoutError(
        f"mmserve at {url} did not answer within {waited} (the client's timeout)",
        hint="the server is up; the run may still finish there. Wait longer: "
        "Client(timeout=...), `mmserve run --timeout`",
    )


def _interrupted(blocker: str, cut: str, status: int) -> RequestInterruptedError:
    return RequestInterruptedError(
        f"the request was cut before its answer ({cut}) and was not sent again: {blocker}, "
        "so it may or may not have run; check its effects before running it again",
        status=status,
        code="interrupted",
    )


class Attempts:
    """The retry state of one request: call :meth:`after_error` or :meth:`after_answer`,
    sleep the seconds returned, and send again (they raise, or return None, when not to)."""

    def __init__(
        self, policy: RetryPolicy, url: str, blocker: str | None, timeout_s: float | None = None
    ) -> None:
        self.policy, self.url, self.blocker = policy, url, blocker
        self.timeout_s = timeout_s
        self.sent = 0
        self._first_failure: float | None = None

    def _within_budget(self) -> float | None:
        """The backoff before the next send, or None when the budget is spent."""
        now = time.monotonic()
        if self._first_failure is None:
            self._first_failure = now
        left = self._first_failure + self.policy.budget_s - now
        if left <= 0:
            return None
        return min(self.policy.delay(self.sent - 1), left)

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before sending again after ``exc``; raises when not to."""
        self.sent += 1
        if isinstance(exc, httpx.ReadTimeout):  # sent and taken: never sent again
            raise timed_out(self.url, self.timeout_s) from exc
        if isinstance(exc, _NOT_SENT):
            wait = self._within_budget()
            if wait is None:
                raise _unreachable(self.url, exc) from exc
            return wait
        if isinstance(exc, _CUT):
            if self.blocker is not None:
                raise _interrupted(self.blocker, type(exc).__name__, 502) from exc
            wait = self._within_budget()
            if wait is None:
                raise _unreachable(self.url, exc) from exc
            return wait
        raise _unreachable(self.url, exc) from exc

    def after_answer(self, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again, or None: the answer is final (an error
        answer is then raised by :func:`~mmserve.client.requests.raise_for_error`)."""
        self.sent += 1
        if _idempotent_write_refused(response):
            # the store or a model restarting (``unavailable``), or overloaded: the write
            # was not applied or will be applied once however often it is sent
            wait = self._within_budget()
            if wait is None:
                return None
            return max(wait, self.policy.delay(0, response.headers.get("retry-after")))
        if is_retryable_status(response):
            if self.sent >= self.policy.attempts:
                return None
            return self.policy.delay(self.sent - 1, response.headers.get("retry-after"))
        if response.status_code < 500 or is_app_error(response):
            return None
        # a proxy's own 5xx (plain text): the request may have been cut mid-way
        if self.blocker is not None:
            cut = f"{response.status_code} from a proxy: {response.text[:120].strip()!r}"
            raise _interrupted(self.blocker, cut, response.status_code)
        return self._within_budget()


__all__ = [
    "Attempts",
    "RetryPolicy",
    "is_app_error",
    "is_retryable_status",
    "repeat_blocker",
    "timed_out",
]
