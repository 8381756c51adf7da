"""Duplicates (重复件): warn at intake, link a case to the main case it repeats, and one-time intake keys.

A duplicate follows its main case. Linking closes the duplicate's open task (it waits at recording or
dispatch, where its workflow stays); when the main case is handled (its callback opens), every
linked case proceeds to its own callback with the main case's result as its reply and result, so each
resident is told and called back. Unlinking reopens the waiting task. Link, unlink and release are on
the audit chains of both cases.

The process definitions know nothing of duplicates: a released case's workflow is stepped through the
steps it skipped (recorded as answered with the main case's result, or handled with it), by the
system, in one transaction with the main case's change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import N_, ConflictError, InvalidInput
from ..models import Case, CaseStatus, DuplicateLink, IntakeKey, Role, TaskStatus, User, utcnow
from ..permissions import Permission, PermissionDenied, can, holds_role
from ..queries import residents as found
from . import Services, cases
from .audit import audited_fields, record_event
from .commands import LinkDuplicate, RecordCase
from .definitions import as_definition
from .locks import CASE_FOR_CHANGE, check_fresh, flush, lock_task

#: The statuses a case may be linked in: it waits for recording or dispatch (nobody handles it yet).
LINKABLE = (CaseStatus.RECORDING, CaseStatus.DISPATCHING)
#: A main case in one of these was handled: its duplicates go on to their callbacks.
HANDLED = (CaseStatus.CALLBACK, CaseStatus.ARCHIVE_REVIEW, CaseStatus.ARCHIVED)
#: Workflow steps a released duplicate is taken through, at most (record, dispatch, handle).
MAX_STEPS = 6
#: Characters that are no part of what a request says (spaces, punctuation, symbols).
_NOISE = re.compile(r"[\W_]+", re.UNICODE)
#: What an intake key may be: printable ASCII without spaces, 1 to 100 characters (a UUID fits).
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,100}$")


# -- similar text -------------------------------------------------------------------------------------

def shingles(text: str) -> set[str]:
    """Return the character bigrams of a text (punctuation and spaces dropped; one character stands alone).

    Chinese is written without spaces, so words are no unit to compare: two characters side by side are
    ("楼道灯不亮" -> 楼道, 道灯, 灯不, 不亮). Latin letters and digits are compared the same way.
    """
    clean = _NOISE.sub("", text.lower())
    if len(clean) < 2:
        return {clean} if clean else set()
    return {clean[i:i + 2] for i in range(len(clean) - 1)}


def similarity(a: str, b: str) -> float:
    """Return how alike two texts are, 0 to 1: the bigrams they share over the bigrams of the shorter.

    The overlap of the shorter text rather than of both (Jaccard) keeps "楼道灯不亮" alike to a longer
    "3单元楼道的灯坏了，晚上不亮" that says the same with more words.
    """
    left, right = shingles(a), shingles(b)
    if not left or not right:
        return 0.0
    return len(left & right) / min(len(left), len(right))


# -- the warning at intake ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    """A case an intake may repeat, and why: the same phone, similar text in the same building, or both."""

    case: Case
    same_phone: bool
    score: float


def settings(config: Mapping[str, Any]) -> tuple[int, float, int]:
    """Return ``[duplicates]``: the window in days, the least similarity, and how many matches are shown."""
    section = config.get("duplicates", {})
    return (int(section.get("window_days", 30)), float(section.get("similarity", 0.5)),
            int(section.get("max_shown", 5)))


def find_duplicates(svc: Services, actor: User, intake: RecordCase | Case, *, made: Case | None = None
                    ) -> list[Match]:
    """Return the open or recent cases ``actor`` may read that ``intake`` (an intake, or a recorded case) may
    repeat, most alike first.

    A case matches with the same phone (open, or recorded within the window), or in the same building
    and category within the window with a description at least ``similarity`` alike. ``made``: the
    case already recorded from ``intake``; the match is then taken as at its recording (the window
    ends at its creation; it and the cases recorded after it are left out), so asking again later
    finds the same cases.
    """
    window, least, shown = settings(svc.config)
    since = (made.created_at if made is not None else utcnow()) - dt.timedelta(days=window)
    candidates = found.duplicate_candidates(svc.session, actor, intake.resident_phone, intake.building_id,
                                            intake.category, since, limit=200)
    matches = []
    for case in candidates:
        if made is not None and case.id >= made.id:
            continue
        same_phone = bool(intake.resident_phone) and case.resident_phone == intake.resident_phone
        score = similarity(intake.description, case.description)
        if same_phone or (case.building_id == intake.building_id and case.category == intake.category
                          and score >= least):
            matches.append(Match(case, same_phone, round(score, 2)))
    matches.sort(key=lambda m: (m.same_phone and m.score >= least, m.score, m.case.created_at), reverse=True)
    return matches[:shown]


# -- linking --------------------------------------------------------------------------------------------

def link_duplicate(svc: Services, actor: User, case_id: int, command: LinkDuplicate) -> Case:
    """Link case ``case_id`` (waiting for recording or dispatch) to the main case it repeats.

    The main case is named by its number (or id). Its open task closes; it follows the main case and
    goes on to its callback when the main case is handled (at once, if it already was).
    """
    case = svc.session.get(Case, case_id)
    if case is None:
        raise InvalidInput(N_("Case not found."))
    main = found.case_by_number(svc.session, actor, command.main_number)
    if main is None:
        raise InvalidInput(N_("No case %(number)s that you may read; give the main case's number."),
                           field="main_number", number=command.main_number)
    expected_version = command.version
    main = _lock_case(svc, main.id)  # first the main case, then the duplicate: as releasing does
    task = _waiting_task(svc, case)
    case = lock_task(svc, task.id).case
    _require_leader(actor, case)
    check_fresh(case, task, expected_version)
    _check_link(svc, case, main)
    svc.session.add(DuplicateLink(case_id=case.id, main_case_id=main.id, linked_by_id=actor.id, linked_at=utcnow()))
    main.waiting_duplicates = (main.waiting_duplicates or 0) + 1
    now = utcnow()
    for open_task in (t for t in case.tasks if t.status == TaskStatus.OPEN):
        open_task.status, open_task.completed_at, open_task.completed_by_id = TaskStatus.DONE, now, actor.id
    case.version += 1
    case.updated_at = now
    record_event(svc.session, case, actor, "case.linked", {"duplicate_of": (None, main.number)})
    record_event(svc.session, main, actor, "case.duplicate_linked", {"duplicate": (None, case.number)})
    flush(svc.session)
    if main.status in HANDLED:
        release(svc, main, [case])
        flush(svc.session)
    return case


def unlink_duplicate(svc: Services, actor: User, case_id: int, expected_version: int) -> Case:
    """Unlink a duplicate still following its main case: its waiting task opens again."""
    link = found.duplicate_link(svc.session, case_id)
    if link is None:
        raise InvalidInput(N_("This case is not linked to another."))
    if link.released_at is not None:
        raise InvalidInput(N_("The main case's result already reached this case; it can no longer be unlinked."))
    main = _lock_case(svc, link.main_case_id)
    case = _lock_case(svc, case_id)
    _require_leader(actor, case)
    if case.version != expected_version:
        raise ConflictError(N_("This case was changed by someone else after you opened it; reload and try again."))
    snapshot = svc.engine.snapshot(as_definition(case.definition), case.workflow_state)
    waiting = {ready.id for ready in snapshot.ready}
    for task in case.tasks:
        if task.id in waiting:
            task.status, task.completed_at, task.completed_by_id, task.closed_seq = TaskStatus.OPEN, None, None, None
    svc.session.delete(link)
    main.waiting_duplicates = max(0, (main.waiting_duplicates or 0) - 1)
    case.version += 1
    case.updated_at = utcnow()
    record_event(svc.session, case, actor, "case.unlinked", {"duplicate_of": (main.number, None)})
    record_event(svc.session, main, actor, "case.duplicate_unlinked", {"duplicate": (case.number, None)})
    flush(svc.session)
    return case


def _require_leader(actor: User, case: Case) -> None:
    """Only a leader of the case's grid (or an admin) links and unlinks its duplicates."""
    if not (actor.is_admin or holds_role(actor, Role.GRID_LEADER, grid_id=case.grid_id)):
        raise PermissionDenied(f"{actor.username} does not lead the grid of case {case.number}")
    if not can(actor, Permission.CASE_READ, case):
        raise PermissionDenied(f"{actor.username} may not read case {case.number}")


