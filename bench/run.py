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

from sqlalchemy import select

from tracker import create_app
from tracker.db import get_session
from tracker.models import User
from tracker.services import tokens

from .cluster import Cluster
from .floor import run_floor, run_timer_floor
from .loop import percentile, run_loop
from .procstat import tree_cpu_seconds
from .scale import grow, time_pages
from .statements import count_statements
from .tick import measure as measure_tick
from .webclient import ROOT, Gunicorn


def _prepare(url: str) -> None:
    """Create the schema and load the demo data (users, grids, 50 cases)."""
    env = {**os.environ, "GRIDLOOP_APP_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "flask", "--app", "tracker", "demo"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def _tokens(url: str) -> dict[str, str]:
    """Create an API token for each demo member and leader the programs act as."""
    app = create_app({"app": {"database_url": url}})
    try:
        with app.app_context():
            db = get_session()
            users = db.scalars(select(User).where(User.username.like("member%") | User.username.like("leader%"))).all()
            secrets = {u.username: tokens.create(db, u, "benchmark")[1] for u in users}
            db.commit()
    finally:
        app.extensions["gridloop.db"].dispose()
    return secrets


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
        secrets = _tokens(url)
        figures["statements"] = count_statements(url)  # in-process, before the server starts
        server.start()
        pids = [server.process.pid] + ([_postmaster(cluster)] if cluster else [])
        figures["loops"] = {}
        for via in args.loops:
            cpu0 = sum(tree_cpu_seconds(p) for p in pids)
            loop = run_loop(server.base, args.clients, args.cases, via, secrets)
            cpu = sum(tree_cpu_seconds(p) for p in pids) - cpu0
            completions = loop["completions"]
            figures["loops"][via] = dict(
                cases=loop["cases"], completions=completions, wall_s=loop["wall_s"],
                cases_per_s=loop["cases"] / loop["wall_s"], completions_per_s=completions / loop["wall_s"],
                p50_ms=1000 * percentile(loop["completion"], 50), p95_ms=1000 * percentile(loop["completion"], 95),
                p99_ms=1000 * percentile(loop["completion"], 99),
                intake_p95_ms=1000 * percentile(loop["intake"], 95),
                server_cpu_per_completion_ms=1000 * cpu / completions)
        server.stop()  # the tick runs alone, as a scheduler process would
        figures["ticks"] = [measure_tick(url, args.tick_due, pending) for pending in args.tick_pending]
        if cluster and args.tick_schedulers > 1:  # SQLite has one writer: parallel schedulers only queue
            figures["ticks"].append(measure_tick(url, args.tick_due, args.tick_pending[-1],
                                                 schedulers=args.tick_schedulers))
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


def _print(results: list[dict], floor: dict, timer_floor: dict, args) -> None:
    """Print the figures as a Markdown report."""
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    print(f"\n## GridLoop benchmark, {dt.date.today()} — {os.cpu_count()} cores ({cpu}), Python "
          f"{platform.python_version()}")
    print(f"clients={args.clients} cases/client={args.cases}; PostgreSQL durable (fsync on), "
          f"{args.pg_workers} gunicorn workers; SQLite WAL, 1 worker x {args.sqlite_threads} threads\n")
    print("The loop through the JSON API (a program: one request per step) and through the web pages "
          "(a person: case page, form, post, redirect; CPU counts every page of the walk).\n")
    print("| backend | via | cases/s | completions/s | completion p50 / p95 / p99 ms | intake p95 ms "
          "| server+DB CPU per completion ms | ratio to floor | SQL statements per completion |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for via, loop in r["loops"].items():
            ratio = loop["server_cpu_per_completion_ms"] / floor["cpu_per_completion_ms"]
            print(f"| {r['backend']} | {via} | {loop['cases_per_s']:.1f} | {loop['completions_per_s']:.1f} | "
                  f"{loop['p50_ms']:.0f} / {loop['p95_ms']:.0f} / {loop['p99_ms']:.0f} | {loop['intake_p95_ms']:.0f} | "
                  f"{loop['server_cpu_per_completion_ms']:.2f} | {ratio:.1f}x | {_per_completion(r, via):.1f} |")
    print("\nSQL statements per request (one more case in-process on the same database, BEGIN not counted; "
          "a completion counts the intake too, which settles the first task):")
    for r in results:
        for via, counts in r["statements"].items():
            cells = ", ".join(f"{step} {n}" for step, n in counts.items() if step != "walk")
            walk = f"; the whole page walk {counts['walk']} per completion" if "walk" in counts else ""
            print(f"- {r['backend']} {via}: {cells}{walk}")
    print(f"\nBare-engine floor (SpiffWorkflow in-process, serialized after each step): "
          f"{floor['cpu_per_completion_ms']:.2f} ms CPU per completion, {floor['completions_per_s']:.0f} "
          f"completions/s on one core, final state {floor['final_state_bytes']} bytes compressed.")
    print("\nPage p95 (ms) at scale:\n")
    for r in results:
        for size, pages in r["pages"].items():
            cells = ", ".join(f"{k} {v:.1f}" for k, v in pages.items() if k != "generate_s")
            print(f"- {r['backend']} {size:,} cases (generated in {pages['generate_s']:.0f} s): {cells}")
    print("\nScheduler tick (`flask scheduler` processes, batches of 100, one due timer per case):")
    for r in results:
        for t in r.get("ticks", []):
            print(f"- {r['backend']}, {t['schedulers']} scheduler(s): {t['due']:,} due among {t['pending']:,} pending "
                  f"-> {t['taken']:,} taken, {t['fired']:,} timers fired, {t['failed']} failed, "
                  f"in {t['seconds']:.2f} s ({t['taken'] / t['seconds']:.0f} cases/s)")
    _print_targets(results, floor)
    print(f"\nBare-engine floor for timers (SpiffWorkflow alone: restore, fire, serialize; no database): "
          f"{timer_floor['timers']:,} due timers in {timer_floor['cpu_s']:.2f} s CPU "
          f"({timer_floor['cpu_per_timer_ms']:.2f} ms each) on one core.")


def _per_completion(result: dict, via: str) -> float:
    """Return the mean statements of the loop's completions (the intake among them, as the loop counts)."""
    counts = [n for step, n in result["statements"][via].items() if step != "walk"]
    return sum(counts) / len(counts)


#: Issue 13's targets for the loop through the API on PostgreSQL.
TARGET_PER_S, TARGET_RATIO, TARGET_STATEMENTS = 150, 5, 8


def _print_targets(results: list[dict], floor: dict) -> None:
    """Print the targets of the API loop on PostgreSQL beside this run's figures."""
    for r in results:
        loop = r["loops"].get("api")
        if r["backend"] != "postgresql" or loop is None:
            continue
        ratio = loop["server_cpu_per_completion_ms"] / floor["cpu_per_completion_ms"]
        most = max(n for step, n in r["statements"]["api"].items() if step != "intake")
        print("\nTargets (PostgreSQL, API):")
        for text, met in ((f"≥ {TARGET_PER_S} task completions/s: {loop['completions_per_s']:.1f}",
                           loop["completions_per_s"] >= TARGET_PER_S),
                          (f"server+DB CPU per completion ≤ {TARGET_RATIO}x the bare-engine floor: {ratio:.1f}x",
                           ratio <= TARGET_RATIO),
                          (f"an API completion in ≤ {TARGET_STATEMENTS} SQL statements: at most {most}",
                           most <= TARGET_STATEMENTS)):
            print(f"- {text} ({'met' if met else 'not met'})")


def main() -> None:
    """Parse options, run every part, print the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--loops", default="api,ui", help="ways through the loop: api (JSON API), ui (web pages)")
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
    parser.add_argument("--tick-schedulers", type=int, default=2,
                        help="PostgreSQL: also tick with this many scheduler processes at once")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a quick check")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.cases, args.sizes, args.repeats, args.floor_cases = 2, 2, "200", 3, 5
        args.tick_due, args.tick_pending = 5, "50"
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.loops = [v for v in args.loops.split(",") if v]
    if set(args.loops) - {"api", "ui"}:
        parser.error("--loops takes api, ui or both")
    args.tick_pending = [int(s) for s in args.tick_pending.split(",") if s]
    floor = run_floor(args.floor_cases)
    timer_floor = run_timer_floor(args.tick_due)
    workdir = Path(tempfile.mkdtemp(prefix="gridloop-bench-"))
    workdir.chmod(0o755)  # the postgres user must reach the cluster directory inside it
    try:
        results = [_backend(name, args, workdir) for name in args.backends.split(",")]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    _print(results, floor, timer_floor, args)


if __name__ == "__main__":
    main()
