"""mmserve: a plugin-based multimodal workflow server on Ray Serve.

The Python entry points: :class:`Client` / :class:`AsyncClient` (call a server), and the
error hierarchy rooted at :class:`MmserveError` (every class is in :mod:`mmserve.errors`; the
ones a caller catches are re-exported here).
"""

from mmserve.client import AsyncClient, Client, RetryPolicy, RunResult
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

__version__ = "0.1.0"

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
