"""The web page: static files shipped in the package (``mmserve/http/web``), served at ``/``.

Plain HTML, CSS and JavaScript modules, no build step and nothing fetched from elsewhere: the
page calls the same HTTP API as any client (with the API key a person types in, kept in the
tab's session storage). The files hold no secret, so :class:`~mmserve.http.middleware.guard.Guard`
serves them without a key; every API call the page makes still needs it. ``server.web: false``
leaves the routes out.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException, Response

from mmserve.http.middleware.guard import WEB_PREFIX

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_FILE_NAME = re.compile(r"^[a-z0-9_-]+\.[a-z]+$")
#: No third-party origin at all; images come as data: or blob: URLs made by the page.
_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def web_folder() -> Traversable:
    """The folder of the page's files inside the installed package."""
    return files("mmserve.http").joinpath("web")


def _answer(name: str) -> Response:
    suffix = name[name.rfind(".") :]
    path = web_folder().joinpath(name)
    if not _FILE_NAME.match(name) or suffix not in _TYPES or not path.is_file():
        # the app's 404 handler answers it in the error shape, like any unknown path
        raise HTTPException(status_code=404)
    return Response(
        content=path.read_bytes(),
        media_type=_TYPES[suffix],
        headers={
            "cache-control": "no-cache",
            "content-security-policy": _POLICY,
            "x-content-type-options": "nosniff",
        },
    )


def web_routes() -> APIRouter:
    """``GET /`` (the page) and ``GET /web/{file}`` (its scripts and styles)."""
    router = APIRouter(include_in_schema=False)

    @router.api_route("/", methods=["GET", "HEAD"])
    async def page() -> Response:
        return _answer("index.html")

    @router.api_route(WEB_PREFIX + "{name}", methods=["GET", "HEAD"])
    async def web_file(name: str) -> Response:
        return _answer(name)

    return router


__all__ = ["web_folder", "web_routes"]
