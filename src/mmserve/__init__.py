"""mmserve: a plugin-based multimodal workflow server on Ray Serve.

The Python entry points: :class:`Client` / :class:`AsyncClient` (call a server), and the
error hierarchy rooted at :class:`MmserveError` (the client's errors are in
:mod:`mmserve.client.errors`, the server's in :mod:`mmserve.errors`; the ones a caller catches
are re-exported here).
"""

from mmserve.client.clients import AsyncClient, Client, RetryPolicy, RunResult
from mmserve.client.errors import (
    ApiAuthError,
    ApiError,
    ApiInputError,
    ApiNotFoundError,
    ApiOverloadedError,
    ApiServerError,
    ApiTimeoutError,
    ClientTimeoutError,
    InputError,
    JobCancelledError,
    JobExpiredError,
    JobTimeoutError,
    MmserveError,
    RequestInterruptedError,
    ServerUnreachableError,
)
from mmserve.client.jobs import AsyncJob, Job
from mmserve.errors import ConfigError, WorkflowValidationError
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
    "AsyncJob",
    "Client",
    "ClientTimeoutError",
    "ConfigError",
    "InputError",
    "Job",
    "JobCancelledError",
    "JobExpiredError",
    "JobTimeoutError",
    "MmserveError",
    "RequestInterruptedError",
    "RetryPolicy",
    "RunResult",
    "ServerUnreachableError",
    "WorkflowValidationError",
]
