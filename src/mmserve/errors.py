"""The one exception hierarchy of mmserve.

Every error a user can cause or meet derives from :class:`MmserveError`. Each carries a
stable machine-readable ``code`` (used by the HTTP API and the CLI), a message that says what
went wrong, and where possible a ``hint`` that says how to fix it. Context is passed as
keyword-only arguments so that callers cannot mix up fields.

This module holds the server's errors. The root :class:`MmserveError`, :class:`InputError` and
:class:`ServingError` (raised by the client too) are defined in :mod:`mmserve.client.errors`,
which must not import the server, and re-exported here; the client's view of an error answer
(``ApiError`` and its subclasses) lives there alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmserve.client.errors import InputError, MmserveError, ServingError

# --- configuration -------------------------------------------------------------------------


class ConfigError(MmserveError):
    """An app config (deployments/*.yaml) is missing, malformed or inconsistent."""

    code = "config_error"


class CapacityError(ConfigError):
    """The config asks for more than the Ray cluster has (the capacity preflight): the
    message, then the table of the deployments whose replicas would stay pending."""

    code = "capacity_error"

    def __init__(self, message: str, *, table: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.table = table

    def __str__(self) -> str:
        hint = f"\n({self.hint})" if self.hint else ""
        return f"{self.message}\n{self.table}{hint}"


# --- plugins -------------------------------------------------------------------------------


class PluginError(MmserveError):
    """Base class for plugin registry problems."""

    code = "plugin_error"


class PluginNotFoundError(PluginError):
    """A lookup named a plugin that is not registered."""

    code = "plugin_not_found"
    status = 404

    def __init__(self, *, kind: str, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"unknown {kind} plugin {name!r}; registered {kind} plugins: {listing}",
            hint="check the spelling, or install the package that provides it "
            "(`mmserve plugins` lists what is loaded)",
        )
        self.kind = kind
        self.name = name
        self.known = sorted(known)


class PluginRegistrationError(PluginError):
    """A plugin does not have the shape its kind requires, or its name is taken."""

    code = "plugin_registration_error"


class PluginLoadError(PluginError):
    """A third-party plugin failed to import or register."""

    code = "plugin_load_error"

    def __init__(self, *, name: str, origin: str, reason: str) -> None:
        super().__init__(f"plugin {name!r} from {origin} failed to load: {reason}")
        self.name = name
        self.origin = origin
        self.reason = reason


# --- workflows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLocation:
    """Where in a workflow file something is (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class WorkflowIssue:
    """One problem found while loading a workflow."""

    location: SourceLocation
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class WorkflowError(MmserveError):
    """Base class for workflow problems."""

    code = "workflow_error"


class WorkflowNotFoundError(WorkflowError):
    """A workflow name or path that does not exist."""

    code = "workflow_not_found"
    status = 404

    def __init__(self, *, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"unknown workflow {name!r}; known workflows: {listing}",
            hint="pass a workflow name from the config, or a path to a .yaml file",
        )
        self.name = name
        self.known = sorted(known)


class WorkflowValidationError(WorkflowError):
    """A workflow file failed the static checks; carries every issue found."""

    code = "workflow_invalid"
    status = 422

    def __init__(self, issues: list[WorkflowIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class AgentNotFoundError(WorkflowError):
    """An agent name that is not loaded."""

    code = "agent_not_found"
    status = 404

    def __init__(self, *, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"unknown agent {name!r}; known agents: {listing}",
            hint="GET /v1/agents lists them; agents come from the config's `agents:` folders",
        )
        self.name = name
        self.known = sorted(known)


class AgentValidationError(WorkflowValidationError):
    """An agent file failed the static checks; carries every issue found."""

    code = "agent_invalid"


class StepFailedError(WorkflowError):
    """A step raised while running; the original error is chained as ``__cause__``."""

    code = "step_failed"

    def __init__(self, *, step: str, uses: str, reason: str) -> None:
        super().__init__(f"step {step!r} ({uses}) failed: {reason}")
        self.step = step
        self.uses = uses
        self.reason = reason


# --- inputs --------------------------------------------------------------------------------


class InputTooLargeError(InputError):
    """An input exceeds a configured limit (bytes, pixels, characters, items)."""

    code = "input_too_large"
    status = 413


class RequestError(MmserveError):
    """An HTTP request is malformed as a whole (a body that is not JSON, a bad header)."""

    code = "invalid_request"
    status = 400


class UnsupportedMediaTypeError(RequestError):
    """A request body of a content type the endpoint does not take."""

    code = "unsupported_media_type"
    status = 415


# --- models --------------------------------------------------------------------------------


class ModelError(MmserveError):
    """Base class for model backend problems."""

    code = "model_error"


class ModelLoadError(ModelError):
    """A model could not be loaded from its source."""

    code = "model_load_error"
    status = 503

    def __init__(self, *, source: str, reason: str, hint: str | None = None) -> None:
        super().__init__(f"could not load model {source!r}: {reason}", hint=hint)
        self.source = source
        self.reason = reason


class ModelNotConfiguredError(ModelError):
    """A step needs a model role or name that the app config does not define."""

    code = "model_not_configured"
    status = 422


class EmbeddingSpaceMismatchError(ModelError):
    """Vectors of two different embedding spaces were compared."""

    code = "embedding_space_mismatch"
    status = 422

    def __init__(self, *, left: str, right: str, hint: str | None = None) -> None:
        super().__init__(
            f"cannot compare vectors of different embedding spaces: {left} vs {right}",
            hint=hint
            or "use encoders that share one joint space (e.g. the same CLIP model for "
            "images and texts)",
        )
        self.left = left
        self.right = right


class RemoteModelError(ModelError):
    """A remote model endpoint (the ``openai`` backend) failed or answered nonsense."""

    code = "remote_model_error"
    status = 502


class RemoteModelTimeoutError(RemoteModelError):
    """A remote model endpoint did not answer within the model entry's ``timeout_s``."""

    code = "remote_model_timeout"
    status = 504


class RemoteModelAuthError(RemoteModelError):
    """A remote model endpoint refused mmserve's API key (its 401 or 403)."""

    code = "remote_model_auth"


class RemoteModelBusyError(RemoteModelError):
    """A remote model endpoint answered 429 (rate limit, overload): worth a retry later."""

    code = "remote_model_busy"
    status = 503


class AgentMaxTurnsError(WorkflowError):
    """An agent was still calling tools when it reached its ``max_turns`` (where the caller
    needs an answer, as OpenAI's chat completions do)."""

    code = "agent_max_turns"
    status = 422


# --- stores --------------------------------------------------------------------------------


class StoreError(MmserveError):
    """Base class for vector store problems."""

    code = "store_error"


class CollectionNotFoundError(StoreError):
    """A collection that does not exist."""

    code = "collection_not_found"
    status = 404

    def __init__(self, *, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"unknown collection {name!r}; existing collections: {listing}",
            hint="create it by indexing items into it (`mmserve index add`)",
        )
        self.name = name
        self.known = sorted(known)


class ItemNotFoundError(StoreError):
    """An item id a collection does not hold, or an image asked of an item that has none."""

    code = "item_not_found"
    status = 404

    def __init__(self, message: str, *, collection: str, item_id: str) -> None:
        super().__init__(message)
        self.collection = collection
        self.item_id = item_id


class StoreFeatureMissingError(StoreError):
    """The configured store plugin lacks an optional operation (e.g. listing items)."""

    code = "not_implemented"
    status = 501


# --- jobs ----------------------------------------------------------------------------------


class JobError(MmserveError):
    """Base class for the job API's errors."""

    code = "job_error"


class JobNotFoundError(JobError):
    """No job has this id (or it expired and was removed)."""

    code = "job_not_found"
    status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"no job {job_id[:64]!r}",
            hint="`GET /v1/jobs` lists the jobs; finished jobs are removed after jobs.retention_s",
        )
        self.job_id = job_id


class JobFinishedError(JobError):
    """Cancelling a job that has already finished."""

    code = "job_finished"
    status = 409


class WebhookNotAllowedError(JobError):
    """A job's webhook names a host outside ``jobs.webhook_allow``, or is not a URL."""

    code = "webhook_not_allowed"
    status = 422


# --- serving -------------------------------------------------------------------------------


class DeadlineExceededError(ServingError):
    """A request ran past its deadline."""

    code = "deadline_exceeded"
    status = 504


class OverloadedError(ServingError):
    """The server is at capacity; retry later."""

    code = "overloaded"
    status = 503


class ServiceUnavailableError(ServingError):
    """A deployment the request needs has no live replica right now (starting, restarting)."""

    code = "unavailable"
    status = 503


class ModelUnavailableError(ServiceUnavailableError):
    """A step's model deployment has no running replica and none will run soon (a replica
    that cannot be scheduled, replicas still starting or failing): answered at once, not at
    the deadline."""

    code = "model_unavailable"

    def __init__(self, *, model: str, deployment: str, kind: str, why: str) -> None:
        where = "" if deployment == model else f" (deployment {deployment!r})"
        super().__init__(
            f"model {model!r}{where} has no running replica: {kind}: {why}",
            hint="`mmserve status` shows its replicas and why they wait; retry after "
            "Retry-After, or fix the cluster or the config (resources, replicas)",
        )
        self.model, self.deployment, self.kind, self.why = model, deployment, kind, why


class NotReadyError(ServiceUnavailableError):
    """``GET /v1/ready``: not every deployment of the app is ready yet (or any more)."""

    code = "not_ready"


__all__ = [
    "AgentMaxTurnsError",
    "AgentNotFoundError",
    "AgentValidationError",
    "CapacityError",
    "CollectionNotFoundError",
    "ConfigError",
    "DeadlineExceededError",
    "EmbeddingSpaceMismatchError",
    "InputError",
    "InputTooLargeError",
    "ItemNotFoundError",
    "JobError",
    "JobFinishedError",
    "JobNotFoundError",
    "MmserveError",
    "ModelError",
    "ModelLoadError",
    "ModelNotConfiguredError",
    "ModelUnavailableError",
    "NotReadyError",
    "OverloadedError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginRegistrationError",
    "RemoteModelAuthError",
    "RemoteModelBusyError",
    "RemoteModelError",
    "RemoteModelTimeoutError",
    "RequestError",
    "ServiceUnavailableError",
    "ServingError",
    "SourceLocation",
    "StepFailedError",
    "StoreError",
    "StoreFeatureMissingError",
    "UnsupportedMediaTypeError",
    "WebhookNotAllowedError",
    "WorkflowError",
    "WorkflowIssue",
    "WorkflowNotFoundError",
    "WorkflowValidationError",
]
