"""Settings: every default of the engine in one place, overridable by a TOML file and the environment.

Precedence, lowest first: the defaults below, the Redis of a running ``orchestrator dev`` (its
address, recorded in ``dev_stack_path()``, is the default ``redis_url`` while that process lives),
the TOML file named by ``ORCH_CONFIG`` (keys as the field names, e.g. ``redis_url = "redis://..."``),
environment variables (``REDIS_URL`` and ``ORCH_<FIELD>`` in upper case), then keyword arguments given
in code. ``config/orchestrator.toml`` documents each one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

_URL_SETTINGS = ("redis_url", "broker_url")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for every message and log that names a URL).

    Read as text, not with ``urllib``: a password holding ``/``, ``#`` or ``?`` (not percent-encoded)
    makes ``urlsplit`` end the authority early and find no password at all. Everything before the
    last ``@`` is the user information, so such a password is hidden too."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}:***@{host}" if colon else f"{scheme}://***@{host}"


def url_problem(url: str) -> str | None:
    """Why a Redis URL cannot be used as written (a password with unencoded ``/ # ?``), or None."""
    _, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo = rest.rpartition("@")[0]
        unsafe = sorted({c for c in "/#?" if c in userinfo})
        if unsafe:
            return (f"its user or password holds {' '.join(repr(c) for c in unsafe)}, which end a URL's "
                    "authority: percent-encode them ('/' is %2F, '#' is %23, '?' is %3F)")
    return None


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    broker_url: str | None = None  # Celery broker; defaults to redis_url
    key_prefix: str = "orch"
    # The store's shard count (store/keys.py), fixed for its life: the first process records it in
    # the store (16 when unset), and a process configured with another count is refused. Unset:
    # use the store's. On Redis Cluster, a few shards per master (docs/operations.md, "Shards").
    shards: int | None = None
    app_id: str = "default"
    concurrency: int = 2
    # Kombu's Redis transport redelivers an unacknowledged message after this many seconds; it must
    # exceed the longest activity, or a still-running activity is delivered to a second worker. The
    # sweeper also publishes again an activity attempt silent this long (not started since dispatch,
    # not finished since it started): kombu loses a message a worker dies holding before its ack record.
    visibility_timeout: int = 3600
    prefetch_multiplier: int = 1
    timer_poll_interval: float = 0.2
    sweep_interval: float = 2.0
    # A step or publish still unfinished this long after it was due is taken over by a sweeper.
    stale_after: float = 15.0
    # Worker liveness (worker/liveness.py): every worker process heartbeats this often, and one
    # silent for process_expiry is dead: any pool's sweeper then publishes again the work it held
    # and puts its broker messages back, whatever visibility_timeout is.
    heartbeat_interval: float = 2.0
    process_expiry: float = 10.0
    # Poison protection: an activity attempt (or a step) whose process died holding it is run again
    # this many times as the same attempt; lost once more, it counts as a failed attempt
    # (ActivityWorkerLostError, then the retry policy decides) or fails its instance (a step:
    # StepWorkerLostError).
    lost_attempt_retries: int = 1
    # A workflow step (the workflow code between two yields) running longer than this (5 x as long
    # blocked in a call) is stopped and its instance failed with WorkflowStepDeadlineError (Temporal's
    # deadlock detector); 0 turns it off.
    step_deadline: float = 2.0
    # Strict mode: workflow code calling datetime.now(), time.time() or random fails its instance with
    # NonDeterminismError instead of only logging a warning.
    strict_determinism: bool = False
    # SIGTERM (a deploy): running work gets this long to finish, then what is left is handed back.
    shutdown_grace: float = 30.0
    inline_steps: bool = True
    # How long a step or an activity's delivery keeps retrying in place while Redis is unreachable,
    # refusing writes (OOM) or read-only (a failover), before its Celery message is retried instead.
    redis_retry_seconds: float = 60.0
    # Replayed workflows each worker process keeps between steps, so a step replays only the
    # history recorded since (0 turns the cache off: every step replays from the start).
    replay_cache_size: int = 1000
    # Wide fan-outs (worker/activities.py): a step scheduling more than fanout_parallelism activities
    # for one app sends them as fanout_parallelism messages (more if needed to keep at most
    # activity_batch_size per message); a batch running past message_budget_seconds requeues the rest
    # singly. activity_batch_size = 1 sends one message per activity. Needs the broker to be the
    # store's Redis, and is off when activity time limits are set (Celery limits a whole message).
    activity_batch_size: int = 32
    fanout_parallelism: int = 128
    message_budget_seconds: float = 0.5
    # Eager activities (worker/activities.py): when an activity's result wakes its workflow here and
    # that step schedules exactly one activity this pool serves, it runs here at once instead of
    # being queued, up to this many in a row per message and within message_budget_seconds.
    # 0 turns it off. Off, like batching, when activity time limits are set.
    eager_activity_hops: int = 16
    max_payload_bytes: int = 1024 * 1024
    # Client semantics, Dapr's by default (docs/dapr-compat.md). reuse_finished_ids: schedule_new_workflow
    # with the id of a finished instance starts a new run under it (reuse_id_policy="error" refuses).
    # strict_events: raising an event to a finished instance raises InstanceFinishedError instead of
    # being discarded. strict_start: starting a workflow no pool has announced raises
    # WorkflowNotRegisteredError instead of queueing it (PENDING) for the app until a pool serves it.
    reuse_finished_ids: bool = True
    strict_events: bool = False
    strict_start: bool = False
    # A warning (log + orchestrator_history_warnings_total) each time an instance's history passes a
    # multiple of this many events; 0 turns it off. Long-lived instances should continue_as_new.
    history_warn_events: int = 10_000
    # Celery time limits of the activity task, protecting the worker itself (prefork pools): past the
    # soft limit the activity gets SoftTimeLimitExceeded (a failure, retried per policy); past the hard
    # limit the worker process is killed and the attempt fails with TimeLimitExceeded. None = no limit.
    activity_soft_time_limit: float | None = None
    activity_time_limit: float | None = None
    # Circuit breaker (worker/circuit.py): after this many consecutive failures of one activity, its
    # attempts are refused for circuit_cooldown seconds. 0 disables it.
    circuit_failure_threshold: int = 0
    circuit_cooldown: float = 30.0
    # HTTP API (`orchestrator serve`). Bound anywhere but loopback, it refuses to start without a token.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_token: str | None = None  # clients send `Authorization: Bearer <token>`
    # Bound to loopback, the API answers only Host localhost / 127.0.0.1 / [::1] (DNS rebinding):
    # a reverse proxy that forwards another Host lists it here (comma-separated names).
    api_allowed_hosts: str = ""
    log_format: str = "text"  # "text" or "json" (one JSON object per line)
    # OpenTelemetry spans of steps, activity attempts, timers and children (worker/tracing.py); needs
    # the ``otel`` extra. Off by default.
    tracing: bool = False

    # Kombu transport options of the broker, merged over the engine's own (visibility_timeout and
    # its restore scan): e.g. {"master_name": "mymaster"} for a Sentinel broker (sentinel://...),
    # {"confirm_publish": true} for RabbitMQ. In the environment: ORCH_BROKER_TRANSPORT_OPTIONS as JSON.
    broker_transport_options: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    # RabbitMQ queue type of the app queues: "classic" or "quorum" (replicated; Celery then turns
    # off global QoS). Ignored by Redis brokers.
    broker_queue_type: str = "classic"

    # Retention (worker/retention.py): a finished top-level instance and its children are purged
    # this long after it finished (0 keeps them forever); per workflow with
    # WorkflowClient.set_workflow_retention. With retention_export_dir, each history is exported
    # there (<id>.json) before its purge.
    retention_seconds: float = 7 * 24 * 3600.0
    retention_export_dir: str | None = None

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_batch_size(self) -> int:
        """``activity_batch_size``, or 1 when Celery time limits apply (they would limit a whole batch)."""
        limited = self.activity_time_limit is not None or self.activity_soft_time_limit is not None
        return 1 if limited else max(1, self.activity_batch_size)

    @property
    def effective_eager_hops(self) -> int:
        """``eager_activity_hops``, or 0 when Celery time limits apply (they would limit the whole chain)."""
        limited = self.activity_time_limit is not None or self.activity_soft_time_limit is not None
        return 0 if limited else max(0, self.eager_activity_hops)

    @property
    def broker_is_store(self) -> bool:
        """The broker is the store's own Redis (the same URL): scripts may push task messages onto its queues."""
        return self.broker == self.redis_url

    def __post_init__(self) -> None:
        for name in _URL_SETTINGS:
            url = getattr(self, name)
            problem = url_problem(url) if isinstance(url, str) else None
            if problem is not None:
                raise ValueError(f"setting {name} {redact_url(url)!r} cannot be used: {problem}")

        store_scheme = self.redis_url.partition("://")[0].lower() if isinstance(self.redis_url, str) else ""
        if store_scheme.endswith("+cluster") and self.broker_url is None:
            raise ValueError(f"setting redis_url {redact_url(self.redis_url)!r} is a Redis Cluster, which cannot be "
                             "the Celery broker (kombu has no cluster transport): set broker_url (ORCH_BROKER_URL) to "
                             "a "
                             "Redis, a Sentinel service or RabbitMQ")
        if store_scheme in ("redis+sentinel", "rediss+sentinel", "sentinel") and self.broker_url is None:
            raise ValueError(f"setting redis_url {redact_url(self.redis_url)!r} names a Sentinel service, which Celery "
                             "reaches with its own URL: set broker_url (ORCH_BROKER_URL), e.g. "
                             "'sentinel://host:26379' with broker_transport_options = {master_name = \"<service>\"}")
        if self.broker_queue_type not in ("classic", "quorum"):
            raise ValueError(f"setting broker_queue_type must be 'classic' or 'quorum', got {self.broker_queue_type!r}")
        if not isinstance(self.broker_transport_options, dict):
            raise ValueError("setting broker_transport_options must be a table (a JSON object in the environment), "
                             f"got {self.broker_transport_options!r}")
        if not isinstance(self.retention_seconds, (int, float)) or self.retention_seconds < 0:
            raise ValueError(f"setting retention_seconds must be 0 (keep forever) or a positive number of seconds, "
                             f"got {self.retention_seconds!r}")
        if self.shards is not None and (isinstance(self.shards, bool) or not isinstance(self.shards, int)
                                        or self.shards < 1):
            raise ValueError(f"setting shards must be a positive integer or unset, got {self.shards!r}")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _coerce(field_type: Any, raw: str, name: str) -> Any:
    kind = str(field_type)
    if kind.startswith("dict"):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f"setting {name} has invalid value {raw!r} (expected a JSON object)") from None
        return value
    try:
        if "bool" in kind:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except ValueError:
        raise ValueError(f"setting {name} has invalid value {raw!r} (expected {kind})") from None
    return raw


