"""The ``mmserve`` command.

``mmserve run``, ``validate`` and ``plugins`` live here; ``serve``/``build``, ``index`` and
``jobs`` are mounted from their own modules (``run --url --detach`` queues a job:
:mod:`mmserve.cli.jobs`). Every command turns errors into one clear line on stderr and
a non-zero exit (see :mod:`mmserve.cli.common`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mmserve.cli.chat import chat
from mmserve.cli.common import (
    CLI_CONNECT_BUDGET_S,
    EXIT_ERROR,
    ConfigOption,
    ProfileOption,
    echo_err,
    friendly,
    load_config,
    need_server,
    print_json,
    usage_error,
)
from mmserve.cli.index import index_app
from mmserve.cli.inputs import parse_inputs
from mmserve.cli.jobs import jobs_app, print_failed_run, run_answer, served_inputs, submit
from mmserve.cli.mcp import mcp
from mmserve.cli.progress import ProgressOption, ProgressPrinter, wants_progress
from mmserve.cli.reports import plugin_reference, print_failed_trace
from mmserve.cli.serve import build, serve
from mmserve.cli.status import status
from mmserve.client.clients import Client, RetryPolicy, RunResult
from mmserve.client.errors import ApiError
from mmserve.client.outputs import write_images
from mmserve.local.mode import LocalApp
from mmserve.registry import PluginInfo, record_error, registry, step_schemas
from mmserve.version import __version__
from mmserve.workflow import validate_paths
from mmserve.workflow.run.result import to_jsonable

app = typer.Typer(
    name="mmserve",
    help="A plugin-based multimodal workflow server on Ray Serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mmserve {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A plugin-based multimodal workflow server on Ray Serve."""


@app.command()
@friendly
def run(
    workflow: Annotated[
        str, typer.Argument(help="Workflow name (from the config) or a .yaml path.")
    ],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="name=value, or name=@file (repeatable)."),
    ] = None,
    config: ConfigOption = "",
    profile: ProfileOption = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run in this process, no server (the default).")
    ] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="Run on the mmserve server at this URL.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Give up after this many seconds (with --detach: the job's run deadline).",
        ),
    ] = None,
    progress: ProgressOption = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Write image outputs as PNG files here and print their paths (not base64).",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Compute `cache: true` steps afresh (no cached result)."),
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Queue the run as a job on the --url server and print its id; follow it with "
            "`mmserve jobs show|wait|cancel ID`.",
        ),
    ] = False,
) -> None:
    """Run a workflow and print its outputs and trace as JSON (steps' progress on stderr)."""
    if local and url:
        usage_error("use either --local or --url, not both")
    if detach:
        _detach(url, workflow, inputs or [], timeout, progress, output_dir, use_cache=not no_cache)
        return
    printer = ProgressPrinter() if wants_progress(progress) else None
    if url:
        print_json(
            _run_remote(
                url, workflow, inputs or [], timeout, output_dir, printer, use_cache=not no_cache
            )
        )
        return

    need_server("run")
    app_config = load_config(config, profile)
    local_app = LocalApp(app_config)
    spec = local_app.workflow(workflow)
    values = parse_inputs(inputs or [], spec.input_schema())
    try:
        result = asyncio.run(
            local_app.run(spec, values, timeout_s=timeout, on_event=printer, use_cache=not no_cache)
        )
    except Exception as exc:
        print_failed_trace(exc)
        raise
    answer = result.model_dump(mode="json")
    if output_dir is not None:
        answer["outputs"] = to_jsonable(_written(result.outputs, output_dir))
    print_json(answer)


def _detach(
    url: str | None,
    workflow: str,
    pairs: list[str],
    timeout: float | None,
    progress: bool | None,
    output_dir: Path | None,
    *,
    use_cache: bool,
) -> None:
    """``run --detach``: submit a job to the ``url`` server and print its id."""
    if not url:
        echo_err("error: --detach queues a job on a server, which needs --url (jobs need a server)")
        raise typer.Exit(EXIT_ERROR)
    if progress or output_dir is not None:
        usage_error("--detach prints only the job's id: `mmserve jobs wait ID` prints its outputs")
    typer.echo(submit(url, workflow, pairs, deadline_s=timeout, use_cache=use_cache))


