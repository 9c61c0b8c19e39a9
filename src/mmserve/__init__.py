"""mmserve: a plugin-based multimodal workflow server on Ray Serve.

The Python entry points: :class:`Client` / :class:`AsyncClient` (call a server), and the
error hierarchy rooted at :class:`MmserveError`.
"""

from mmserve.client import AsyncClient, Client, RetryPolicy, RunResult
from mmserve.errors import ApiError, MmserveError

__version__ = "0.1.0"

__all__ = ["ApiError", "AsyncClient", "Client", "MmserveError", "RetryPolicy", "RunResult"]
