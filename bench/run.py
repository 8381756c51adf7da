"""GridLoop benchmark: the closed loop over HTTP, page latency at scale, and the bare-engine floor.

    .venv/bin/python -m bench.run                      # full run (both backends, up to 1M cases)
    .venv/bin/python -m bench.run --smoke              # tiny sizes, a minute

Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.pgcluster import Cluster
from tests.webclient import ROOT, Gunicorn

from .floor import run_floor
from .loop import percentile, run_loop
from .procstat import tree_cpu_seconds
from .scale import grow, time_pages
from .tick import measure as measure_tick


def _prepare(url: str) -> None:
    """Create the schema and load the demo data (users, grids, 50 cases)."""
    env = {**os.environ, "GRIDLOOP_APP_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "flask", "--app", "tracker", "demo"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def _backend(name: str, args, workdir: Path) -> dict:
    """Benchmark one backend: returns its figures."""
    cluster = None
    if name == "postgresql":
        cluster = Cluster(workdir / "pg", durable=True).start()
        cluster.execute("CREATE DATABASE bench")
        url = cluster.url("bench")
        server = Gunicorn(url, workers=args.pg_workers, log=workdir / "gunicorn-pg.log")
    else:
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        server = Gunicorn(url, workers=1, threads=args.sqlite_threads, log=workdir / "gunicorn-sqlite.log")
    figures: dict = {"backend": name}
    try:
        _prepare(url)
        server.start()
        pids = [server.process.pid] + ([_postmaster(cluster)] if cluster else [])
        cpu0 = sum(tree_cpu_seconds(p) for p in pids)
        loop = run_loop(server.base, args.clients, args.cases)
        cpu = sum(tree_cpu_seconds(p) for p in pids) - cpu0
        completions = loop["completions"]
        figures.update(
            cases=loop["cases"], completions=completions, wall_s=loop["wall_s"],
            cases_per_s=loop["cases"] / loop["wall_s"], completions_per_s=completions / loop["wall_s"],
            p50_ms=1000 * percentile(loop["completion"], 50), p95_ms=1000 * percentile(loop["completion"], 95),
            p99_ms=1000 * percentile(loop["completion"], 99),
            intake_p95_ms=1000 * percentile(loop["intake"], 95),
            server_cpu_per_completion_ms=1000 * cpu / completions)
        server.stop()  # the tick runs alone, as a scheduler process would
        figures["ticks"] = [measure_tick(url, args.tick_due, pending) for pending in args.tick_pending]
        server.start()
        figures["pages"] = {}
        for size in args.sizes:
            if name == "sqlite" and size > args.sqlite_max:
                continue
            seconds = grow(url, size)
            figures["pages"][size] = {"generate_s": seconds, **time_pages(server.base, args.repeats)}
    finally:
        server.stop()
        if cluster:
            cluster.destroy()
    return figures


def _postmaster(cluster: Cluster) -> int:
    """Return the postmaster's pid."""
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def _print(results: list[dict], floor: dict, args) -> None:
    """Print the figures as a Markdown report."""
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    print(f"\n## GridLoop benchmark, {dt.date.today()} — {os.cpu_count()} cores ({cpu}), Python "
          f"{platform.python_version()}")
    print(f"clients={args.clients} cases/client={args.cases}; PostgreSQL durable (fsync on), "
          f"{args.pg_workers} gunicorn workers; SQLite WAL, 1 worker x {args.sqlite_threads} threads\n")
    print("| backend | cases/s | completions/s | completion p50 / p95 / p99 ms | intake p95 ms "
          "| server+DB CPU per completion ms | ratio to floor |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ratio = r["server_cpu_per_completion_ms"] / floor["cpu_per_completion_ms"]
        print(f"| {r['backend']} | {r['cases_per_s']:.1f} | {r['completions_per_s']:.1f} | "
              f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f} | {r['intake_p95_ms']:.0f} | "
              f"{r['server_cpu_per_completion_ms']:.2f} | {ratio:.1f}x |")
    print(f"\nBare-engine floor (SpiffWorkflow in-process, serialized after each step): "
          f"{floor['cpu_per_completion_ms']:.2f} ms CPU per completion, {floor['completions_per_s']:.0f} "
          f"completions/s on one core, final state {floor['final_state_bytes']} bytes compressed.")
    print("\nPage p95 (ms) at scale:\n")
    for r in results:
        for size, pages in r["pages"].items():
            cells = ", ".join(f"{k} {v:.1f}" for k, v in pages.items() if k != "generate_s")
            print(f"- {r['backend']} {size:,} cases (generated in {pages['generate_s']:.0f} s): {cells}")
    print("\nScheduler tick (one `flask scheduler` process, batches of 100, one due timer per case):")
    for r in results:
        for t in r.get("ticks", []):
            print(f"- {r['backend']}: {t['due']:,} due among {t['pending']:,} pending -> {t['taken']:,} taken, "
                  f"{t['fired']:,} timers fired, {t['failed']} failed, in {t['seconds']:.2f} s "
                  f"({t['taken'] / t['seconds']:.0f} cases/s)")


def main() -> None:
    """Parse options, run every part, print the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--cases", type=int, default=50, help="cases per client")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--sqlite-max", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--floor-cases", type=int, default=300)
    parser.add_argument("--pg-workers", type=int, default=4)
    parser.add_argument("--sqlite-threads", type=int, default=4)
    parser.add_argument("--tick-due", type=int, default=1000, help="due timers per scheduler tick")
    parser.add_argument("--tick-pending", default="10000,100000", help="pending timer rows per tick run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a quick check")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.cases, args.sizes, args.repeats, args.floor_cases = 2, 2, "200", 3, 5
        args.tick_due, args.tick_pending = 5, "50"
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.tick_pending = [int(s) for s in args.tick_pending.split(",") if s]
    floor = run_floor(args.floor_cases)
    workdir = Path(tempfile.mkdtemp(prefix="gridloop-bench-"))
    workdir.chmod(0o755)  # the postgres user must reach the cluster directory inside it
    try:
        results = [_backend(name, args, workdir) for name in args.backends.split(",")]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    _print(results, floor, args)


if __name__ == "__main__":
    main()
