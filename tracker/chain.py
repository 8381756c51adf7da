"""The audit chain's rules, in the Python standard library only.

This module is the single definition of how an audit event is hashed and how a case's chain is
checked. The app uses it, and a case bundle ships this very file as ``verify_bundle.py`` so an
auditor can check an exported bundle offline with nothing but Python.

An event is a mapping with: case_id, seq, at (ISO 8601 in UTC), actor_id, actor_name, action,
task_name, changes (the JSON text ``{"field": [old, new], ...}``), prev_hash, hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
#: Values a field holds before any event sets it.
EMPTY = (None, "", 0)


def event_hash(case_id: int, seq: int, at: str, actor_id: int | None, actor_name: str, action: str,
               task_name: str | None, changes: str, prev_hash: str) -> str:
    """Return the SHA-256 over an event's content and the previous event's hash."""
    payload = json.dumps([case_id, seq, at, actor_id, actor_name, action, task_name, changes, prev_hash],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def utc_text(at: dt.datetime) -> str:
    """Return the text an event's time is hashed as: ISO 8601 in UTC."""
    return at.astimezone(dt.timezone.utc).isoformat()


def jsonable(value: Any) -> Any:
    """Return a value as the audit trail records it (datetimes as ISO strings to the second)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    return json.loads(json.dumps(value, ensure_ascii=False))


@dataclass(frozen=True)
class Report:
    """The result of checking one case's chain; ``broken_seq`` names the first broken event."""

    case_id: int
    events: int
    ok: bool
    broken_seq: int | None = None
    problem: str = ""
    head: str = GENESIS


def check(case_id: int, events: Sequence[Mapping[str, Any]], recorded_count: int | None = None,
          fields: Mapping[str, Any] | None = None) -> Report:
    """Check a case's events in order: numbering, links, hashes, then the case's current fields.

    ``recorded_count`` is the number of events the case row says it has (catches a deleted last
    event); ``fields`` are the case's audited fields as they stand now, which must equal what the
    chain last recorded for each (catches a field changed behind the chain's back).
    """
    prev = GENESIS
    for expected_seq, ev in enumerate(events, start=1):
        if ev["seq"] != expected_seq:
            return Report(case_id, len(events), False, expected_seq, f"event {expected_seq} is missing", prev)
        if ev["prev_hash"] != prev:
            return Report(case_id, len(events), False, expected_seq,
                          f"event {expected_seq} does not link to event {expected_seq - 1}", prev)
        digest = event_hash(ev["case_id"], ev["seq"], ev["at"], ev["actor_id"], ev["actor_name"], ev["action"],
                            ev["task_name"], ev["changes"], ev["prev_hash"])
        if digest != ev["hash"] or ev["case_id"] != case_id:
            return Report(case_id, len(events), False, expected_seq,
                          f"event {expected_seq} was altered: its content does not match its hash", prev)
        prev = ev["hash"]
    if recorded_count is not None and recorded_count != len(events):
        return Report(case_id, len(events), False, len(events) + 1,
                      f"the case records {recorded_count} events but {len(events)} exist", prev)
    if fields is not None:
        mismatch = _field_mismatch(events, fields)
        if mismatch is not None:
            seq, problem = mismatch
            return Report(case_id, len(events), False, seq, problem, prev)
    return Report(case_id, len(events), True, head=prev)


def last_recorded(events: Iterable[Mapping[str, Any]], names: Iterable[str]) -> dict[str, tuple[int, Any]]:
    """Return field -> (seq, value) of the last event that recorded each of ``names``."""
    wanted = set(names)
    found: dict[str, tuple[int, Any]] = {}
    for ev in events:
        for name, pair in json.loads(ev["changes"]).items():
            if name in wanted:
                found[name] = (ev["seq"], pair[1])
    return found


def _field_mismatch(events: Sequence[Mapping[str, Any]], fields: Mapping[str, Any]) -> tuple[int, str] | None:
    """Return (seq, problem) for the first field whose current value the chain did not record."""
    recorded = last_recorded(events, fields)
    for name in sorted(fields, key=lambda n: recorded.get(n, (0,))[0]):
        value = jsonable(fields[name])
        seq, expected = recorded.get(name, (1, None))
        if value == expected or (value in EMPTY and expected in EMPTY):
            continue
        return seq, (f"case field {name} is {value!r} but event {seq} recorded {expected!r}: "
                     f"it was changed outside the audited services")
    return None


# -- offline verification of an exported case bundle -------------------------------------------

def verify_bundle(path: str) -> Report:
    """Verify a case bundle (a .zip file or its unpacked folder) with the standard library only."""
    import csv
    import io
    import pathlib
    import zipfile

    def read(name: str) -> bytes:
        p = pathlib.Path(path)
        if p.is_dir():
            return (p / name).read_bytes()
        with zipfile.ZipFile(p) as archive:
            return archive.read(name)

    case = json.loads(read("case.json"))
    events = json.loads(read("events.json"))
    rows = list(csv.DictReader(io.StringIO(read("events.csv").decode("utf-8-sig"))))
    case_id = case["id"]
    if hashlib.sha256(read("process.bpmn")).hexdigest() != case["process"]["content_hash"]:
        return Report(case_id, len(events), False, None, "process.bpmn is not the version the case ran on")
    for ev, row in zip(events, rows, strict=False):
        if row["hash"] != ev["hash"] or row["changes"] != ev["changes"]:
            return Report(case_id, len(events), False, ev["seq"], f"events.csv differs from events.json at event {ev['seq']}")
    if len(rows) != len(events):
        return Report(case_id, len(events), False, None, "events.csv and events.json hold different numbers of events")
    report = check(case_id, events, case["audit_seq"], case["fields"])
    if report.ok and case.get("audit_head") != report.head:
        return Report(case_id, len(events), False, len(events) or None,
                      "case.json names a different chain head than its last event", report.head)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python verify_bundle.py BUNDLE.zip``: print the result; exit 0 if the bundle verifies."""
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python verify_bundle.py BUNDLE.zip (or the unpacked folder)", file=sys.stderr)
        return 2
    report = verify_bundle(args[0])
    if report.ok:
        print(f"OK: case {report.case_id}, {report.events} events, chain head {report.head}")
        return 0
    where = f"event {report.broken_seq}: " if report.broken_seq else ""
    print(f"BROKEN: case {report.case_id}: {where}{report.problem}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
