"""The Python client of an mmserve server: :class:`Client` and :class:`AsyncClient`.

* :mod:`.clients` -- ``Client`` / ``AsyncClient``: run, stream, workflows;
* :mod:`.requests` -- one request builder under both (URLs, headers, payloads, answers);
* :mod:`.collections` / :mod:`.agents` -- ``client.collections`` and ``client.agents``;
* :mod:`.jobs` -- ``client.submit`` (a :class:`Job`) and ``client.jobs``;
* :mod:`.outputs` -- images and files in a result; :mod:`.stream` -- the event stream;
  :mod:`.retry` -- :class:`RetryPolicy`.
"""

from mmserve.client.clients import AsyncClient, Client, RetryPolicy, RunResult
from mmserve.client.jobs import AsyncJob, Job

__all__ = ["AsyncClient", "AsyncJob", "Client", "Job", "RetryPolicy", "RunResult"]
