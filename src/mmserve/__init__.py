"""mmserve: a plugin-based multimodal workflow server on Ray Serve.

The Python entry points: :class:`Client` / :class:`AsyncClient` (call a server), and the
error hierarchy rooted at :class:`MmserveError` (every class is in :mod:`mmserve.errors`; the
ones a caller catches are re-exported here).
"""

from mmserve.client.clients import AsyncClient, Client, RetryPolicy, RunResult
from mmserve.errors import (
    ApiAuthError,
    ApiError,
    ApiInputError,
    ApiNotFoundError,
    ApiOverloadedError,
    ApiServerError,
    ApiTimeoutError,
    ClientTimeoutError,
    ConfigError,
    InputError,
    MmserveError,
    RequestInterruptedError,
    ServerUnreachableError,
    WorkflowValidationError,
)
from mmserve.version import __version__ as __version__

__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiInputError",
    "ApiNotFoundError",
    "ApiOverloadedError",
    "ApiServerError",
    "ApiTimeoutError",
    "AsyncClient",
    "Client",
    "ClientTimeoutError",
    "ConfigError",
    "InputError",
    "MmserveError",
    "RequestInterruptedError",
    "RetryPolicy",
    "RunResult",
    "ServerUnreachableError",
    "WorkflowValidationError",
]
