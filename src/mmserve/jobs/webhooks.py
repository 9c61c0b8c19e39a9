"""Webhooks: when a job finishes, its final record is POSTed to the URL it named.

The call is signed: header ``x-mmserve-signature: t=<unix time>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the secret in ``$<jobs.webhook_secret_env>``, of ``"<t>." + body``
(docs/jobs.md shows the check). It is retried with exponential backoff (1 s, 2 s, 4 s, ... at
most a minute apart) for :data:`DELIVERY_WINDOW_S`, then given up (logged).

A webhook is a request the server makes on a caller's behalf, so only hosts listed in
``jobs.webhook_allow`` (``host`` or ``host:port``) may be called: a URL naming any other host is
refused at submit (422). A listed *name* must also not resolve to a loopback, link-local or
private address (a cloud's metadata service) unless that address is listed too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from mmserve.config import JobsConfig
from mmserve.errors import WebhookNotAllowedError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-mmserve-signature"
#: How long a webhook is retried, in seconds.
DELIVERY_WINDOW_S = 600.0
_MAX_BACKOFF_S = 60.0


def _listed(host: str, port: int | None, allow: list[str]) -> bool:
    host = host.lower()
    names = {entry.strip().lower() for entry in allow}
    return host in names or (port is not None and f"{host}:{port}" in names)


def check_webhook(url: str, config: JobsConfig) -> str:
    """``url`` when a job may call it (see the module docstring); else a 422 error."""
    try:
        parts = urlsplit(url)
        given_port = parts.port  # raises on a port out of range or not a number
    except ValueError:
        parts, given_port = urlsplit(""), None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookNotAllowedError(
            f"webhook {url[:200]!r} is not an http(s) URL",
            hint="give a URL such as https://hooks.example.com/mmserve",
        )
    port = given_port or (443 if parts.scheme == "https" else 80)
    if not _listed(parts.hostname, port, config.webhook_allow):
        listed = ", ".join(config.webhook_allow) or "none"
        raise WebhookNotAllowedError(
            f"webhook host {parts.hostname!r} is not in jobs.webhook_allow (allowed: {listed})",
            hint="the server's operator lists the hosts webhooks may call in jobs.webhook_allow",
        )
    return url


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved


def _resolves_safely(url: str, config: JobsConfig) -> bool:
    """Whether each address the URL's host resolves to may be called (see the module)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return True  # an address itself, listed (check_webhook)
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, parts.port or None)}
    except OSError:
        return True  # unresolvable now: the call fails and is retried
    return all(
        not _private(str(a)) or _listed(str(a), parts.port, config.webhook_allow) for a in found
    )


def secret_of(config: JobsConfig) -> bytes:
    name = config.webhook_secret_env
    return os.environ.get(name, "").encode() if name else b""


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def deliver(url: str, record: dict[str, Any], config: JobsConfig) -> bool:
    """POST ``record`` to ``url``, signed, retrying with backoff; True once it was taken
    (a 2xx answer)."""
    body = json.dumps(record, separators=(",", ":")).encode()
    if not await asyncio.to_thread(_resolves_safely, url, config):
        logger.warning("webhook %s refused: its host resolves to a private address", url)
        return False
    secret = secret_of(config)
    give_up = time.monotonic() + DELIVERY_WINDOW_S
    backoff = 1.0
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
        while True:
            stamp = int(time.time())
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: signature(secret, body, stamp),
            }
            try:
                answer = await client.post(url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    return True
                why = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + backoff > give_up:
                logger.warning("webhook %s given up: %s", url, why)
                return False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)


__all__ = [
    "DELIVERY_WINDOW_S",
    "SIGNATURE_HEADER",
    "check_webhook",
    "deliver",
    "secret_of",
    "signature",
]
