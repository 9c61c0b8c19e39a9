"""Pieces every `mmserve` sub-command shares: loading the config and failing clearly.

A user of the CLI never sees a traceback: known errors print one line (or one line per
workflow issue) to stderr; unexpected ones print a one-line summary and point to
``MMSERVE_DEBUG=1``, which re-raises them with the full traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from mmserve.config import AppConfig
from mmserve.errors import MmserveError, WorkflowValidationError

P = ParamSpec("P")
R = TypeVar("R")

#: Exit codes: 1 for errors of the work itself, 2 for bad usage (typer's own convention).
EXIT_ERROR = 1
EXIT_USAGE = 2

DEFAULT_CONFIG = "deployments/local.yaml"

#: The ``--config`` option every command shares; "" means :func:`default_config`.
ConfigOption = Annotated[
    str,
    typer.Option(
        "--config",
        "-c",
        help="App config (deployments/*.yaml). Default: $MMSERVE_CONFIG or "
        "deployments/local.yaml (real models); deployments/tiny.yaml runs offline.",
    ),
]


def default_config() -> str:
    """``$MMSERVE_CONFIG`` if set, else the real-model profile."""
    return os.environ.get("MMSERVE_CONFIG", DEFAULT_CONFIG)


def load_config(path: str | Path) -> AppConfig:
    return AppConfig.load(path)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


def fail(err: BaseException, *, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``err`` as one clear line (a line per issue for workflow errors) and exit."""
    if isinstance(err, WorkflowValidationError):
        for issue in err.issues:
            echo_err(str(issue))
        echo_err(f"error: {len(err.issues)} problem(s) found")
    elif isinstance(err, MmserveError):
        echo_err(f"error: {err}")
    else:
        echo_err(f"error: unexpected {type(err).__name__}: {err}")
        echo_err("(set MMSERVE_DEBUG=1 to see the traceback, and please report it)")
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    echo_err(f"usage error: {message}")
    raise typer.Exit(EXIT_USAGE)


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: turn any error into a clear message and an exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("MMSERVE_DEBUG"):
                raise
            fail(exc)

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


__all__ = [
    "DEFAULT_CONFIG",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "ConfigOption",
    "default_config",
    "echo_err",
    "fail",
    "friendly",
    "load_config",
    "print_json",
    "usage_error",
]
