"""What `mmserve run` and `mmserve plugins NAME` print beyond a plain answer: the words for a
workflow a server does not have, the error and trace of a failed run, one plugin's reference."""

from __future__ import annotations

from collections.abc import Callable
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import typer

from mmserve.cli.common import print_json
from mmserve.cli.plugin_reference import kinds_named, text_lines
from mmserve.errors import MmserveError, PluginError
from mmserve.registry import PluginInfo, registry
from mmserve.workflow import trace_of


def served_hint(workflow: str) -> str:
    """What to do when ``--url`` names a workflow the server does not have."""
    if not workflow.endswith((".yaml", ".yml")) and not Path(workflow).exists():
        return "pass the name of a workflow the server lists (GET /v1/workflows)"
    folder = Path(workflow).resolve().parent.as_posix()
    return (
        "a server runs the workflows of its app config, by name: to serve this file, add its "
        f"folder to the config's `workflows:` (e.g. `workflows: [{folder}]`, paths relative "
        "to the config), restart `mmserve serve --config ...` and run it by its `name:`; "
        "or run the file here, without --url"
    )


def print_failed_trace(exc: BaseException) -> None:
    """A failed run that got as far as running steps prints, as JSON on stdout, the error and
    its trace (which steps ran, which failed and why, which were skipped), as HTTP answers."""
    trace = trace_of(exc)
    if not trace:
        return
    code = exc.code if isinstance(exc, MmserveError) else "internal_error"
    error = {"code": code, "message": str(exc)}
    print_json({"error": error, "trace": [entry.model_dump(mode="json") for entry in trace]})


def plugin_reference(
    name: str, as_json: bool, record: Callable[[PluginInfo], dict[str, Any]]
) -> None:
    """`mmserve plugins NAME`: every plugin of that name, its fields (``record``: --json)."""
    found = kinds_named(registry, name)
    if not found:
        failed = [f for f in registry.failures if f.name == name]
        if failed:
            raise failed[0]
        close = get_close_matches(name, sorted({i.name for i in registry.plugins()}), n=3)
        suggestion = f"did you mean {' or '.join(close)}? " if close else ""
        raise PluginError(
            f"no plugin named {name!r}", hint=f"{suggestion}`mmserve plugins` lists them all"
        )
    if as_json:
        print_json({"plugins": [record(info) for info in found]})
        return
    for number, info in enumerate(found):
        if number:
            typer.echo("")
        for line in text_lines(info, registry.get(info.kind, info.name)):
            typer.echo(line)


__all__ = ["plugin_reference", "print_failed_trace", "served_hint"]
