"""``mmserve jobs list|show|wait|cancel`` and ``mmserve run --url --detach``: jobs on a server.

A job is a run queued on a server (docs/jobs.md): ``mmserve run NAME --url URL --detach``
submits one and prints its id; the ``jobs`` commands follow it. Jobs live on a server, so
every command here talks to one: ``--url``, by default ``$MMSERVE_URL``, else
``http://127.0.0.1:8000`` (where ``mmserve serve`` listens), with the API key from
``$MMSERVE_API_KEY``. They use the client only (:mod:`mmserve.client`), so they work on the
thin install (``pip install mmserve``).

``jobs wait`` prints what ``mmserve run --url`` prints for the same run (outputs, trace,
request id as JSON; ``--output-dir`` writes the images), and ``jobs show`` prints it after
the job's status lines; :func:`run_answer` and :func:`served_inputs` are shared with
``mmserve run --url`` (:mod:`mmserve.cli.main`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mmserve.cli.common import CLI_CONNECT_BUDGET_S, friendly, print_json
from mmserve.cli.inputs import parse_inputs
from mmserve.cli.reports import served_hint
from mmserve.client.clients import Client, RetryPolicy, RunResult
from mmserve.client.errors import ApiError
from mmserve.client.jobs import Job
from mmserve.client.outputs import write_images
from mmserve.client.requests import DEFAULT_URL
from mmserve.errors import WorkflowNotFoundError

#: The environment variable with the server's URL, when ``--url`` is not given.
URL_ENV = "MMSERVE_URL"
#: Seconds to wait for one answer of the server (a job is asked about, never waited on, in one).
JOBS_TIMEOUT_S = 60.0
#: The statuses a job has, in the order it passes through them.
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")

jobs_app = typer.Typer(
    name="jobs",
    help="The jobs of a server (runs queued with `mmserve run --url --detach`): list, show, "
    "wait, cancel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        show_envvar=True,
        help="The mmserve server (the API key from $MMSERVE_API_KEY).",
    ),
]
JobIdArgument = Annotated[str, typer.Argument(help="The job's id (as `run --detach` printed it).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
OutputDirOption = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        help="Write image outputs as PNG files here and print their paths (not base64).",
    ),
]


def connect(url: str, *, deadline_s: float | None = None, use_cache: bool = True) -> Client:
    """A client of the server at ``url`` as ``mmserve run --url`` makes it: the API key from
    ``$MMSERVE_API_KEY``, a few seconds of reconnecting to a server that does not answer;
    ``deadline_s``: a submitted job's run deadline."""
    retry = RetryPolicy(budget_s=CLI_CONNECT_BUDGET_S)
    return Client(
        url, timeout=JOBS_TIMEOUT_S, retry=retry, deadline_s=deadline_s, use_cache=use_cache
    )


def served_inputs(client: Client, workflow: str) -> dict[str, Any]:
    """The input schema of ``workflow`` on the server; a workflow it does not serve is a
    :class:`~mmserve.errors.WorkflowNotFoundError` saying how to serve it."""
    schemas = {w["name"]: w["inputs"] for w in client.workflows()}
    if workflow not in schemas:
        error = WorkflowNotFoundError(name=workflow, known=list(schemas))
        error.hint = served_hint(workflow)
        raise error
    schema: dict[str, Any] = schemas[workflow]
    return schema


def run_answer(result: RunResult, output_dir: Path | None) -> dict[str, Any]:
    """What ``mmserve run --url`` prints of a run: its outputs (images as the server sent
    them, base64 PNG; or with ``output_dir`` written there as files, their paths), trace and
    request id."""
    outputs = (
        write_images(result.outputs, output_dir)
        if output_dir is not None
        else result.raw.get("outputs", {})
    )
    return {"outputs": outputs, "trace": result.trace, "request_id": result.request_id}


def print_failed_run(exc: ApiError) -> None:
    """A failed run that ran steps prints, as a local run does, its error and trace as JSON on
    stdout (the error's one line goes to stderr after)."""
    if exc.trace:
        print_json({"error": {"code": exc.code, "message": exc.message}, "trace": exc.trace})


def submit(
    url: str,
    workflow: str,
    pairs: list[str],
    *,
    deadline_s: float | None = None,
    use_cache: bool = True,
) -> str:
    """``mmserve run --url --detach``: queue ``workflow`` with the ``name=value`` inputs of
    ``pairs`` as a job; its id."""
    with connect(url, deadline_s=deadline_s, use_cache=use_cache) as client:
        values = parse_inputs(pairs, served_inputs(client, workflow))
        return client.submit(workflow, **values).id


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _target(view: dict[str, Any]) -> tuple[str, str]:
    """What a job runs: ``("workflow", NAME)`` or ``("agent", NAME)``."""
    kind = "agent" if view.get("kind") == "agent" else "workflow"
    return kind, str(view.get(kind))


