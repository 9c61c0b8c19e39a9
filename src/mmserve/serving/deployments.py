"""The model deployment: one Serve deployment class that hosts one backend for its roles.

Each replica loads its backend's weights once, in the constructor. Callers (the
:class:`~mmserve.serving.handles.HandleGateway`) send one item per request; ``@serve.batch``
merges concurrent requests into one batched model call of up to ``max_batch_size`` items,
and every item comes back with the size of the batch it rode in and the replica that ran it.

Batching settings arrive through ``user_config`` and :meth:`ModelServer.reconfigure`, so a
new ``user_config`` (``batch.max_size`` / ``batch.wait_ms``) deployed through a Serve config
file (``mmserve build`` then ``serve deploy``) reaches running replicas without restarting
them. (Deploying from code, ``serve.run``, always starts new replicas: Serve gives each
code deployment a fresh version.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import ray
from ray import serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from mmserve.errors import ModelNotConfiguredError
from mmserve.models.base import Answer, EmbeddingSpace, ModelSpec, Role
from mmserve.serving.plan import ModelDeploymentPlan

if TYPE_CHECKING:
    from PIL.Image import Image

T = TypeVar("T")

#: Decorator-time defaults; every replica overrides them from its user_config at start.
_DEFAULT_MAX_BATCH = 8
_DEFAULT_WAIT_S = 0.005


@dataclass(frozen=True)
class Served(Generic[T]):
    """One item's result, the size of the batch it rode in and the replica that ran it."""

    value: T
    batch_size: int
    replica: str


def _replica_id() -> str:
    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # outside a replica (unit use): there is no replica id
        return "local"


class ModelServer:
    """A replica of one model deployment (see the module docstring)."""

    def __init__(self, backend: str, spec: dict[str, Any], roles: list[Role]) -> None:
        # Imported here so that building the app (on the driver) never imports torch.
        from mmserve.models.loader import load_backend

        self._roles = frozenset(roles)
        self._backend: Any = load_backend(backend, ModelSpec.model_validate(spec))
        self._replica = _replica_id()
        self._batch_settings: dict[str, float] = {
            "max_batch_size": _DEFAULT_MAX_BATCH,
            "batch_wait_timeout_s": _DEFAULT_WAIT_S,
        }

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply batching settings live (Serve calls this at start and on config change)."""
        max_size = int(user_config.get("max_batch_size", _DEFAULT_MAX_BATCH))
        wait_s = float(user_config.get("batch_wait_timeout_s", _DEFAULT_WAIT_S))
        for method in (self._embed_images, self._embed_texts, self._caption, self._answer):
            batched: Any = method  # @serve.batch adds the setters to the wrapper
            batched.set_max_batch_size(max_size)
            batched.set_batch_wait_timeout_s(wait_s)
        self._batch_settings = {"max_batch_size": max_size, "batch_wait_timeout_s": wait_s}

    def settings(self) -> dict[str, Any]:
        """This replica's id, node, roles and current batching settings (for diagnostics)."""
        return {
            "replica": self._replica,
            # (only inside Ray: asking the runtime context elsewhere would start Ray)
            "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else "",
            "roles": sorted(self._roles),
            **self._batch_settings,
        }

    def _require(self, role: Role) -> None:
        if role not in self._roles:
            raise ModelNotConfiguredError(
                f"this deployment serves {', '.join(sorted(self._roles))}, not {role!r}"
            )

    async def space(self) -> EmbeddingSpace:
        space: EmbeddingSpace = self._backend.space
        return space

    # -- one item per request; the batched methods below do the work -----------------------

    async def embed_image(self, image: Image) -> Served[Any]:
        self._require("image_encoder")
        result: Served[Any] = await self._embed_images(image)
        return result

    async def embed_text(self, text: str) -> Served[Any]:
        self._require("text_encoder")
        result: Served[Any] = await self._embed_texts(text)
        return result

    async def caption(self, image: Image, prompt: str | None = None) -> Served[str]:
        self._require("captioner")
        result: Served[str] = await self._caption((image, prompt))
        return result

    async def answer(self, image: Image, question: str) -> Served[Answer]:
        self._require("vqa")
        result: Served[Answer] = await self._answer((image, question))
        return result

    async def _run_batch(self, func: Callable[..., Sequence[T]], *args: Any) -> list[Served[T]]:
        # Called on the replica's user-code loop on purpose, as Ray Serve's batching guide
        # does: Ray 2.60's @serve.batch cuts the next batch as soon as its wait expires,
        # even while the previous batch runs, so a model call in a worker thread left the
        # loop free to chop waiting requests into batches of one or two (measured: mean
        # batch 1.3 at concurrency 16). Blocking here lets every request that arrives during
        # the call ride in the next batch. Health checks run on Serve's own loop, not this
        # one (RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD), so they are not held up.
        outputs = func(*args)
        size = len(outputs)
        return [Served(value=output, batch_size=size, replica=self._replica) for output in outputs]

    @serve.batch(max_batch_size=_DEFAULT_MAX_BATCH, batch_wait_timeout_s=_DEFAULT_WAIT_S)
    async def _embed_images(self, images: list[Image]) -> list[Served[Any]]:
        return await self._run_batch(self._backend.embed_images, images)

    @serve.batch(max_batch_size=_DEFAULT_MAX_BATCH, batch_wait_timeout_s=_DEFAULT_WAIT_S)
    async def _embed_texts(self, texts: list[str]) -> list[Served[Any]]:
        return await self._run_batch(self._backend.embed_texts, texts)

    @serve.batch(max_batch_size=_DEFAULT_MAX_BATCH, batch_wait_timeout_s=_DEFAULT_WAIT_S)
    async def _caption(self, pairs: list[tuple[Image, str | None]]) -> list[Served[str]]:
        images = [image for image, _ in pairs]
        prompts = [prompt for _, prompt in pairs]
        # A batch without any prompt takes the backend's unprompted path, as in local mode.
        if all(prompt is None for prompt in prompts):
            return await self._run_batch(self._backend.caption, images)
        return await self._run_batch(self._backend.caption, images, prompts)

    @serve.batch(max_batch_size=_DEFAULT_MAX_BATCH, batch_wait_timeout_s=_DEFAULT_WAIT_S)
    async def _answer(self, pairs: list[tuple[Image, str]]) -> list[Served[Answer]]:
        images = [image for image, _ in pairs]
        questions = [question for _, question in pairs]
        return await self._run_batch(self._backend.answer, images, questions)


def as_deployment(cls: type, name: str, options: dict[str, Any]) -> Deployment:
    """``serve.deployment`` of a class with options (typed: Serve's overloads confuse mypy)."""
    return cast(Deployment, serve.deployment(cls)).options(name=name, **options)


def model_deployment(plan: ModelDeploymentPlan) -> Application:
    """The bound Serve application node of one model deployment plan."""
    deployment = as_deployment(ModelServer, plan.name, plan.options)
    return deployment.bind(plan.backend, plan.spec.model_dump(), list(plan.roles))


__all__ = ["ModelServer", "Served", "as_deployment", "model_deployment"]
