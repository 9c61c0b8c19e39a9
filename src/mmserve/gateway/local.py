"""The in-process model gateway: models loaded in this process (local mode, tests).

Each configured model is loaded on first use (or all at once with :meth:`LocalGateway.warm`)
through :func:`mmserve.models.loader.load_backend`, so entries sharing a backend and source
share one instance. Model calls block, so they run off the event loop, on one thread shared by
every model of the process (:func:`model_thread`): torch models are not safe to call from
several threads at once, and torch on CPU runs a model ~20-25% slower once more than one
thread of the process has run it (all-MiniLM-L6-v2 on 2 cores, ``python -m
benchmarks.suite.torch_threads``: 36-40 ms a call while one thread has run it, 44-50 ms on
either thread after a second one did), which a pool of worker threads (``asyncio.to_thread``)
always ends up doing. Every call is one batch: ``Batched.batch_size`` is the number of items
passed in.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from mmserve.config import AppConfig
from mmserve.errors import ConfigError, InputError, ModelNotConfiguredError
from mmserve.gateway.base import Batched
from mmserve.models.base import ROLE_PROTOCOLS, Answer, EmbeddingSpace, Role, Vectors
from mmserve.models.loader import load_backend
from mmserve.models.sources import absolute_source
from mmserve.registry import Registry, registry

if TYPE_CHECKING:
    from PIL.Image import Image

T = TypeVar("T")

_model_thread: ThreadPoolExecutor | None = None
_model_thread_guard = threading.Lock()


def model_thread() -> ThreadPoolExecutor:
    """The one worker thread that runs every in-process model call (see the module doc)."""
    global _model_thread
    with _model_thread_guard:
        if _model_thread is None:
            _model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmserve-model")
        return _model_thread


async def on_model_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` on :func:`model_thread` without blocking the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(model_thread(), functools.partial(func, *args))


class LocalGateway:
    """:class:`~mmserve.gateway.base.ModelGateway` over models loaded in this process."""

    def __init__(self, config: AppConfig, *, registry: Registry = registry) -> None:
        self.config = config
        self._registry = registry

    # -- configuration ----------------------------------------------------------------------

    def model_for(self, role: Role, name: str | None = None) -> str:
        return self.config.model_for(role, name)

    def models(self) -> dict[str, Role]:
        return {name: self.config.role_of(name) for name in self.config.models}

    def backend(self, model: str) -> Any:
        """The loaded backend of the config entry ``model`` (loading it on first use)."""
        entry = self.config.models.get(model)
        if entry is None:
            raise ModelNotConfiguredError(
                f"no model named {model!r} in the config; configured: "
                f"{', '.join(sorted(self.config.models)) or '(none)'}"
            )
        backend_class = self._registry.get("model", entry.backend)
        role = self.config.role_of(model)
        if role not in backend_class.roles:
            raise ConfigError(
                f"model {model!r}: backend {entry.backend!r} does not serve the role {role!r} "
                f"(it serves {', '.join(sorted(backend_class.roles))})",
                hint="pick a backend for that role (`mmserve plugins` lists them)",
            )
        spec = entry.to_spec()
        source = absolute_source(spec.source, self.config.base_dir)
        if source != spec.source:
            spec = spec.model_copy(update={"source": source})
        instance = load_backend(entry.backend, spec, registry=self._registry)
        if not isinstance(instance, ROLE_PROTOCOLS[role]):
            raise ConfigError(
                f"model {model!r}: backend {entry.backend!r} lacks the methods of {role!r}"
            )
        return instance

    def warm(self) -> None:
        """Load every configured model now (e.g. before serving the first request)."""
        for model in self.config.models:
            self.backend(model)

    # -- calls ------------------------------------------------------------------------------

    async def _call(self, role: Role, model: str, method: str, *args: Any) -> Any:
        name = self.model_for(role, model)

        def run() -> Any:
            call: Callable[..., Any] = getattr(self.backend(name), method)
            return call(*args)

        return await on_model_thread(run)

    async def space(self, model: str) -> EmbeddingSpace:
        if model not in self.config.models:
            self.model_for("text_encoder", model)  # raises, listing the configured models
        role = self.config.role_of(model)
        if role not in ("image_encoder", "text_encoder"):
            raise ModelNotConfiguredError(
                f"model {model!r} serves {role!r}, which has no embedding space",
                hint="name an image_encoder or text_encoder model",
            )
        instance = await on_model_thread(self.backend, model)
        space: EmbeddingSpace = instance.space
        return space

    async def embed_images(self, model: str, images: Sequence[Image]) -> Batched[Vectors]:
        vectors: Vectors = await self._call("image_encoder", model, "embed_images", list(images))
        return Batched(items=list(vectors), batch_size=len(images))

    async def embed_texts(self, model: str, texts: Sequence[str]) -> Batched[Vectors]:
        vectors: Vectors = await self._call("text_encoder", model, "embed_texts", list(texts))
        return Batched(items=list(vectors), batch_size=len(texts))

    async def caption(
        self, model: str, images: Sequence[Image], prompts: Sequence[str | None] | None = None
    ) -> Batched[str]:
        if prompts is not None and len(prompts) != len(images):
            raise InputError(f"caption got {len(images)} images but {len(prompts)} prompts")
        wanted = list(prompts) if prompts is not None else None
        texts: list[str] = await self._call("captioner", model, "caption", list(images), wanted)
        return Batched(items=texts, batch_size=len(images))

    async def answer(
        self, model: str, images: Sequence[Image], questions: Sequence[str]
    ) -> Batched[Answer]:
        if len(questions) != len(images):
            raise InputError(f"answer got {len(images)} images but {len(questions)} questions")
        answers: list[Answer] = await self._call(
            "vqa", model, "answer", list(images), list(questions)
        )
        return Batched(items=answers, batch_size=len(images))


__all__ = ["LocalGateway", "model_thread", "on_model_thread"]
