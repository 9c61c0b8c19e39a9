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
  :class:`ServerUnreachableError` -- nothing answered.
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
    "MmserveError",
    "RequestInterruptedError",
    "ServerUnreachableError",
    "ServingError",
]