def _waiting_task(svc: Services, case: Case):
    """Return the case's open recording or dispatch task, or refuse: only such a case may be linked."""
    task = next((t for t in case.tasks if t.status == TaskStatus.OPEN and t.form_key in ("record_reply", "dispatch")),
                None)
    if case.status not in LINKABLE or task is None:
        raise InvalidInput(N_("Only a case waiting for recording or dispatch can be linked as a duplicate; "
                              "this one is already being handled."))
    return task


def _check_link(svc: Services, case: Case, main: Case) -> None:
    """Refuse a link that would not lead to one handled main case."""
    if main.id == case.id:
        raise InvalidInput(N_("A case cannot be a duplicate of itself."), field="main_number")
    if found.duplicate_link(svc.session, case.id) is not None:
        raise InvalidInput(N_("This case is already linked to another; unlink it first."))
    if (main_link := found.duplicate_link(svc.session, main.id)) is not None:
        raise InvalidInput(N_("Case %(number)s is itself a duplicate of %(main)s: link to %(main)s."),
                           field="main_number", number=main.number, main=main_link.main_case.number)
    if found.duplicates_of(svc.session, case.id):
        raise InvalidInput(N_("Other cases follow this one as duplicates: it stays a main case."))


def _lock_case(svc: Services, case_id: int) -> Case:
    """Load a case for a change, its row locked (on SQLite the write transaction already serializes)."""
    return svc.session.execute(select(Case).where(Case.id == case_id).options(*CASE_FOR_CHANGE)
                               .with_for_update(of=Case).execution_options(populate_existing=True)
                               ).unique().scalar_one()


