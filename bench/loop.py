"""Drive cases through the whole loop over HTTP with concurrent client processes.

Two ways in: the JSON API (a program, one request per step: what "a completion" costs the server)
and the web pages (a person: open the case, open the form, post it, follow the redirect).
"""

from __future__ import annotations

import json
import multiprocessing
import re
import time
import urllib.error
import urllib.request
from queue import Empty

from .webclient import WebUser

PASSWORD = "gridloop2026"
TASK_LINK = re.compile(r'href="/tasks/([0-9a-f-]{36})"')
BUILDING = re.compile(r'<option value="(\d+)">G(\d) · ')


def _timed(user: WebUser, path: str, data: dict) -> tuple[float, str]:
    """Load a form and post it; return (seconds the POST took, redirect location)."""
    reply = user.submit(path, data)
    if reply.status != 302:
        raise RuntimeError(f"POST {path} answered {reply.status}: {reply.body[:200]}")
    return reply.seconds, reply.location


def _task_of(user: WebUser, case_path: str) -> str:
    """Return the id of the case's current task from its page."""
    return TASK_LINK.search(user.request(case_path).body).group(1)


def drive(base: str, grid: int, cases: int, queue) -> None:
    """One client: record ``cases`` cases in a grid and take each through the whole loop."""
    member = WebUser(base).login(f"member{grid}a", PASSWORD)
    handler = WebUser(base).login(f"member{grid}b", PASSWORD)
    leader = WebUser(base).login(f"leader{grid}", PASSWORD)
    building = next(b for b, g in BUILDING.findall(member.request("/cases/new").body) if int(g) == grid)
    handler_name = re.search(r'class="who"[^>]*>([^<]+)<', handler.request("/").body).group(1)
    handler_id = None
    intake_times, completion_times = [], []
    for i in range(cases):
        seconds, case_path = _timed(member, "/cases/new", {
            "resident_name": f"居民{i}", "resident_phone": "13812345678", "building_id": building,
            "category": "property_repair", "description": "基准测试：楼道灯不亮", "channel": "phone",
            "urgency": "normal", "green_channel": "", "disposition": "dispatch", "reply": ""})
        intake_times.append(seconds)
        task = _task_of(leader, case_path)
        form = leader.request(f"/tasks/{task}").body
        handler_id = handler_id or _option_value(form, "handler_id", handler_name)
        steps = [
            (leader, {"dispatch_to": "member", "handler_id": handler_id, "department_id": "0",
                      "deadline_class": "general"}),
            (handler, {"handle_action": "done", "text": "已处理"}),
            (member, {"satisfaction": "satisfied"}),
            (leader, {"confirm": "y"}),
        ]
        for user, data in steps:
            task = task if user is leader and data.get("dispatch_to") else _task_of(user, case_path)
            seconds, _ = _timed(user, f"/tasks/{task}", data)
            completion_times.append(seconds)
    queue.put((intake_times, completion_times))


def _option_value(html: str, select_name: str, label: str) -> str:
    """Return the value of the option labelled ``label`` in a select."""
    block = html.split(f'name="{select_name}"', 1)[1].split("</select>", 1)[0]
    # A label may go on with the candidate's load ("网格员甲 — 2 open, 0 overdue").
    return re.search(r'<option value="(\d+)"[^>]*>' + re.escape(label) + "(?:<| —)", block).group(1)


class ApiClient:
    """A program calling /api/v1 with one bearer token (a new connection per call, as the page walk makes)."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[float, dict]:
        """Send a request; return (seconds, JSON answer); anything but 2xx raises."""
        request = urllib.request.Request(
            self.base + "/api/v1" + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                answer = json.loads(reply.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path} answered {error.code}: {error.read()[:300]!r}") from None
        return time.perf_counter() - start, answer


def drive_api(base: str, grid: int, cases: int, tokens: dict[str, str], queue) -> None:
    """One program: record ``cases`` cases through the API and take each through the whole loop."""
    member, handler, leader = (ApiClient(base, tokens[f"{who}{grid}{suffix}"]) for who, suffix in
                               (("member", "a"), ("member", "b"), ("leader", "")))
    handler_id = handler.call("GET", "/me")[1]["id"]
    building = member.call("GET", "/buildings")[1]["items"][0]["id"]  # the member's own grid
    intake_times, completion_times = [], []
    for i in range(cases):
        seconds, case = member.call("POST", "/cases", {
            "resident_name": f"居民{i}", "resident_phone": "13812345678", "building_id": building,
            "category": "property_repair", "description": "基准测试：楼道灯不亮", "channel": "phone"})
        intake_times.append(seconds)
        for client, data in ((leader, {"dispatch_to": "member", "handler_id": handler_id, "deadline_class": "general"}),
                             (handler, {"handle_action": "done", "text": "已处理"}),
                             (member, {"satisfaction": "satisfied"}),
                             (leader, {"confirm": True})):
            task = case["tasks"][0]  # the one open task: each answer says what comes next
            seconds, case = client.call("POST", f"/tasks/{task['id']}/complete",
                                        {"version": case["version"], "data": data})
            completion_times.append(seconds)
        if case["status"] != "archived":
            raise RuntimeError(f"case {case['number']} ended {case['status']}, not archived")
    queue.put((intake_times, completion_times))


def run_loop(base: str, clients: int, cases_per_client: int, via: str = "api",
             tokens: dict[str, str] | None = None) -> dict:
    """Run ``clients`` processes in parallel through the API or the pages; return throughput and latency."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    if via == "api":
        procs = [context.Process(target=drive_api, args=(base, 1 + i % 4, cases_per_client, tokens, queue))
                 for i in range(clients)]
    else:
        procs = [context.Process(target=drive, args=(base, 1 + i % 4, cases_per_client, queue))
                 for i in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    intakes, completions = [], []
    for _ in procs:
        a, b = _result(queue, procs)
        intakes += a
        completions += b
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("a benchmark client failed")
    return {"cases": len(intakes), "completions": len(completions) + len(intakes), "wall_s": wall,
            "intake": intakes, "completion": completions}


def _result(queue, procs: list, timeout: float = 3600) -> tuple[list[float], list[float]]:
    """Return the next client's timings; raise at once if a client died without sending them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return queue.get(timeout=1)
        except Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a benchmark client failed (its traceback is above)") from None
    raise RuntimeError(f"the benchmark clients sent nothing for {timeout:.0f} s")


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
