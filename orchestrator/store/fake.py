"""An in-memory Redis (fakeredis) that runs the store's Lua scripts, for fast tests and
``orchestrator.testing.WorkflowTestEnvironment``. Needs the ``test`` extra (fakeredis, lupa)."""

from __future__ import annotations

import importlib.util
from typing import Any

import msgpack
import redis


def fake_redis() -> redis.Redis:
    """An in-memory Redis (fakeredis) that runs this package's Lua scripts.

    fakeredis runs Lua through lupa but lacks Redis's built-in ``cmsgpack``; the scripts need only
    ``cmsgpack.unpack``, provided here by msgpack. Needs ``fakeredis`` and ``lupa`` (extra ``test``)."""
    missing = RuntimeError("the in-process test engine needs fakeredis and lupa: pip install 'orchestrator[test]'")
    try:
        import fakeredis
    except ImportError:
        raise missing from None
    if importlib.util.find_spec("lupa") is None:  # fakeredis runs EVAL with lupa
        raise missing
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    client.eval("return 1", 0)  # creates the server's Lua runtime
    runtime = getattr(server, "_lua_runtime", None)
    expected = getattr(server, "_lua_expected_globals", None)
    if runtime is None or not isinstance(expected, set):
        raise RuntimeError(f"fakeredis {getattr(fakeredis, '__version__', '?')} keeps its Lua runtime elsewhere; "
                           "use a real redis-server (orchestrator.embedded.EmbeddedRedis) instead")

    def to_lua(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({to_lua(k): to_lua(v) for k, v in value.items()})
        if isinstance(value, (list, tuple)):
            return runtime.table_from([to_lua(v) for v in value])
        return value

    def unpack(data: bytes) -> Any:
        return to_lua(msgpack.unpackb(data, raw=True, strict_map_key=False))

    runtime.globals().cmsgpack = runtime.table_from({b"unpack": unpack})
    expected.add(b"cmsgpack")
    return client


__all__ = ["fake_redis"]