def _progress(view: dict[str, Any]) -> str:
    """``2/3 steps``, with the queue position of a queued job and a pending cancel."""
    said = f"{view['steps_done']}/{view['steps_total']} steps"
    if view["status"] == "queued" and view.get("position") is not None:
        said += f", position {view['position']} in the queue"
    if view.get("cancel_requested") and view["status"] == "running":
        said += ", cancel requested"
    return said


def _error_text(error: dict[str, Any]) -> str:
    return f"{error.get('message')} [{error.get('status')} {error.get('code')}]"


def job_lines(view: dict[str, Any]) -> list[str]:
    """A job's status as ``jobs show`` prints it: a ``name  value`` line per field."""
    fields = [
        ("id", view["id"]),
        ("status", view["status"]),
        _target(view),
        ("created", _when(view["created_at"])),
        ("started", _when(view["started_at"])),
        ("finished", _when(view["finished_at"])),
        ("progress", _progress(view)),
    ]
    if view.get("attempts", 0) > 1:
        fields.append(("attempts", str(view["attempts"])))
    if view.get("error"):
        fields.append(("error", _error_text(view["error"])))
    if view.get("webhook"):
        fields.append(("webhook", view["webhook"]))
    return [f"{name:<9} {value}" for name, value in fields]


def _name(view: dict[str, Any]) -> str:
    """A job's workflow (``agent NAME`` for an agent's) as ``jobs list`` prints it."""
    kind, name = _target(view)
    return name if kind == "workflow" else f"{kind} {name}"


def list_lines(views: list[dict[str, Any]]) -> list[str]:
    """``jobs list``: a line a job (id, status, workflow, created, steps; a failure's code)."""
    width = max((len(_name(view)) for view in views), default=0)
    lines = []
    for view in views:
        line = f"{view['id']}  {view['status']:<9}  {_name(view):<{width}}  "
        line += f"{_when(view['created_at'])}  {_progress(view)}"
        if view.get("error"):
            line += f"  {view['error'].get('code')}"
        lines.append(line)
    return lines


@jobs_app.command("list")
@friendly
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help=f"Only these: {', '.join(STATUSES)}.")
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only the jobs of this workflow.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="The newest N jobs at most.")
    ] = 50,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """List the server's jobs, newest first: id, status, workflow, when created, steps done."""
    with connect(url) as client:
        views = client.jobs.list(status=status, workflow=workflow, limit=limit)
    if as_json:
        print_json({"jobs": views})
        return
    if not views:
        typer.echo("no jobs (queue one with `mmserve run NAME --url URL --detach`)")
    for line in list_lines(views):
        typer.echo(line)


@jobs_app.command()
@friendly
def show(
    job_id: JobIdArgument,
    url: UrlOption = DEFAULT_URL,
    output_dir: OutputDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job: status, workflow, times, steps done, error; outputs once it has succeeded.

    A succeeded job's outputs and trace follow its status lines, as `mmserve run` prints them.
    """
    with connect(url) as client:
        job = client.jobs.get(job_id)
        view = job.status()
        result = job.result(timeout=0) if view["status"] == "succeeded" else None
    if as_json:
        print_json(view)
        return
    for line in job_lines(view):
        typer.echo(line)
    if result is not None:
        print_json(run_answer(result, output_dir))


@jobs_app.command()
@friendly
def wait(
    job_id: JobIdArgument,
    url: UrlOption = DEFAULT_URL,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0, help="Give up after this many seconds (the job goes on)."),
    ] = None,
    output_dir: OutputDirOption = None,
) -> None:
    """Wait for a job to end; print its outputs and trace as `mmserve run` does.

    A failed or cancelled job prints its error (exit 1); so does --timeout passing first.
    """
    with connect(url) as client:
        job: Job = client.jobs.get(job_id)
        try:
            result = job.result(timeout=timeout)
        except ApiError as exc:
            print_failed_run(exc)
            raise
    print_json(run_answer(result, output_dir))


@jobs_app.command()
@friendly
def cancel(
    job_id: JobIdArgument, url: UrlOption = DEFAULT_URL, as_json: JsonOption = False
) -> None:
    """Cancel a job: a queued job never runs, a running one stops at its next step."""
    with connect(url) as client:
        view = client.jobs.cancel(job_id)
    if as_json:
        print_json(view)
    elif view["status"] == "cancelled":
        typer.echo(f"cancelled {view['id']}")
    else:
        typer.echo(f"cancel requested: {view['id']} is {view['status']}, it stops at its next step")


__all__ = [
    "JOBS_TIMEOUT_S",
    "URL_ENV",
    "connect",
    "job_lines",
    "jobs_app",
    "list_lines",
    "print_failed_run",
    "run_answer",
    "served_inputs",
    "submit",
]
