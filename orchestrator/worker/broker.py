"""Kombu's Redis transport with one fix, so that a worker pool survives Redis restarting.

When the broker connection drops, Celery first "collects" the connection. That detaches the
transport from its kombu ``Connection``, while the old channel is still in use: a task that
finishes afterwards acknowledges its message through it, and closing it puts its unacknowledged
messages back on their queues. Both build a Redis client from the transport's connection details,
which are gone by then. Kombu raises ``AttributeError``, Celery treats that as unrecoverable, and
the whole pool exits. The chaos suite hit this in about one Redis restart out of three.

Here each channel remembers the connection details it was built with. An acknowledgement or a
restore after the reconnection then reaches the restarted Redis. While Redis is still down they
fail with an ordinary connection error, which Celery logs and survives. A message left
unacknowledged that way stays in kombu's unacknowledged hash in Redis, and is put back after the
visibility timeout.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class _RemembersConnection:
    connection: Any  # the kombu channel's transport (set by kombu's Channel)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        saved: dict[bool, dict[str, Any]] = self.__dict__.setdefault("_saved_connparams", {})
        if getattr(self.connection, "client", None) is None:  # detached by Connection.collect()
            if asynchronous not in saved:
                raise redis.exceptions.ConnectionError("the broker connection was closed")
            return dict(saved[asynchronous])
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        saved[asynchronous] = dict(params)
        return params


class Channel(_RemembersConnection, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class _DetachedTransport:
    """What a detached Sentinel channel reads from its transport: the kombu connection it was made
    for (which keeps its URLs after ``collect()``) and the transport's default port."""

    def __init__(self, client: Any, default_port: int) -> None:
        self.client, self.default_port = client, default_port


class SentinelChannel(_RemembersConnection, kombu_redis.SentinelChannel):
    """The same fix for a Sentinel broker, where it needs one thing more.

    Kombu's Sentinel channel builds each new pool by asking the Sentinels for the master, and it
    reads the Sentinels' addresses from the transport's kombu connection (its ``alt`` URLs), which
    ``collect()`` detaches. Closing a channel drops its pools first, so a detached channel that
    closes with unacknowledged messages needs a new pool to put them back, as does an
    acknowledgement after such a close: kombu raised ``AttributeError`` for both, the error that
    makes Celery exit the pool (test_sentinel_broker.py reproduces it). Here the channel remembers
    the kombu connection it was built with and, once detached, asks the same Sentinels, which by
    then name the promoted master."""

    def _sentinel_managed_pool(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        client = getattr(transport, "client", None)
        if client is not None:
            self.__dict__["_sentinel_client"] = client
            return super()._sentinel_managed_pool(asynchronous)
        remembered = self.__dict__.get("_sentinel_client")
        if remembered is None:
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        self.connection = _DetachedTransport(remembered, transport.default_port)  # only while kombu reads it
        try:
            return super()._sentinel_managed_pool(asynchronous)
        finally:
            self.connection = transport


class SentinelTransport(kombu_redis.SentinelTransport):
    """Kombu's Sentinel transport with the same fix: the restart fix covers a Sentinel broker."""

    Channel = SentinelChannel


def transport_for(broker_url: str) -> str | None:
    """The ``broker_transport`` setting for ``broker_url``: None, kombu's choice by URL scheme, for
    which ``redis://`` and ``rediss://`` now mean this transport.

    Registered as kombu's ``redis`` alias rather than named as a ``module:Class`` transport, so the
    connection's URL stays ``redis://...``: tools that read it (Flower's broker tab, ``celery
    inspect``) recognise a Redis broker. The subclass changes nothing but the crash fix above."""
    scheme = broker_url.partition("://")[0].lower()
    if scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES["redis"] = TRANSPORT_ALIASES["rediss"] = f"{__name__}:Transport"
    elif scheme == "sentinel":
        TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"
    return None


__all__ = ["Channel", "SentinelChannel", "SentinelTransport", "Transport", "transport_for"]
