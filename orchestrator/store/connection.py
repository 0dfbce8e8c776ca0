"""The store's Redis connection: errors that say which Redis could not be reached, and why.

redis-py reports a refused connection as "Error 111 connecting to host:port"; a user with several
Redis URLs in play (store, broker, a staging one) then has to guess which setting is wrong, and a
missing or wrong password reads like a network problem. The client built here raises
:class:`RedisUnavailableError` instead, whose message names the URL (password hidden) and the
setting that holds it, and :class:`RedisAuthError` when the server refused the credentials.
Both subclass redis-py's ``ConnectionError``, so every retry path that handles an unreachable
Redis (Celery's autoretry, the worker's background duties) treats them exactly as before.

``rediss://`` (TLS) and user names (Redis 6 ACL users: ``redis://user:password@host``) are
redis-py's own URL features and work unchanged; see docs/security.md. The store URLs:

* ``redis://``, ``rediss://`` (TLS), ``unix:///path/to/redis.sock?db=0``: one Redis;
* ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://`` with TLS): a
  Redis Cluster, found from any of the nodes given (database 0, the only one a cluster has);
* ``redis+sentinel://[user:password@]host:port[,host:port...]/<service>[/db]`` (also
  ``sentinel://``): the master Sentinel names for the service, followed across failovers; the
  credentials are the master's (``?sentinel_password=`` for the Sentinels' own).

A Redis Cluster being resharded answers ASK (the key has moved on) and, for a command on several
keys that the migration has split between two nodes (every script here), TRYAGAIN until the slot's
last key has moved. redis-py follows ASK and MOVED itself, but gives a TRYAGAIN only its request
TTL (16 attempts, about 0.4 s), then raises ``ClusterError("TTL exhausted.")``; a shard's slot takes
longer than that to move. Such a command never ran, so ``NamedRedisCluster`` sends it again, backing
off, for ``slot_migration_patience`` seconds; only then is it raised, as a retryable ``TryAgainError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.client
import redis.cluster
import redis.sentinel

from ..settings import redact_url, url_problem

_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel", "sentinel")

# What callers outside store/ catch, so that none of them imports redis-py:
StoreError = redis.exceptions.RedisError  # any failure of a store call
StoreUnavailable = redis.exceptions.ConnectionError  # the store cannot be reached (RedisUnavailableError is one)
STORE_UNREACHABLE: tuple[type[Exception], ...] = _UNREACHABLE  # unreachable, or a call timed out
# Worth retrying: unreachable, timed out, still loading its data after a restart, refusing writes
# at maxmemory (OOM), or demoted to a read-only replica by a failover: each passes once Redis recovers.
STORE_RETRYABLE: tuple[type[Exception], ...] = (*_UNREACHABLE, redis.exceptions.BusyLoadingError,
                                                redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)


class RedisUnavailableError(redis.exceptions.ConnectionError):
    """Redis could not be reached, or the connection was lost during a call. Deliberately not an
    ``OrchestratorError`` (a refusal by the engine): it is the store being unavailable, which callers
    (HTTP 503, CLI exit 1, Celery retries) handle as redis-py's ``ConnectionError``."""


class RedisAuthError(RedisUnavailableError):
    """Redis refused the connection's credentials (none given, wrong password, unknown ACL user)."""


def describe(url: str, exc: BaseException) -> RedisUnavailableError:
    """The named error for ``exc``, raised while talking to the Redis at ``url``."""
    where = f"Redis at {redact_url(url)} (setting redis_url / REDIS_URL)"
    detail = str(exc).rstrip(".")
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return RedisAuthError(f"{where} refused the credentials: {detail}. Put the user and password in the "
                              "URL: redis://user:password@host:6379/0")
    return RedisUnavailableError(f"{where} is unreachable: {detail}")


