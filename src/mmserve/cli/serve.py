"""``mmserve serve`` and ``mmserve build``: run the app on Ray Serve, or write its config.

Plain functions with typer-annotated parameters; :mod:`mmserve.cli.main` mounts them as commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mmserve.cli.common import (
    ConfigOption,
    ProfileOption,
    config_file,
    friendly,
    load_config,
    need_server,
    usage_error,
)
from mmserve.config import AppConfig
from mmserve.deploy.capacity import asks_of, fit
from mmserve.deploy.capacity_table import (
    asks_table,
    check_capacity,
    describe_cluster,
    nodes_of_manifest,
    parse_node_specs,
    table,
)
from mmserve.deploy.serve_config import (
    DEFAULT_IMAGE,
    dump_yaml,
    rayservice_manifest,
    serve_config,
)

#: ``--allow-pending`` of ``serve`` and ``build``.
AllowPendingOption = Annotated[
    bool,
    typer.Option(
        "--allow-pending",
        help="When the capacity preflight finds replicas the cluster has no room for, warn "
        "with its table and go on (they stay pending) instead of refusing.",
    ),
]


@friendly
def serve(
    config: ConfigOption = "",
    profile: ProfileOption = None,
    host: Annotated[
        str | None, typer.Option("--host", help="HTTP host (default: the config's server.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", "-p", help="HTTP port (default: server.port).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Join this Ray cluster (e.g. auto, or <head-ip>:6379) instead of starting "
            "an embedded local Ray.",
        ),
    ] = None,
    allow_pending: AllowPendingOption = False,
) -> None:
    """Serve the workflows over HTTP on Ray Serve; Ctrl-C or SIGTERM stops what it started.

    Before deploying, it checks that every replica fits on the cluster's nodes and refuses
    with a table of what does not (docs/cluster.md, "Sizing a cluster")."""
    need_server("serve")
    from mmserve.deploy.session import ServeSession, serve_until_stopped  # deferred: pulls in Ray

    def announce(message: str) -> None:
        typer.echo(message, err=True)

    app_config = load_config(config, profile)
    session = ServeSession(
        app_config,
        host=host,
        port=port,
        address=address,
        allow_pending=allow_pending,
        announce=announce,
    )
    raise typer.Exit(serve_until_stopped(session, announce=announce))


def _config_path_for(config_file: str, app_root: str | None) -> str:
    """Where the cluster finds the config: this machine's path, or the same path relative
    to the repository root (the working directory) under ``app_root``."""
    # absolute, not resolved: a link (deployments/cluster.yaml) keeps the name it was given
    path = Path(os.path.abspath(config_file))
    if app_root is None:
        return str(path)
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        usage_error(
            f"--app-root needs the config inside the working directory; {config_file} is not"
        )
    return f"{app_root.rstrip('/')}/{relative.as_posix()}"


@friendly
def build(
    config: ConfigOption = "",
    profile: ProfileOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here instead of standard output."),
    ] = None,
    kuberay: Annotated[
        bool, typer.Option("--kuberay", help="Write a KubeRay RayService manifest instead.")
    ] = False,
    app_root: Annotated[
        str | None,
        typer.Option(
            "--app-root",
            help="Where this repository lives on the cluster (e.g. /app in the image); the "
            "config path is written relative to it. Default: this machine's absolute path.",
        ),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Container image for --kuberay.")
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node",
            help="A node of the cluster the Serve config is for, to check that it fits: "
            "[count=N,]cpus=C[,gpus=G][,memory=32Gi][,RESOURCE=AMOUNT]; repeat for other "
            "shapes. With --kuberay the manifest's node groups are checked instead.",
        ),
    ] = None,
    allow_pending: AllowPendingOption = False,
) -> None:
    """Write a Ray Serve config (for `serve run` / `serve deploy`) or a RayService manifest.

    It prints the capacity table (standard error) for the cluster the file is meant for:
    the manifest's node groups, or the --node shapes; a config that does not fit is refused
    (nothing written) unless --allow-pending."""
    need_server("build")
    path = config_file(config, profile)
    app_config = load_config(path)
    # a profile is found in the package installed on each node; a file at its path there
    config_path = None if profile else _config_path_for(path, app_root)
    shown = f"--profile {profile}" if profile else path
    source = f"# Generated by `mmserve build` from {shown}; regenerate, don't edit.\n"
    if kuberay and node:
        usage_error(
            "--node describes a cluster for a Serve config; --kuberay's manifest has its own"
        )
    if kuberay:
        manifest = rayservice_manifest(
            app_config, config_path=config_path, profile=profile, image=image or DEFAULT_IMAGE
        )
        _print_capacity(app_config, manifest=manifest, allow_pending=allow_pending)
        text = dump_yaml(manifest, header=source)
    else:
        _print_capacity(app_config, node=node or [], allow_pending=allow_pending)
        served = serve_config(app_config, config_path=config_path, profile=profile)
        text = dump_yaml(served, header=source)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)


def _print_capacity(
    config: AppConfig,
    *,
    manifest: dict[str, Any] | None = None,
    node: list[str] | None = None,
    allow_pending: bool,
) -> None:
    """The capacity table for the cluster ``build`` writes for (standard error); refuses
    (CapacityError) when replicas would stay pending, unless ``allow_pending``."""
    asks = asks_of(config)
    if manifest is not None:
        nodes, where = nodes_of_manifest(manifest), "the RayService's node groups"
    elif node:
        try:
            nodes, where = parse_node_specs(node), "the --node cluster"
        except ValueError as exc:
            usage_error(str(exc))
    else:
        typer.echo(f"capacity (pass --node to check a cluster):\n{asks_table(asks)}", err=True)
        return
    outcome = fit(asks, nodes)
    warning = check_capacity(outcome, allow_pending=allow_pending, where=where)
    if warning:
        typer.echo(warning, err=True)
    else:
        typer.echo(
            f"capacity on {where} ({describe_cluster(outcome)}):\n{table(outcome)}", err=True
        )


def _standalone() -> None:  # pragma: no cover - `python -m mmserve.cli.serve`
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    app.command()(build)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":  # pragma: no cover
    _standalone()


__all__ = ["build", "serve"]
