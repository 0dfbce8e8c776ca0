"""One command for the whole benchmark: ``python -m bench.run [--quick] [--only a,b] [--json PATH]``.

Starts ONE private ``redis-server`` (never the shared one on 6379), then runs each system in turn on it
with its own 2 worker processes (ours: ``orchestrator worker`` prefork -c 2; Celery: ``celery worker``
prefork -c 2; DBOS: 2 processes on PostgreSQL or SQLite), stopping one system's workers before the
next starts so they never compete for the CPU. Prints a table of absolute figures, ratios and the
issue's targets, and writes the same as JSON.

``--scaling 1,2,4`` runs instead workload (a) for ours and raw Celery on 1, 2 and 4 worker pools of one
process each and prints the scaling table (bench/scaling.py). ``--ports LO-HI`` (or ``$BENCH_PORTS``)
keeps every redis-server it starts in that range, for machines where several runs share the ports.

Exit code: 0 when every system ran or was skipped as unavailable, 1 when a system failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import redis

from orchestrator.embedded import EmbeddedRedis

from . import celery_bench, dbos_bench, orch_bench, scaling
from .common import ROOT, WORKERS, BenchEnv, NodesMeter, RedisMeter, Row, Sizes, Skip, free_port_in, port_range
from .report import SYSTEMS, WORKLOADS, complete, derive, median_rows, render, write_json

RUNNERS: dict[str, Callable[[BenchEnv], list[Row]]] = {
    "ours": orch_bench.run,
    "celery": lambda env: celery_bench.run(env, "celery"),
    "celery-rb": lambda env: celery_bench.run(env, "celery-rb"),
    "dbos-pg": lambda env: dbos_bench.run(env, "dbos-pg"),
    "dbos-sqlite": lambda env: dbos_bench.run(env, "dbos-sqlite"),
}
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
SCALING_JSON = ROOT / "bench" / "results" / "scaling.json"


def _csv(value: str, allowed: tuple[str, ...] | str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(allowed)}"
        )
    return items


def _counts(value: str) -> list[int]:
    try:
        return scaling.parse_counts(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ports(value: str) -> tuple[int, int]:
    try:
        return port_range(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("full", "quick", "tiny"), default="full",
                   help="workload sizes: full (the issue's), quick (a minute), tiny (the smoke test)")
    p.add_argument("--quick", action="store_const", const="quick", dest="size", help="same as --size quick")
    p.add_argument("--only", type=lambda v: _csv(v, WORKLOADS, "workload"), default=list(WORKLOADS),
                   help="workloads to run, e.g. a,b (default: all of a..g)")
    p.add_argument("--systems", type=lambda v: _csv(v, SYSTEMS, "system"), default=list(SYSTEMS),
                   help=f"systems to run (default: {','.join(SYSTEMS)})")
    p.add_argument("--json", type=Path, default=None,
                   help=f"where to write the results (default: {DEFAULT_JSON}, with --scaling {SCALING_JSON})")
    p.add_argument("--scaling", type=_counts, default=None, metavar="N,N,...",
                   help="instead of the workloads: (a) for ours and raw Celery on 1, 2, 4 ... worker pools of "
                        "-c 1 each, in one run, and a table of steps/s, ratios and speed-ups (e.g. 1,2,4)")
    p.add_argument("--ports", type=_ports, default=os.environ.get("BENCH_PORTS"), metavar="LO-HI",
                   help="keep every redis-server the bench starts on ports LO..HI (cluster bus ports: +10000); "
                        "default $BENCH_PORTS, else any free port")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="py-spy profiles of our pool during (a), (b), (c) and each (d) run into DIR (slows them)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run every system N times, interleaved, and report each figure's median (noisy machines)")
    p.add_argument("--no-census", action="store_true", help="skip the MONITOR round-trip census of (f)")
    p.add_argument("--store", choices=("redis", "cluster"), default="redis",
                   help="our store: the one Redis (default), or a private 3-master Redis Cluster with that Redis "
                        "as the broker (raw Celery runs on it too; no census)")
    p.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="an admin connection to PostgreSQL for DBOS; a fresh database is created and dropped")
    p.add_argument("--work-dir", type=Path, default=None, help="logs and data (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs) after the run")
    return p.parse_args(argv)


def _run_systems(env: BenchEnv, args: argparse.Namespace) -> tuple[list[list[Row]], dict[str, str], bool]:
    """Every system ``--repeat`` times, interleaved: (each run's rows, why a system has none, any failed)."""
    runs: list[list[Row]] = []
    failures: dict[str, str] = {}
    failed = False
    for round_no in range(args.repeat):
        for system in args.systems:
            if system in failures:
                continue
            t0 = time.perf_counter()
            print(f"-- {system} (run {round_no + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
            try:
                runs.append(RUNNERS[system](env))
            except Skip as skip:
                failures[system] = "skipped: " + " ".join(str(skip).split())
                print(f"   skipped: {skip}", file=sys.stderr)
            except Exception as exc:  # noqa: BLE001 - one system's failure must not hide the others
                failed = True
                failures[system] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                print(f"   FAILED:\n{traceback.format_exc()}", file=sys.stderr)
            print(f"   {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    return runs, failures, failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.repeat < 1:
        raise SystemExit(f"--repeat must be at least 1, got {args.repeat}")
    sizes = Sizes.named(args.size)
    json_path = args.json or (SCALING_JSON if args.scaling else DEFAULT_JSON)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="orch-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(work_dir / "redis", port=free_port_in(args.ports) if args.ports else None).start()
    cluster = None
    started = time.time()
    try:
        meter = RedisMeter(redis.Redis.from_url(server.url))
        store, broker = "", None
        if args.store == "cluster":
            from tests.support.cluster import RedisClusterProc

            cluster = RedisClusterProc(work_dir / "cluster", port_range=args.ports).start()
            meter = NodesMeter(redis.Redis.from_url(server.url), [redis.Redis(port=n.port) for n in cluster.masters])
            store, broker = cluster.url, server.url
        env = BenchEnv(redis_url=server.url, sizes=sizes, workloads=set(args.only), work_dir=work_dir,
                       meter=meter, profile_dir=args.profile, census=not args.no_census and cluster is None,
                       postgres_url=args.postgres_url, store=store, broker_url=broker)
        if args.scaling:
            result = scaling.measure(env, args.scaling, args.repeat, RUNNERS)
            failed = bool(result.failures)
        else:
            runs, failures, failed = _run_systems(env, args)
            rows = derive(median_rows(runs), sizes)
        redis_version = meter.redis.info("server")["redis_version"]
    finally:
        server.stop()
        if cluster is not None:
            cluster.stop()
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "seconds": round(time.time() - started, 1), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "python": platform.python_version(), "redis": redis_version, "store": args.store,
            "work_dir": str(work_dir), "repeat": args.repeat}
    if args.scaling:
        print(scaling.render(result, env, args.store, args.repeat))
        scaling.write_json(json_path, result, {**meta, "systems": list(scaling.SCALING_SYSTEMS),
                                               "workloads": ["a"], "sizes": sizes.__dict__,
                                               "concurrency_per_process": result.concurrency})
    else:
        rows = complete(rows, args.systems, sizes, set(args.only), env.census, failures)
        print(render(rows, args.systems, sizes))
        write_json(json_path, rows, sizes, {**meta, "systems": args.systems, "workloads": args.only,
                                            "worker_processes": WORKERS})
    keep = args.keep or args.work_dir or failed
    print(f"\nresults: {json_path}; logs: {work_dir if keep else '(removed)'}")
    if args.profile:
        print(f"profiles: {args.profile}")
    if not keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