def dev_stack_path() -> Path:
    """Where ``orchestrator dev`` records its embedded Redis: ``$XDG_STATE_HOME/orchestrator/dev-stack.json``
    (``~/.local/state/...`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "orchestrator" / "dev-stack.json"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


def read_dev_stack() -> dict[str, Any] | None:
    """The running dev stack's record (``redis_url``, ``pid``, ``data_dir``), None when there is
    none or the process that wrote it is gone."""
    try:
        record = json.loads(dev_stack_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("redis_url"), str) or not _alive(record.get("pid")):
        return None
    return record


def write_dev_stack(redis_url: str, data_dir: str) -> Path:
    """Record this process's dev Redis for the other terminals' CLI and ``orchestrator worker``."""
    path = dev_stack_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"redis_url": redis_url, "pid": os.getpid(), "data_dir": os.path.abspath(data_dir)}))
    tmp.replace(path)
    return path


def clear_dev_stack() -> None:
    """Remove the record if it is this process's."""
    path = dev_stack_path()
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def load_settings(**overrides: Any) -> Settings:
    """Defaults < a running dev stack's Redis < ORCH_CONFIG file < environment < ``overrides``
    (None values are ignored)."""
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(Settings)}
    if not os.environ.get("REDIS_URL"):
        dev = read_dev_stack()
        if dev is not None:
            values["redis_url"] = dev["redis_url"]
    path = os.environ.get("ORCH_CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        values.update(data)
    if os.environ.get("REDIS_URL"):
        values["redis_url"] = os.environ["REDIS_URL"]
    for name, f in known.items():
        env = os.environ.get(f"ORCH_{name.upper()}")
        if env is not None:
            values[name] = _coerce(f.type, env, f"ORCH_{name.upper()}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
