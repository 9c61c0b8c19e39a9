"""The app config: which models serve which roles, how each scales, the store, the workflows.

Read from ``deployments/*.yaml``. Every section rejects unknown keys; relative paths are
resolved against the config file's folder, so a config works from any working directory.
A config that leaves out ``workflows:`` or ``agents:`` loads the ``workflows/`` or
``agents/`` folder beside the config file when there is one, and none otherwise: a config
loads only what it names or what sits next to it.

The profiles ship inside the package (``mmserve/profiles/``: :data:`PROFILES`, with the
shipped ``workflows/`` and ``agents/`` beside them; the repository's ``deployments/*.yaml``,
``workflows/`` and ``agents/`` link there), so ``--profile tiny`` works from any directory
of any install: :func:`profile_path`.

Example (the ``tiny`` profile, deployments/tiny.yaml)::

    models:
      image_encoder: {backend: clip, source: tiny://clip}
      text_encoder:  {backend: clip, source: tiny://clip}
      captioner:     {backend: blip-caption, source: tiny://blip-caption, replicas: 2}
      vqa:           {backend: blip-vqa, source: tiny://blip-vqa}
    store: {kind: lancedb, path: ~/.mmserve/tiny}
    workflows: [workflows]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmserve.byte_sizes import parse_bytes
from mmserve.errors import ConfigError, ModelNotConfiguredError
from mmserve.models.spec import ModelSpec
from mmserve.registry import registry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchConfig(_Strict):
    """Dynamic batching of one model deployment (Ray Serve ``@serve.batch``)."""

    max_size: int = Field(default=8, ge=1, le=1024, description="Largest batch.")
    wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=10_000,
        description="How long a batch waits to fill up. 0 suits most models: requests that "
        "arrive while a batch runs ride in the next one anyway; a wait only adds latency.",
    )


class AutoscalingConfig(_Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=4, ge=1)
    target_ongoing_requests: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        return self


class ModelConfig(ModelSpec):
    """One model: what to load (the :class:`ModelSpec` fields) and how to serve it."""

    role: str | None = Field(
        default=None,
        description="Role served (any registered role: `mmserve plugins` lists them); "
        "defaults to the key when the key is a role name.",
    )
    backend: str = Field(description="Model plugin name: clip, sentence, blip-caption, ...")
    replicas: int | None = Field(default=None, ge=1, description="Fixed replica count.")
    autoscaling: AutoscalingConfig | None = None
    cpus: float = Field(default=1.0, ge=0, description="CPUs per replica.")
    gpus: float = Field(default=0.0, ge=0, description="GPUs per replica; fractions allowed.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources per replica (node placement)."
    )
    memory: int | None = Field(
        default=None,
        description="Memory each replica reserves on its node (Ray's `memory` resource; "
        "4Gi, 512Mi or bytes): Ray places it only where that much is unreserved. Unset: none.",
    )
    max_ongoing_requests: int = Field(default=16, ge=1)
    max_queued_requests: int = Field(
        default=64,
        ge=-1,
        description="Calls waiting for a replica of this model, per ingress replica; beyond "
        "it the run is answered 503 `overloaded` with Retry-After at once (-1: unbounded).",
    )
    batch: BatchConfig = Field(default_factory=BatchConfig)
    placement: Literal["deployment", "ingress"] = Field(
        default="deployment",
        description="'deployment': a Ray Serve deployment of its own, scaled on its own "
        "(replicas / autoscaling). 'ingress': loaded in every ingress replica and called there "
        "without a hop (still batched), scaled with the ingress (server.ingress_replicas), whose "
        "replicas then ask for this model's cpus, gpus and resources too; for models cheaper "
        "than a hop.",
    )
    warmup: bool = Field(
        default=True,
        description="Served: each replica runs its role's sample items (batch sizes 1 and "
        "batch.max_size, at most 8) before it reports ready, so the first request is not "
        "slow; false: ready as soon as loaded. Models differing only here share a deployment. "
        "Default false for the `openai` backend (no requests to the endpoint at start).",
    )

    @field_validator("memory", mode="before")
    @classmethod
    def _memory_bytes(cls, value: Any) -> Any:
        return None if value is None else parse_bytes(value)

    @model_validator(mode="after")
    def _scaling(self) -> Self:
        if self.placement == "ingress":
            from_ingress = {
                "replicas": "server.ingress_replicas",
                "autoscaling": "server.ingress_replicas",
                "max_queued_requests": "server.max_queued_requests",
            }
            # by value, not by fields set: the ingress rebuilds the config from a full dump
            fields = type(self).model_fields
            defaults = {key: fields[key].default for key in from_ingress}
            misplaced = [key for key in from_ingress if getattr(self, key) != defaults[key]]
            if misplaced:
                raise ValueError(
                    f"placement 'ingress' takes {', '.join(misplaced)} from the ingress "
                    f"({', '.join(sorted({from_ingress[key] for key in misplaced}))}): remove "
                    f"{'it' if len(misplaced) == 1 else 'them'} from the model entry, or use "
                    "placement 'deployment' to scale the model on its own"
                )
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("set either 'replicas' or 'autoscaling', not both")
        if self.max_ongoing_requests < self.batch.max_size:
            raise ValueError(
                f"max_ongoing_requests ({self.max_ongoing_requests}) must be >= batch.max_size "
                f"({self.batch.max_size}), or batches can never fill"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _remote_warmup(cls, data: Any) -> Any:
        """A remote endpoint needs no warming, and warm-up would send it requests at every
        replica start: the ``openai`` backend warms up only when the entry says so."""
        if isinstance(data, dict) and data.get("backend") == "openai" and "warmup" not in data:
            return {**data, "warmup": False}
        return data

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.backend == "openai" and self.endpoint is None:
            raise ValueError(
                "the 'openai' backend needs 'endpoint: {model: <name at the endpoint>}' "
                "(and api_key_env: <VARIABLE> when the endpoint wants a key)"
            )
        return self

    def to_spec(self) -> ModelSpec:
        return ModelSpec(**{name: getattr(self, name) for name in ModelSpec.model_fields})


class StoreConfig(_Strict):
    kind: str = Field(default="lancedb", description="Store plugin name: lancedb, memory, ...")
    path: str = Field(
        default=".mmserve/store",
        description="Data folder (relative to the config file) or an object-store URI.",
    )
    options: dict[str, Any] = Field(default_factory=dict)
    replicas: int = Field(
        default=0,
        ge=0,
        description="Served: reader replicas beside the one writer. They open the same store "
        "location and answer searches, gets and listings; writes stay on the writer. 0: the "
        "writer answers everything (docs/cluster.md, 'The store on a cluster').",
    )
    autoscaling: AutoscalingConfig | None = Field(
        default=None, description="Served: scale the reader replicas instead of 'replicas'."
    )

    @model_validator(mode="after")
    def _readers(self) -> Self:
        if self.replicas and self.autoscaling is not None:
            raise ValueError("set either 'replicas' or 'autoscaling' for the store, not both")
        if self.autoscaling is not None and self.autoscaling.min_replicas < 1:
            raise ValueError(
                "store.autoscaling.min_replicas must be at least 1: with no reader, every "
                "read would wait for one to start (replicas: 0 runs no readers at all)"
            )
        if self.kind == "memory" and self.readers:
            raise ValueError(
                "the memory store lives inside one process, so reader replicas would each "
                "see an empty store of their own: use kind lancedb (or a store server) for "
                "reader replicas"
            )
        return self

    @property
    def readers(self) -> bool:
        """Whether the served app runs reader replicas beside the writer."""
        return bool(self.replicas) or self.autoscaling is not None


class LimitsConfig(_Strict):
    """What one HTTP request may carry; over a limit the API answers 413 naming it."""

    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest request body, in bytes."
    )
    max_image_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Largest image (width x height), checked before decoding.",
    )
    max_image_side: int = Field(
        default=16_384, ge=1, description="Longest side of an image, checked before decoding."
    )
    max_image_aspect_ratio: float = Field(
        default=20.0,
        ge=1,
        description="Most extreme shape of an image (long side / short side), checked before "
        "decoding: processors scale the short side up, so a thin strip costs like a huge image.",
    )
    max_request_pixels: int = Field(
        default=100_000_000,
        ge=1,
        description="Pixels of all images of one request together, read from their headers "
        "before any is decoded.",
    )
    max_text_chars: int = Field(default=20_000, ge=1, description="Longest text input.")
    max_items: int = Field(
        default=256, ge=1, description="Most items in one list input or one collection add."
    )
    max_json_depth: int = Field(
        default=32,
        ge=2,
        le=200,  # the walks over a checked value recurse per level; Python allows ~1000 frames
        description="Deepest nesting of arrays and objects in a JSON body or multipart field, "
        "checked while parsing.",
    )
    max_json_nodes: int = Field(
        default=100_000,
        ge=1,
        description="Most values (arrays, objects, strings, numbers, ...) in one JSON body or "
        "in the JSON fields of one multipart upload, checked while parsing.",
    )


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    request_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Deadline of one request; the x-mmserve-timeout-s header may shorten it.",
    )
    ingress_replicas: int = Field(default=1, ge=1)
    max_ongoing_requests: int = Field(
        default=100, ge=1, description="Requests one ingress replica works on at once."
    )
    max_queued_requests: int = Field(
        default=1000,
        ge=-1,
        description="Requests waiting for an ingress replica; beyond it the server answers "
        "503 with Retry-After at once (-1: unbounded).",
    )
    retry_after_s: int = Field(
        default=1, ge=0, description="Retry-After of 503 answers (overload), in seconds."
    )
    transport: Literal["grpc", "actor"] = Field(
        default="grpc",
        description="How requests travel between Serve's proxy, the ingress and the model "
        "and store deployments: 'grpc' (Ray Serve's gRPC data plane) or 'actor' (Ray actor "
        "calls through the object store).",
    )
    proxy: Literal["serve", "haproxy"] = Field(
        default="serve",
        description="What answers on host:port: 'serve' (Ray Serve's Python HTTP proxy, "
        "which calls an ingress replica) or 'haproxy' (Ray Serve's HAProxy ingress: HAProxy "
        "forwards each request straight to an ingress replica's own HTTP server, one process "
        "hop fewer). Set for the Ray that mmserve serve starts; on a cluster export "
        "RAY_SERVE_ENABLE_HA_PROXY=1 before ray start.",
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    web: bool = Field(
        default=True,
        description="Serve the web page (run workflows, browse collections, chat) at / and "
        "its files under /web/; false leaves only the API.",
    )


class JobsConfig(_Strict):
    """Asynchronous runs (``POST /v1/workflows/{name}/jobs``): docs/jobs.md."""

    enabled: bool = Field(
        default=True, description="Serve the job API and run a job worker deployment."
    )
    broker: str = Field(
        default="sqlite",
        description="'sqlite': the embedded broker and job store, files in 'path' (one "
        "machine); or a Redis URL (redis://host:6379/0), for a cluster.",
    )
    queue: str = Field(
        default="mmserve-jobs",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Name of the queue, and with Redis the prefix of the job store's keys: "
        "apps sharing one Redis need names of their own.",
    )
    path: str | None = Field(
        default=None,
        description="Folder of the jobs' files (inputs, outputs) and, with the sqlite broker, "
        "its database files. Default: beside the store, '<store path>-jobs'. On a cluster it "
        "must be a folder every node sees.",
    )
    retention_s: float = Field(
        default=86_400.0, gt=0, description="Finished jobs are kept this long, then expire."
    )
    timeout_s: float = Field(
        default=3_600.0, gt=0, description="Deadline of one job's run (the header may shorten it)."
    )
    replicas: int = Field(default=1, ge=1, description="Job worker replicas.")
    autoscaling: AutoscalingConfig | None = Field(
        default=None, description="Scale the job workers instead of 'replicas'."
    )
    max_concurrent_jobs: int = Field(
        default=4, ge=1, description="Jobs one worker replica runs at once."
    )
    cpus: float = Field(default=0.1, ge=0, description="CPUs reserved per worker replica.")
    lease_s: float = Field(
        default=10.0,
        gt=0,
        description="A worker that has not shown it is alive for this long is taken for dead: "
        "its jobs are queued again (or fail as 'interrupted').",
    )
    visibility_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Redis broker: a received message not acknowledged within this time is "
        "delivered again (a job whose worker died comes back sooner, after lease_s).",
    )
    webhook_secret_env: str | None = Field(
        default=None,
        description="Environment variable holding the secret that signs webhook calls.",
    )
    webhook_allow: list[str] = Field(
        default_factory=list,
        description="Hosts (or host:port) a job's webhook may call; none: webhooks refused.",
    )

    @model_validator(mode="after")
    def _broker(self) -> Self:
        if self.broker != "sqlite" and not self.broker.startswith(("redis://", "rediss://")):
            raise ValueError(f"jobs.broker {self.broker!r}: expected 'sqlite' or a redis:// URL")
        if self.replicas != 1 and self.autoscaling is not None:
            raise ValueError("set either 'replicas' or 'autoscaling' for jobs, not both")
        return self


class AppConfig(_Strict):
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    store: StoreConfig = Field(default_factory=StoreConfig)
    workflows: list[str] = Field(
        default_factory=list,
        description="Workflow files or folders, relative to the config file (missing ones are "
        "skipped). Left out: the `workflows/` folder beside the config file if there is one, "
        "else none.",
    )
    agents: list[str] = Field(
        default_factory=list,
        description="Agent files or folders, relative to the config file (missing ones are "
        "skipped). Left out: the `agents/` folder beside the config file if there is one, "
        "else none; `[]` loads none.",
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)
    #: Folder the config file lives in; relative paths resolve against it.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _roles(cls, data: Any) -> Any:
        """A model keyed by a role name serves that role unless it says otherwise."""
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            return data
        roles = registry.names("role")
        models = {}
        for key, model in data["models"].items():
            if isinstance(model, dict) and model.get("role") is None:
                if key not in roles:
                    raise ValueError(
                        f"model {key!r} needs a 'role' (one of {', '.join(roles)}); it can be "
                        "left out only when the model's key is itself a role name"
                    )
                model = {**model, "role": key}
            if isinstance(model, dict) and model["role"] not in roles:
                raise ValueError(
                    f"model {key!r}: unknown role {model['role']!r}; registered roles: "
                    f"{', '.join(roles)} (a plugin package can add roles: `mmserve plugins`)"
                )
            models[key] = model
        return {**data, "models": models}

    @model_validator(mode="after")
    def _ingress_batches(self) -> Self:
        """A model in the ingress batches the ingress's own requests: they must fit."""
        for key, model in self.models.items():
            limit = self.server.max_ongoing_requests
            if model.placement == "ingress" and model.batch.max_size > limit:
                raise ValueError(
                    f"model {key!r} (placement 'ingress'): batch.max_size "
                    f"({model.batch.max_size}) must be <= server.max_ongoing_requests ({limit}), "
                    "or its batches can never fill"
                )
        return self

    # -- lookups ----------------------------------------------------------------------------

    def role_of(self, name: str) -> str:
        role = self.models[name].role
        assert role is not None  # set by the validator
        return role

    def model_for(self, role: str, name: str | None = None) -> str:
        """Config name of the model serving ``role``: ``name`` if given, else the default
        (the model keyed by the role's name, else the only model of that role)."""
        if name is not None:
            if name not in self.models:
                raise ModelNotConfiguredError(
                    f"no model named {name!r} in the config; configured: "
                    f"{', '.join(sorted(self.models)) or '(none)'}"
                )
            if self.role_of(name) != role:
                raise ModelNotConfiguredError(
                    f"model {name!r} serves {self.role_of(name)!r}, not {role!r}"
                )
            return name
        if role in self.models:
            return role
        candidates = [key for key in self.models if self.role_of(key) == role]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise ModelNotConfiguredError(
                f"the config has no model for the role {role!r}",
                hint=f"add a '{role}:' entry under 'models:' in the app config",
            )
        raise ModelNotConfiguredError(
            f"several models serve {role!r} ({', '.join(candidates)}) and none is the default",
            hint=f"name one of them '{role}', or pick one with 'model:' in the step",
        )

    def resolve_path(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    def workflow_paths(self) -> list[Path]:
        return [self.resolve_path(p) for p in self.workflows]

    def agent_paths(self) -> list[Path]:
        return [self.resolve_path(p) for p in self.agents]

    def store_location(self) -> str:
        """The store path resolved against the config folder; URIs (s3://...) pass through."""
        if "://" in self.store.path:
            return self.store.path
        return str(self.resolve_path(self.store.path))

    def jobs_location(self) -> Path:
        """The jobs folder: ``jobs.path`` resolved, else ``<store path>-jobs`` beside the
        store (a store at a URI needs ``jobs.path``)."""
        if self.jobs.path is not None:
            return self.resolve_path(self.jobs.path)
        if "://" in self.store.path:
            raise ConfigError(
                f"the store is at {self.store.path!r}, so the jobs need a folder of their own",
                hint="set jobs.path to a folder every node sees (or jobs.enabled: false)",
            )
        store = self.resolve_path(self.store.path)
        return store.with_name(f"{store.name}-jobs")

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> AppConfig:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read config {str(file)!r}: {exc.strerror or exc}",
                hint="pass an app config with --config FILE, or a shipped one with --profile tiny",
            ) from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: the config must be a mapping at the top level")
        base_dir = file.resolve().parent
        return cls.from_dict(_folders_beside(data, base_dir), base_dir=base_dir, source=str(file))

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, base_dir: Path | None = None, source: str = "<config>"
    ) -> AppConfig:
        """The config ``data`` describes, its relative paths resolved against ``base_dir``
        (default: the working directory). No file, so no folders beside one: left-out
        ``workflows``/``agents`` load none (:meth:`load` fills them in)."""
        try:
            return cls.model_validate({**data, "base_dir": base_dir or Path.cwd()})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"{source}: invalid config: {problems}") from exc


