"""Jobs: durable asynchronous runs on a task queue (docs/jobs.md).

:mod:`~mmserve.jobs.records` (a job's record and view), :mod:`~mmserve.jobs.lifecycle` (its
state machine), :mod:`~mmserve.jobs.store` (the store contract: SQLite or Redis),
:mod:`~mmserve.jobs.files` (inputs and results beside the store), :mod:`~mmserve.jobs.broker`
(the Celery queue), :mod:`~mmserve.jobs.service` (the API's side), :mod:`~mmserve.jobs.worker`
(the worker's side and the recovery), :mod:`~mmserve.jobs.webhooks`. No Ray here: the job
worker deployment is :mod:`mmserve.serve.jobs_worker`.
"""
