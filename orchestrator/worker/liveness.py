"""Worker liveness: every process that runs steps or activities registers itself and heartbeats, and
the work it takes is claimed in its name, so a crashed process's work comes back in seconds.

The model (docs/operations.md, "Liveness model"):

* **Registry.** Each worker process (a pool's main process, each prefork child, a ``wfr.start()``
  runtime) has an id ``<host>:<pid>:<nonce>`` and a heartbeat thread that writes, every
  ``heartbeat_interval`` (2 s), its time into ``P:procs`` and its record (app id, host, pid, the
  workflows and activities it serves, the broker messages it holds) into ``P:proc:<id>``. A
  process whose heartbeat is older than ``process_expiry`` (10 s) is dead.
* **Claims.** The script that takes an activity attempt (``take_attempts.lua``) checks it is still
  awaited and records the taker in ``P:claims`` in the same atomic step; a step is claimed when a
  process starts it (``take_step.lua``). The delivery of the attempt's result (or the step's
  commit, or its release) drops the claim. A copy of an attempt that a *live* process holds is
  skipped: a long activity whose process heartbeats is never run twice at once.
* **Reaping.** Every pool's sweeper (worker/duties.py) looks for dead processes; the first to see
  one takes its record and claims (``reap_process.lua``, once however many race), puts the broker
  messages it held back on their queues, and publishes its claimed work again. Hooks registered
  with ``on_process_lost`` run then too, with the dead process's id (concurrency slots, issue 17).
* **Poison protection.** Each time work is lost with its process it is counted (``P:lost``). An
  activity attempt lost more than ``lost_attempt_retries`` times fails with
  ``ActivityWorkerLostError`` (then its retry policy decides); a step lost that often fails its
  instance with ``StepWorkerLostError``. Code that kills its process cannot take a pool down forever.

What runs twice: a step may (the commit's version check keeps one); an activity attempt whose
process died mid-way runs again (at least once, as documented); a live holder's copy never does.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

from ..store.connection import StoreError
from ..store.liveness import ProcessInfo, ProcessRegistry

log = logging.getLogger("orchestrator.worker")

ProcessLostHook = Callable[[str, ProcessInfo], None]
_LOST_HOOKS: list[ProcessLostHook] = []


def on_process_lost(hook: ProcessLostHook) -> ProcessLostHook:
    """Register ``hook(process_id, record)``, called once by the sweeper that reaps a dead process
    (after its claimed work was published again), and by a process leaving at a graceful shutdown;
    exceptions are logged. Usable as a decorator."""
    _LOST_HOOKS.append(hook)
    return hook


def run_lost_hooks(process_id: str, info: ProcessInfo) -> None:
    for hook in list(_LOST_HOOKS):
        try:
            hook(process_id, info)
        except Exception:  # noqa: BLE001 - one hook's failure must not stop the reaping
            log.exception("process-lost hook %r failed for %s", hook, process_id)


def new_process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def process_gone_here(process_id: str) -> bool:
    """Did ``process_id`` run on this host, and is its pid gone (or a zombie)?"""
    host, _, rest = process_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def held_delivery_tags() -> list[str]:
    """Broker delivery tags of the messages this process's Celery consumer holds (reserved or running)."""
    try:
        from celery.worker import state
    except ImportError:  # pragma: no cover - celery is a dependency
        return []
    for _ in range(3):
        try:
            requests = [*state.reserved_requests, *state.active_requests]
            break
        except RuntimeError:  # the consumer changed the set meanwhile
            continue
    else:
        return []
    tags = []
    for request in requests:
        message = getattr(request, "_message", None) or getattr(request, "message", None)
        tag = getattr(message, "delivery_tag", None)
        if tag:
            tags.append(str(tag))
    return tags


class ProcessLiveness:
    """This process's registration and heartbeat thread (one per engine per OS process)."""

    def __init__(self, registry: ProcessRegistry, app_id: str, *, interval: float, expiry: float,
                 describe: Callable[[], dict[str, Any]], clock: Callable[[], int]) -> None:
        self.registry = registry
        self.app_id = app_id
        self.interval = interval
        self.expiry_ms = int(expiry * 1000)
        self.describe = describe
        self.clock = clock
        self.pid = os.getpid()
        self.process_id = new_process_id()
        self.kind = "worker"
        self.duties = False  # this process runs the pool's background duties (worker/shardplan.py)
        self.queues: list[str] = []
        self.held: Callable[[], list[str]] | None = None
        self.started = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._left = False

    def start(self) -> ProcessLiveness:
        self.beat()
        if self.interval > 0:  # 0: registered once, no heartbeat (the in-process test environment)
            self._thread = threading.Thread(target=self._run, name="orchestrator-heartbeat", daemon=True)
            self._thread.start()
        return self

    def alive_since(self) -> int:
        """A heartbeat at or after this (ms) belongs to a live process."""
        return self.clock() - self.expiry_ms

    def record(self) -> dict[str, Any]:
        return {"app": self.app_id, "host": socket.gethostname(), "pid": str(self.pid), "kind": self.kind,
                "ppid": str(os.getppid()), "started": str(self.started), "queues": self.queues,
                "duties": "1" if self.duties else "0",
                "held": self.held() if self.held is not None else [], **self.describe()}

    def beat(self) -> None:
        if not self._left:
            self.registry.beat(self.process_id, self.record(), self.clock())

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.beat()
                if failing:
                    log.info("heartbeat of %s is back", self.process_id)
                failing = False
            except StoreError as exc:  # said once per outage: the duties log Redis trouble too
                (log.debug if failing else log.warning)("heartbeat of %s failed: %s", self.process_id, exc)
                failing = True
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any one failure
                log.exception("heartbeat of %s failed", self.process_id)

    def give_up(self) -> None:
        """Stop heartbeating and declare this process dead now (not after the expiry): the next sweep
        of any live pool reaps it, putting back its messages and publishing its claimed work."""
        self._stop.set()
        self._left = True
        self.registry.mark_dead(self.process_id)

    def leave(self) -> list[tuple[str, int]]:
        """Stop heartbeating and deregister; the work still claimed, for the caller to hand back."""
        self._stop.set()
        self._left = True
        try:
            claims = self.registry.deregister(self.process_id)
        except StoreError as exc:
            log.warning("could not deregister %s (%s); it expires in %.0f s", self.process_id, exc,
                        self.expiry_ms / 1000)
            return []
        # The hooks see a departing process as they see a dead one: what it held is free again.
        run_lost_hooks(self.process_id, ProcessInfo.from_record(self.process_id, self.clock(), {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in self.record().items()}))
        return claims


class LivenessHolder:
    """Gives each OS process its own ``ProcessLiveness`` (a forked child must not reuse its parent's)."""

    def __init__(self, make: Callable[[], ProcessLiveness]) -> None:
        self._make = make
        self._current: ProcessLiveness | None = None
        self._lock = threading.Lock()

    def get(self) -> ProcessLiveness:
        current = self._current
        if current is not None and current.pid == os.getpid():
            return current
        with self._lock:
            if self._current is None or self._current.pid != os.getpid():
                self._current = self._make().start()
            return self._current

    def peek(self) -> ProcessLiveness | None:
        current = self._current
        return current if current is not None and current.pid == os.getpid() else None


__all__ = ["LivenessHolder", "ProcessLiveness", "held_delivery_tags", "new_process_id", "on_process_lost",
           "process_gone_here", "run_lost_hooks"]
