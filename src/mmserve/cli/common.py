"""Pieces every `mmserve` sub-command shares: loading the config and failing clearly.

A user of the CLI never sees a traceback: known errors print one line (or one line per
workflow issue) to stderr; unexpected ones print a one-line summary and point to
``MMSERVE_DEBUG=1``, which re-raises them with the full traceback.

``pip install mmserve`` is the client and the commands that talk to a server; a command that
runs the server side (``serve``, ``build``, ``status``, ``run``/``chat``/``index`` without
``--url``) on such an install says in one line to install the ``server`` extra
(:func:`need_server`, and :func:`friendly` for an import that fails deeper down).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from mmserve.config import PROFILES, AppConfig, profile_path
from mmserve.errors import MmserveError, WorkflowValidationError

P = ParamSpec("P")
R = TypeVar("R")

#: Exit codes: 1 for errors of the work itself, 2 for bad usage (typer's own convention).
EXIT_ERROR = 1
EXIT_USAGE = 2

#: The profile a command uses when given neither ``--config``, ``--profile`` nor
#: ``$MMSERVE_CONFIG``: real models on this machine.
DEFAULT_PROFILE = "local"

#: The ``--config`` option every command shares; "" means :func:`default_config`.
ConfigOption = Annotated[
    str,
    typer.Option(
        "--config",
        "-c",
        help="Your app config (YAML). Default: $MMSERVE_CONFIG, else --profile local.",
    ),
]
#: The ``--profile`` option beside it: a config shipped in the package.
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help=f"A shipped app config instead of --config: {', '.join(PROFILES)} "
        "(tiny runs offline: tiny models, no GPU, no network).",
    ),
]


def default_config() -> str:
    """``$MMSERVE_CONFIG`` if set, else the :data:`DEFAULT_PROFILE` profile's file."""
    return os.environ.get("MMSERVE_CONFIG") or str(profile_path(DEFAULT_PROFILE))


def config_file(config: str = "", profile: str | None = None) -> str:
    """The app config a command uses: ``--config``, ``--profile`` (not both), else
    :func:`default_config`."""
    if config and profile:
        usage_error("use either --config FILE or --profile NAME, not both")
    if profile:
        return str(profile_path(profile))
    return config or default_config()


def load_config(config: str | Path = "", profile: str | None = None) -> AppConfig:
    """The app config of ``--config``/``--profile`` (see :func:`config_file`)."""
    return AppConfig.load(config_file(str(config), profile))


#: How long a command given ``--url`` keeps trying to reach a server that does not answer:
#: a person at a terminal wants to hear at once that nothing answers (a few seconds of
#: reconnecting, not the client's default budget for riding out a proxy restart).
CLI_CONNECT_BUDGET_S = 3.0


#: The packages of the ``server`` extra that the server side imports: a thin install
#: (``pip install mmserve``) has none of them.
SERVER_PACKAGES = ("ray", "torch", "transformers", "diffusers", "lancedb")
#: What to install for them.
SERVER_EXTRA = 'pip install "mmserve[server]"'


def server_extra_line(command: str | None, missing: str) -> str:
    """The one line a server-side command (``command`` as typed, e.g. ``index add``; None
    when not known) prints on an install without the extra."""
    which = f"`mmserve {command}`" if command else "this command"
    return (
        f"error: {which} runs the server side, which needs the server extra "
        f"({missing} is not installed): {SERVER_EXTRA}"
    )


def need_server(command: str) -> None:
    """Exit with :func:`server_extra_line` unless the ``server`` extra is installed: called
    first by the commands (and forms) that run the server side; ``command`` as typed
    (``serve``, ``index add``)."""
    for package in SERVER_PACKAGES:
        if importlib.util.find_spec(package) is None:
            echo_err(server_extra_line(command, package))
            raise typer.Exit(EXIT_ERROR)


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
            package = (getattr(exc, "name", None) or "").partition(".")[0]
            if isinstance(exc, ModuleNotFoundError) and package in SERVER_PACKAGES:
                echo_err(server_extra_line(None, package))
                raise typer.Exit(EXIT_ERROR) from None
            fail(exc)

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


__all__ = [
    "CLI_CONNECT_BUDGET_S",
    "DEFAULT_PROFILE",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "SERVER_EXTRA",
    "SERVER_PACKAGES",
    "ConfigOption",
    "ProfileOption",
    "config_file",
    "default_config",
    "echo_err",
    "fail",
    "friendly",
    "load_config",
    "need_server",
    "print_json",
    "server_extra_line",
    "usage_error",
]
