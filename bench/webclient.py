"""A small real-HTTP client for process-level tests and benchmarks: cookies, CSRF, no redirects."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
VERSION_RE = re.compile(r'id="version" name="version" type="hidden" value="(\d+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        """Return redirects to the caller instead of following them."""
        return None


@dataclass
class Reply:
    status: int
    body: str
    location: str = ""
    # Wall time of this one HTTP exchange.
    seconds: float = 0.0


def form_fields(html: str) -> dict[str, str]:
    """Return the hidden fields a page's form posts back: CSRF token and case version."""
    token = CSRF_RE.search(html)
    fields = {"csrf_token": (token.group(1) or token.group(2)) if token else ""}
    if version := VERSION_RE.search(html):
        fields["version"] = version.group(1)
    return fields


class WebUser:
    """One person's browser session against a real server."""

    def __init__(self, base: str, timeout: float = 30):
        """Start a session with its own cookie jar."""
        self.base = base
        self.timeout = timeout
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect)

    def request(self, path: str, data: dict | None = None) -> Reply:
        """GET (or POST form ``data``) and return status, body and redirect target."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        start = time.perf_counter()
        try:
            with self.opener.open(self.base + path, data=body, timeout=self.timeout) as response:
                text = response.read().decode("utf-8")
                return Reply(response.status, text, seconds=time.perf_counter() - start)
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            return Reply(error.code, text, error.headers.get("Location", ""), time.perf_counter() - start)

    def submit(self, path: str, data: dict, page: str | None = None) -> Reply:
        """Load the page, take its CSRF token and case version, and post the form."""
        loaded = self.request(page or path)
        if loaded.status != 200:
            return loaded
        return self.request(path, {**form_fields(loaded.body), **data})

    def login(self, username: str, password: str) -> WebUser:
        """Log in or raise."""
        reply = self.submit("/login", {"username": username, "password": password})
        if reply.status != 302:
            raise RuntimeError(f"login of {username} failed: {reply.status}")
        return self


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """GridLoop under gunicorn in its own process group, for process-level tests and benchmarks."""

    def __init__(self, database_url: str, workers: int = 3, threads: int = 1, log: Path | None = None):
        """Configure (but do not start) a server on a free port."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(workers), "--threads", str(threads), "--graceful-timeout", "5",
                     "--timeout", "60", "tracker:create_app()"]
        # As in a city deployment: the scheduler runs as its own process, not in every worker.
        self.env = {**os.environ, "GRIDLOOP_APP_DATABASE_URL": database_url,
                    "GRIDLOOP_SCHEDULER_IN_WEB": "false",
                    # Load generators log many people in from one address: not what the limit is for.
                    "GRIDLOOP_API_RATELIMIT_ENABLED": "false"}
        self.log = log
        self.process: subprocess.Popen | None = None
        self._out = None

    def start(self) -> Gunicorn:
        """Start the server and wait until /healthz answers."""
        self._out = open(self.log, "ab") if self.log else None  # noqa: SIM115 - closed in stop()
        out = self._out or subprocess.DEVNULL
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=out,
                                        start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                if WebUser(self.base, timeout=2).request("/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not become healthy within 60 s")

    def worker_pids(self) -> list[int]:
        """Return the pids of the current worker processes."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """Stop the master and its workers."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._out:
            self._out.close()