def _written(outputs: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    return write_images(outputs, output_dir)


def _run_remote(
    url: str,
    workflow: str,
    pairs: list[str],
    timeout: float | None,
    output_dir: Path | None,
    printer: ProgressPrinter | None = None,
    *,
    use_cache: bool = True,
) -> Any:
    retry = RetryPolicy(budget_s=CLI_CONNECT_BUDGET_S)
    with Client(url, timeout=timeout or 600.0, retry=retry, use_cache=use_cache) as client:
        values = parse_inputs(pairs, served_inputs(client, workflow))
        if printer is None:
            try:
                result = client.run(workflow, **values)
            except ApiError as exc:
                print_failed_run(exc)  # as a local run: the error and the trace, as JSON
                raise
        else:  # the server's event stream, each step printed as it happens
            for item in client.stream(workflow, **values):
                if isinstance(item, RunResult):
                    result = item
                else:
                    printer(item)
    return run_answer(result, output_dir)


@app.command()
@friendly
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Workflow files or folders.")],
) -> None:
    """Check workflows without running them: syntax, keys, steps, references, types, cycles."""
    issues = validate_paths(paths)
    for issue in issues:
        echo_err(str(issue))
    if issues:
        echo_err(f"error: {len(issues)} problem(s) found")
        raise typer.Exit(1)
    files = _workflow_files(paths)
    typer.echo(f"ok: {len(files)} workflow file(s) valid")


def _workflow_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def _plugin_record(info: PluginInfo) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": info.kind,
        "name": info.name,
        "origin": info.origin,
        "description": info.description,
    }
    if "roles" in info.meta:
        record["roles"] = info.meta["roles"]
    if "methods" in info.meta:
        record["methods"] = info.meta["methods"]
    if info.kind == "step":
        record["inputs"], record["outputs"] = step_schemas(registry.get("step", info.name))
    return record


@app.command()
@friendly
def plugins(
    name: Annotated[
        str | None,
        typer.Argument(help="One plugin: print its fields, their types, defaults and meaning."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every plugin (steps, models, stores, roles) with its origin; broken ones by name.

    With a NAME, print that plugin's reference: a step's inputs and outputs, a role's methods.
    """
    if name is not None:
        plugin_reference(name, as_json, _plugin_record)
        return
    records: list[dict[str, Any]] = []
    infos = registry.plugins()  # loads the plugins first, recording those that fail
    broken = [{"name": f.name, "origin": f.origin, "error": f.reason} for f in registry.failures]
    for info in infos:
        try:
            records.append(_plugin_record(info))
        except Exception as exc:  # third-party code: any failure is that plugin's alone
            broken.append({"name": info.name, "origin": info.origin, "error": record_error(exc)})
    if as_json:
        print_json({"plugins": records, "broken": broken})
        return
    width = max((len(r["name"]) for r in records), default=4)
    origin_width = max((len(r["origin"]) for r in records), default=7)
    for record in records:
        listed = record.get("roles") or list(record.get("methods", {}))
        extra = f" [{', '.join(listed)}]" if listed else ""
        typer.echo(
            f"{record['kind']:<6} {record['name']:<{width}}  {record['origin']:<{origin_width}}  "
            f"{record['description']}{extra}"
        )
    for failure in broken:
        echo_err(f"broken {failure['name']} ({failure['origin']}): {failure['error']}")


def _mount_subcommands() -> None:
    app.command(help="Serve the app on Ray Serve (embedded local Ray, or --address).")(serve)
    app.command(help="Write a Ray Serve config (serve run/deploy) or a KubeRay RayService.")(build)
    app.command(help="Show the running app's replicas, their nodes, and why any waits.")(status)
    app.add_typer(index_app, name="index", help="Build and search the retrieval index.")
    app.add_typer(jobs_app, name="jobs", help="Follow a server's jobs: list, show, wait, cancel.")
    app.command(help="Chat with an agent at the terminal (--url for a server).")(chat)
    app.command(help="A stdio MCP server for desktop MCP clients, forwarding to --url's /mcp.")(mcp)


_mount_subcommands()


def main() -> None:
    # Model loading progress bars are noise on a command line whose stdout is JSON.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


__all__ = ["app", "main"]