def _naming(url: str, call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, an unreachable Redis raised as the named error for ``url``."""
    try:
        return call(*args, **kwargs)
    except RedisUnavailableError:
        raise
    except _UNREACHABLE as exc:
        raise describe(url, exc) from exc
    except redis.exceptions.RedisClusterException as exc:
        # redis-py's cluster client raises this plain Exception (no RedisError, so no StoreError) when
        # it finds no reachable node: the store is unavailable, and callers retry it as such.
        if isinstance(exc.__cause__, _UNREACHABLE) or str(exc).startswith("Redis Cluster cannot be connected"):
            raise describe(url, exc) from exc
        raise


class NamedRedis(redis.Redis):
    """``redis.Redis`` whose connection errors name the server (see the module docstring)."""

    described_url = ""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return _naming(self.described_url, super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> NamedPipeline:
        pipe = NamedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.described_url = self.described_url
        return pipe


class NamedPipeline(redis.client.Pipeline):
    described_url = ""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return _naming(self.described_url, super().execute, raise_on_error)


class NamedRedisCluster(redis.cluster.RedisCluster):
    """``redis.RedisCluster`` whose connection errors name the URL given, and which rides out a slot
    being migrated (see the module docstring)."""

    described_url = ""
    slot_migration_patience = 5.0  # seconds a command on a slot being migrated is sent again

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return _naming(self.described_url, self._through_migrations, *args, **options)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> NamedClusterPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        # redis-py builds its pipeline from a dozen arguments that vary by version: keep them all and
        # only name the errors.
        pipe.__class__ = NamedClusterPipeline
        named = cast(NamedClusterPipeline, pipe)
        named.described_url = self.described_url
        return named

    def _through_migrations(self, *args: Any, **options: Any) -> Any:
        deadline = time.monotonic() + self.slot_migration_patience
        delay = 0.05
        while True:
            try:
                return super().execute_command(*args, **options)
            except (redis.exceptions.ClusterError, redis.exceptions.TryAgainError) as exc:
                if isinstance(exc, redis.exceptions.ClusterDownError):  # redis-py's own retries handled it
                    raise
                if time.monotonic() + delay > deadline:
                    raise redis.exceptions.TryAgainError(f"a slot is being migrated ({exc})") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)


class NamedClusterPipeline(redis.cluster.ClusterPipeline):
    """A cluster pipeline whose unreachable nodes raise the named error (``NamedRedisCluster.pipeline``)."""

    described_url = ""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return _naming(self.described_url, super().execute, raise_on_error)


def _hosts(netloc: str, url: str, default_port: int) -> tuple[str, str, list[tuple[str, int]]]:
    """(user, password, [(host, port)...]) of ``user:password@h1:p1,h2:p2``."""
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    found = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        host = host.strip("[]")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): "
                             f"{item.strip()!r} is not host:port")
        found.append((host, int(port) if port else default_port))
    return unquote(user), unquote(password), found


def _url_options(options: dict[str, Any], scheme: str, user: str, password: str) -> dict[str, Any]:
    """``options`` with what a cluster or Sentinel URL says besides its hosts: TLS and the credentials."""
    if scheme.startswith("rediss"):
        options["ssl"] = True
    if user:
        options["username"] = user
    if password:
        options["password"] = password
    return options


def cluster_options(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """(startup nodes, client options) of a Redis Cluster URL: for the sync client and the async reader."""
    parts = urlsplit(url)
    user, password, hosts = _hosts(parts.netloc, url, 6379)
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): a Redis Cluster "
                         "has database 0 only")
    return hosts, _url_options({k: v[-1] for k, v in parse_qs(parts.query).items()}, parts.scheme, user, password)


def sentinel_options(url: str, **kwargs: Any) -> tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]:
    """(Sentinels, service name, the Sentinels' own options, the master's client options) of a
    Sentinel URL: for the sync client and the async reader."""
    parts = urlsplit(url)
    user, password, hosts = _hosts(parts.netloc, url, 26379)
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): a Sentinel URL "
                         "names its service and optionally a database: redis+sentinel://host:26379/mymaster/0")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    sentinel_kwargs = {"password": query.pop("sentinel_password")} if "sentinel_password" in query else {}
    options = _url_options({"db": int(path[1]) if len(path) == 2 else 0, **query, **kwargs}, parts.scheme, user,
                           password)
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in options:
            options[name] = float(options[name])
    return hosts, path[0], sentinel_kwargs, options


def _cluster(url: str, **kwargs: Any) -> NamedRedisCluster:
    hosts, options = cluster_options(url)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in hosts]
    client = NamedRedisCluster(startup_nodes=nodes, **options, **kwargs)
    client.described_url = url
    return client


def _sentinel(url: str, **kwargs: Any) -> NamedRedis:
    hosts, service, sentinel_kwargs, options = sentinel_options(url, **kwargs)
    sentinel = redis.sentinel.Sentinel(hosts, sentinel_kwargs=sentinel_kwargs or None,
                                       socket_timeout=options.get("socket_timeout", 5.0))
    client: NamedRedis = sentinel.master_for(service, redis_class=NamedRedis, **options)
    client.described_url = url
    return client


class Probe:
    """Answers whether a Redis answers PING, without redis-py's retries and backoff (which would stall
    each failed PING for seconds): for waiting on a server that is starting."""

    def __init__(self, host: str, port: int, timeout: float = 0.5) -> None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._client = redis.Redis(host=host, port=port, socket_connect_timeout=timeout, socket_timeout=timeout,
                                   retry=Retry(NoBackoff(), 0))

    def answers(self) -> bool:
        try:
            return bool(self._client.ping())
        except STORE_RETRYABLE:
            return False

    def close(self) -> None:
        self._client.close()


def connect(url: str, **kwargs: Any) -> Any:
    """A client for ``url`` (no connection is made until the first command): a ``NamedRedis``, or
    for a Redis Cluster a ``NamedRedisCluster`` (which finds the cluster's nodes at once)."""
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): {problem}")
    scheme = url.partition("://")[0].lower()
    try:
        if scheme in CLUSTER_SCHEMES:
            try:
                return _cluster(url, **kwargs)
            except (redis.exceptions.RedisClusterException, *_UNREACHABLE) as exc:
                raise describe(url, exc) from exc
        if scheme in SENTINEL_SCHEMES:
            return _sentinel(url, **kwargs)
        client: NamedRedis = NamedRedis.from_url(url, **kwargs)  # type: ignore[assignment]  # from_url is cls(...)
    except ValueError as exc:  # redis-py's message for a bad scheme lists the valid ones
        if str(exc).startswith("invalid Redis URL"):
            raise
        raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): {exc}") from exc
    client.described_url = url
    return client


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


__all__ = ["STORE_RETRYABLE", "STORE_UNREACHABLE", "NamedRedis", "NamedRedisCluster", "Probe", "RedisAuthError",
           "RedisUnavailableError", "StoreError", "StoreUnavailable", "cluster_options", "connect", "describe",
           "is_cluster_url", "is_sentinel_url", "redact_url", "sentinel_options"]
