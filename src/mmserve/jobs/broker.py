"""The job queue: a Celery app on the configured broker.

``jobs.broker: sqlite`` (the default) is kombu's SQLAlchemy transport on a SQLite file in the
jobs folder (:mod:`mmserve.jobs.sqlite_transport`): nothing to run beside the server. A
``redis://`` URL is Redis, for a cluster, with ``visibility_timeout`` set from the config.
Results are not kept by Celery (the job store holds each job's state and its files hold the
outputs), so there is no result backend; remote control is off (cancelling goes through the
job store, which works on both brokers).

A message is the job's id and nothing else: :data:`TASK` with ``args=[job_id]``; its task id
is ``<job id>.<something unique>``, so a worker knows the job from the message.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES

from mmserve.config import JobsConfig

#: The one task: run the job whose id is the argument.
TASK = "mmserve.run_job"
#: The embedded broker's transport, under a name of its own in kombu's table of transports
#: (a broker URL cannot name a class: kombu's URL parser reads the colon as a port).
TRANSPORT = "mmserve-sqlite"
TRANSPORT_ALIASES.setdefault(TRANSPORT, "mmserve.jobs.sqlite_transport:Transport")


def broker_url(config: JobsConfig, folder: Path) -> str:
    if config.broker == "sqlite":
        return f"{TRANSPORT}+sqlite:///{folder / 'broker.sqlite'}"
    return config.broker


def celery_app(config: JobsConfig, folder: Path) -> Celery:
    """The Celery app of the job queue (the same for the ingress that sends and the worker
    that consumes)."""
    folder.mkdir(parents=True, exist_ok=True)
    app = Celery("mmserve-jobs", broker=broker_url(config, folder), set_as_current=False)
    options: dict[str, Any] = {}
    if config.broker != "sqlite":
        options["visibility_timeout"] = config.visibility_timeout_s
        options["polling_interval"] = 0.1
    app.conf.update(
        task_default_queue=config.queue,
        task_queues=[job_queue(config.queue)],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=options,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def job_queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def task_id(job_id: str) -> str:
    """A new message's task id: the job's id, a dot, something unique."""
    return f"{job_id}.{uuid.uuid4().hex[:12]}"


def job_of(task: str) -> str:
    """The job id of a message's task id."""
    return task.partition(".")[0]


class Doorbell:
    """Sends job messages (thread-safe) and counts those waiting in the queue."""

    def __init__(self, app: Celery, queue: str) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._queue = job_queue(queue)

    def ring(self, job_id: str) -> None:
        """Send the message that makes a worker run ``job_id``; raises when the broker did
        not take it."""
        with self._lock:
            # declared with each message: on Redis, a message sent before any worker has
            # declared the queue would otherwise go to an exchange bound to nothing
            self._app.send_task(
                TASK,
                args=[job_id],
                task_id=task_id(job_id),
                queue=self._queue,
                declare=[self._queue],
            )

    def waiting(self) -> int:
        """Messages in the queue that no worker has received yet."""
        with self._lock, self._app.connection_for_read() as connection:
            try:
                declared = connection.default_channel.queue_declare(
                    queue=self._queue.name, passive=True
                )
            except ChannelError:  # Redis: an empty queue is no key, so "no such queue"
                return 0
            return int(declared.message_count)

    def close(self) -> None:
        self._app.close()


__all__ = ["TASK", "Doorbell", "broker_url", "celery_app", "job_of", "task_id"]
