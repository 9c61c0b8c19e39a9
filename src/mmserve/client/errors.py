"""The errors the client raises, and the root of every mmserve error.

The client stands alone (it imports none of the server's modules), yet a caller catching
:class:`MmserveError` must catch the client's errors and the server's alike. So the root of
the hierarchy, and the two classes both sides raise, are defined here, and
:mod:`mmserve.errors` (the server's errors) re-exports them and derives its own from them:

* :class:`MmserveError` -- the root: a stable ``code``, a ``message``, an optional ``hint``;
* :class:`InputError` -- a bad input (the client: a local file it cannot read; the server: a
  workflow input of the wrong type);
* :class:`ServingError` -- the served app misbehaved (the client: an answer it cannot read;
  the server: a deployment failing);
* :class:`ApiError` and its subclasses -- an error answer of the server, by HTTP status;
  :class:`ServerUnreachableError` -- nothing answered;
* :class:`JobCancelledError`, :class:`JobExpiredError`, :class:`JobTimeoutError` -- waiting for
  a job's result (:mod:`mmserve.client.jobs`) when it has none, or none yet (a failed job
  raises its error as the :class:`ApiError` subclass its status calls for, as a run would).
"""

from __future__ import annotations


class MmserveError(Exception):
    """Base class of every mmserve error."""

    code: str = "mmserve_error"
    #: HTTP status the API answers with for this error.
    status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take keyword-only context, so the default ``cls(*args)`` unpickling
        # fails; errors must survive pickling to cross Ray process boundaries (served mode).
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(
    cls: type[MmserveError], args: tuple[object, ...], state: dict[str, object]
) -> MmserveError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InputError(MmserveError):
    """A workflow or request input is missing, unexpected, of the wrong type or unreadable."""

    code = "invalid_input"
    status = 422

    def __init__(self, message: str, *, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class ServingError(MmserveError):
    """Base class for problems of the served app."""

    code = "serving_error"


# --- the client's view of server errors --------------------------------------------------


class ApiError(MmserveError):
    """An error answer of an mmserve server, as the client raises it.

    Carries the server's ``code``, ``message``, HTTP ``status`` and ``request_id`` (quote it
    when reporting a problem). Subclasses group the statuses a caller handles differently.
    """

    code = "api_error"
    #: The failed run's trace, when the server sent one (which steps ran, failed, skipped).
    trace: list[dict[str, object]] | None = None

    def __init__(
        self, message: str, *, status: int, code: str, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        suffix = f", request {self.request_id}" if self.request_id else ""
        return f"{self.message} [{self.status} {self.code}{suffix}]"


class ApiInputError(ApiError):
    """400, 413, 422: the request was wrong; retrying it unchanged will not help."""


class ApiAuthError(ApiError):
    """401: missing or wrong API key."""


class ApiNotFoundError(ApiError):
    """404: unknown workflow, collection or path."""


class ApiOverloadedError(ApiError):
    """429, 503: the server is busy; retry after a while."""


class ApiTimeoutError(ApiError):
    """504: the request ran past its deadline."""


class ApiServerError(ApiError):
    """500 and other server-side failures."""


class RequestInterruptedError(ApiServerError):
    """A request was cut before its answer (connection reset, a proxy's plain 5xx) and the
    client did not send it again, since repeating it is not safe (a workflow with side
    effects): it may or may not have run."""


class ClientTimeoutError(ApiTimeoutError):
    """The server did not answer within the client's ``timeout`` (``Client(timeout=...)``,
    ``mmserve run --timeout``). It was reached: the work may still be running there."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, status=504, code="client_timeout")
        self.hint = hint

    def __str__(self) -> str:
        return MmserveError.__str__(self)


class JobCancelledError(ApiError):
    """The job was cancelled (``DELETE /v1/jobs/{id}``) before it finished: it has no result."""

    def __init__(self, job_id: str, *, request_id: str | None = None) -> None:
        super().__init__(
            f"job {job_id} was cancelled: it has no result",
            status=409,
            code="job_cancelled",
            request_id=request_id,
        )
        self.job_id = job_id


class JobExpiredError(ApiError):
    """The job finished longer ago than the server keeps its outputs (``jobs.retention_s``)."""

    def __init__(self, job_id: str, *, request_id: str | None = None) -> None:
        super().__init__(
            f"job {job_id} has expired: the server no longer keeps its outputs",
            status=410,
            code="job_expired",
            request_id=request_id,
        )
        self.job_id = job_id


class JobTimeoutError(ClientTimeoutError):
    """``Job.result(timeout=...)`` (``mmserve jobs wait --timeout``) passed before the job
    finished. The job goes on: wait again, or cancel it."""

    def __init__(self, job_id: str, timeout_s: float, job_status: str) -> None:
        super().__init__(
            f"job {job_id} did not finish within {timeout_s:g} s (it is {job_status})",
            hint="it goes on on the server: wait again, or cancel it",
        )
        self.code = "job_timeout"
        self.job_id = job_id
        #: The job's status when the wait ended (``queued`` or ``running``).
        self.job_status = job_status


class ServerUnreachableError(MmserveError):
    """The client could not connect to the server at all."""

    code = "server_unreachable"
    status = 503


__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiInputError",
    "ApiNotFoundError",
    "ApiOverloadedError",
    "ApiServerError",
    "ApiTimeoutError",
    "ClientTimeoutError",
    "InputError",
    "JobCancelledError",
    "JobExpiredError",
    "JobTimeoutError",
    "MmserveError",
    "RequestInterruptedError",
    "ServerUnreachableError",
    "ServingError",
]
