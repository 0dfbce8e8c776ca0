"""Round-trip census: which Redis commands a workload sends, counted with ``MONITOR``.

``INFO commandstats`` counts commands run inside Lua scripts too, so it cannot tell a round trip
(a command a client sent over the network) from work inside one ``EVALSHA``. ``MONITOR`` can: it tags
script-issued commands with ``lua``. A ``MULTI ... EXEC`` block is sent as one write and counts as one
round trip; commands of a plain (non-transactional) pipeline are counted one by one, so the figure is an
upper bound. MONITOR slows Redis down, so the census runs on a small, untimed repeat of a workload,
after the timed runs.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis

_STOP = "bench-census-stop"


class Census:
    """Counts commands seen by ``MONITOR`` between ``start()`` and ``stop()``."""

    def __init__(self, url: str, ignore_ports: set[str]) -> None:
        self.url = url
        self.ignore_ports = ignore_ports
        self.client = Counter[str]()
        self.commands = 0
        self.lua = Counter[str]()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="bench-census", daemon=True)
        self._error: BaseException | None = None

    def _listen(self) -> None:
        conn = redis.Redis.from_url(self.url)
        try:
            with conn.monitor() as monitor:
                self._ready.set()
                in_multi: set[str] = set()
                for cmd in monitor.listen():
                    text = cmd.get("command", "")
                    name = text.split(" ", 1)[0].lower() if text else "?"
                    if name == "echo" and _STOP in text:
                        return
                    if cmd.get("client_type") == "lua":
                        self.lua[name] += 1
                        continue
                    port = cmd.get("client_port", "")
                    if port in self.ignore_ports:
                        continue
                    self.commands += 1
                    if name == "multi":
                        in_multi.add(port)
                        self.client["multi/exec"] += 1
                    elif name == "exec":
                        in_multi.discard(port)
                    elif port not in in_multi:
                        self.client[name] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._error = exc
            self._ready.set()
        finally:
            conn.close()

    def start(self) -> Census:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("MONITOR did not start")
        return self

    def stop(self, probe: redis.Redis) -> None:
        probe.echo(_STOP)
        self._thread.join(30)
        if self._error is not None:
            raise RuntimeError(f"MONITOR failed: {self._error}")


def take_census(url: str, probe: redis.Redis, run: Callable[[], int]) -> dict[str, Any]:
    """Run ``run()`` (returns completed activity steps) under MONITOR: per-step round trips and
    commands inside scripts, by command name. Commands of ``probe`` (the benchmark's own polling
    connection) are left out."""
    own_port = str(probe.client_info()["addr"]).rsplit(":", 1)[1]
    census = Census(url, {own_port}).start()
    try:
        steps = max(run(), 1)
    finally:
        census.stop(probe)
    client_total, lua_total = sum(census.client.values()), sum(census.lua.values())
    return {
        "steps": steps,
        "round_trips_per_step": client_total / steps,
        "client_commands_per_step": census.commands / steps,
        "lua_commands_per_step": lua_total / steps,
        "round_trips_by_command": {k: round(v / steps, 2) for k, v in census.client.most_common()},
        "lua_commands_by_command": {k: round(v / steps, 2) for k, v in census.lua.most_common()},
    }