# -- release: the main case was handled ------------------------------------------------------------------

def follow_main(svc: Services, main: Case) -> None:
    """Send the main case's result on to its waiting duplicates, once it was handled (services.cases calls this).

    The case row counts its waiting duplicates, so a case with none (nearly all) costs no query.
    """
    if main.status not in HANDLED or not main.waiting_duplicates:
        return
    waiting = [link.case_id for link in found.duplicates_of(svc.session, main.id) if link.released_at is None]
    if waiting:
        release(svc, main, [_lock_case(svc, case_id) for case_id in waiting])
        flush(svc.session)


def release(svc: Services, main: Case, followers: Iterable[Case]) -> None:
    """Take each waiting duplicate to its callback with the main case's result as its reply and result."""
    answer = main.result or main.reply
    for case in followers:
        before = audited_fields(case)
        snapshot = svc.engine.snapshot(as_definition(case.definition), case.workflow_state)
        for _ in range(MAX_STEPS):
            step = next((r for r in snapshot.ready if r.form_key in _STEP_DATA), None)
            if step is None or any(r.form_key == "callback" for r in snapshot.ready):
                break
            snapshot = svc.engine.complete_task(as_definition(case.definition), snapshot.state, step.id,
                                                _STEP_DATA[step.form_key](svc, case))
        if not any(r.form_key == "callback" for r in snapshot.ready):
            # A process version whose steps lead elsewhere: the duplicate keeps waiting, unchanged, and a
            # leader unlinks it to handle it on its own (the main case's handling is not held up).
            continue
        case.reply, case.result = answer, main.result
        cases._apply(svc, case, None, snapshot, completed_task=None)
        link = found.duplicate_link(svc.session, case.id)
        if link is not None and link.released_at is None:
            link.released_at = utcnow()
            main.waiting_duplicates = max(0, (main.waiting_duplicates or 0) - 1)
        case.version += 1
        changes = {"main_case": (None, main.number), **_changed(before, audited_fields(case))}
        record_event(svc.session, case, None, "case.followed_main", changes)
        record_event(svc.session, main, None, "case.duplicate_released", {"duplicate": (None, case.number)})


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Return field -> (old, new) for the fields that changed."""
    return {k: (before.get(k), after[k]) for k in after if before.get(k) != after[k]}


def _recorded(svc: Services, case: Case) -> dict[str, Any]:
    """The recording step of a released duplicate: answered (with the main case's result)."""
    return {"answered_on_spot": True}


def _dispatched(svc: Services, case: Case) -> dict[str, Any]:
    """The dispatch step of a released duplicate: to nobody (the main case's handler did the work).

    An empty ``dispatch_to`` also sends a reopened duplicate (a dissatisfied resident) to dispatch, where
    a leader decides who handles it then. The handling period's moments are only there for the
    process's timers, which the handling step at once cancels.
    """
    return {"dispatch_to": "", **cases._period_plan(svc, case, "general").as_workflow_data()}


def _handled(svc: Services, case: Case) -> dict[str, Any]:
    """The handling step of a released duplicate: done (its result is the main case's)."""
    return {"handle_action": "done"}


#: What each step a released duplicate skips is completed with.
_STEP_DATA = {"record_reply": _recorded, "dispatch": _dispatched, "handle": _handled}


# -- one-time intake keys (a form's hidden key, the API's Idempotency-Key) ---------------------------------

def intake_digest(intake: RecordCase) -> str:
    """Return the SHA-256 of an intake as built (the same content gives the same digest, however sent)."""
    return hashlib.sha256(intake.model_dump_json().encode()).hexdigest()


def valid_key(key: str) -> bool:
    """Whether ``key`` can be an intake key: 1 to 100 printable ASCII characters, no spaces."""
    return bool(KEY_PATTERN.match(key))


def replayed(svc: Services, actor: User, key: str, digest: str | None) -> Case | None:
    """Return the case already made from ``key`` by ``actor``, or None if the key is new.

    ``digest``: the intake sent again; other content under the same key is refused (None: not compared,
    as a desk form sent again after an edit still shows the case it made).
    """
    row = found.intake_key(svc.session, actor.id, key)
    case = svc.session.get(Case, row.case_id) if row is not None and row.case_id is not None else None
    if row is None or case is None:
        return None
    if digest is not None and row.request_hash != digest:
        raise ConflictError(N_("This Idempotency-Key was already used for another request (case %(number)s was "
                               "made from it); send a new key for a new case."), number=case.number)
    return case


def reserve_key(svc: Services, actor: User, key: str, digest: str) -> IntakeKey | None:
    """Reserve ``key`` for the intake about to be recorded; None when a parallel request just took it.

    The unique (user, key) index decides between two requests sent at once: the later waits for the
    earlier's commit and then finds the key taken (the caller answers with ``replayed``).
    """
    row = IntakeKey(user_id=actor.id, key=key, request_hash=digest, created_at=utcnow())
    try:
        with svc.session.begin_nested():
            svc.session.add(row)
    except IntegrityError:
        return None
    return row


def keep_key(row: IntakeKey, case: Case) -> None:
    """Remember the case made under a reserved key."""
    row.case_id = case.id


def key_days(config: Mapping[str, Any]) -> int:
    """Return ``[duplicates] intake_key_days``: how many days a one-time intake key is kept."""
    return int(config.get("duplicates", {}).get("intake_key_days", 30))


def purge_keys(session: Session, before: dt.datetime, batch_size: int) -> int:
    """Delete up to ``batch_size`` intake keys made before ``before``, oldest first; return how many.

    A purged key is forgotten: the same request sent again with it records a new case. The caller
    commits each batch (jobs.purge_intake_keys), so a large backlog never holds a long transaction.
    """
    oldest = (select(IntakeKey.id).where(IntakeKey.created_at < before)
              .order_by(IntakeKey.created_at, IntakeKey.id).limit(batch_size))
    ids = list(session.scalars(oldest))
    if not ids:
        return 0
    # Counted as deleted, not as found: a second scheduler purging at once may have taken some.
    result = session.execute(delete(IntakeKey).where(IntakeKey.id.in_(ids), IntakeKey.created_at < before),
                             execution_options={"synchronize_session": False})
    return cast(CursorResult[Any], result).rowcount


#: Run after every completed task: a main case just handled sends its result on.
cases.AFTER_COMPLETE.append(follow_main)

__all__ = ["HANDLED", "LINKABLE", "Match", "find_duplicates", "follow_main", "intake_digest", "keep_key",
           "key_days", "link_duplicate", "purge_keys", "release", "replayed", "reserve_key", "settings", "shingles",
           "similarity", "unlink_duplicate", "valid_key"]

