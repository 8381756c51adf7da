"""A throwaway PostgreSQL cluster for tests and benchmarks, from the server binaries on the machine.

PostgreSQL refuses to run as root, so when we are root the server commands run as the
``postgres`` system user (created by Debian's packages) via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .webclient import free_port


def _bindir() -> Path:
    """Find the directory holding initdb and pg_ctl."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15")
    return Path(candidates[-1]).parent


class Cluster:
    """initdb + pg_ctl on a temporary directory; trust auth on loopback only."""

    def __init__(self, base: str | Path | None = None, durable: bool = False):
        """Prepare (but do not start) a cluster; ``durable`` keeps fsync on (benchmarks)."""
        self.base = Path(base or tempfile.mkdtemp(prefix="gridloop-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.durable = durable
        self.bin = _bindir()
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        """Run a server binary as the right user, failing loudly with its output."""
        result = subprocess.run([*self._as_user, str(self.bin / args[0]), *args[1:]],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> Cluster:
        """Initialize the data directory if needed and start the server."""
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            shutil.chown(self.base, "postgres", "postgres")
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Restart the server, dropping every connection."""
        self.stop("fast")
        self.start()

    def destroy(self) -> None:
        """Stop the server if running and delete its files."""
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        """Return a SQLAlchemy URL for a database on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run one statement in autocommit mode (CREATE DATABASE and the like)."""
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname,
                             autocommit=True) as conn:
            conn.execute(sql)