#: The profiles shipped in the package: name -> what it runs.
PROFILES: dict[str, str] = {
    "tiny": "tiny offline models of the real architectures (no GPU, no network)",
    "local": "real models from the Hugging Face hub, on this machine",
    "cluster": "real models on a Ray cluster with GPUs",
}
#: Where the profiles are: this package's ``profiles/`` folder.
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def profile_path(name: str) -> Path:
    """The config file of the shipped profile ``name`` (:data:`PROFILES`)."""
    if name not in PROFILES:
        known = ", ".join(f"{key} ({what})" for key, what in PROFILES.items())
        raise ConfigError(
            f"unknown profile {name!r}; the profiles are: {known}",
            hint="or pass your own app config with --config FILE",
        )
    return PROFILES_DIR / f"{name}.yaml"


#: Keys that, when a config file leaves them out, default to the folder of that name beside
#: the file (``workflows/``, ``agents/``) if it exists, else to nothing.
FOLDERS_BESIDE = ("workflows", "agents")


def _folders_beside(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """``data`` with each key of :data:`FOLDERS_BESIDE` it leaves out set to the folder of
    that name beside the config file, when there is one (else the key stays out: none)."""
    found = {key: [key] for key in FOLDERS_BESIDE if key not in data and (base_dir / key).is_dir()}
    return {**data, **found}


__all__ = [
    "FOLDERS_BESIDE",
    "PROFILES",
    "PROFILES_DIR",
    "AppConfig",
    "AutoscalingConfig",
    "BatchConfig",
    "JobsConfig",
    "LimitsConfig",
    "ModelConfig",
    "ServerConfig",
    "StoreConfig",
    "profile_path",
]
