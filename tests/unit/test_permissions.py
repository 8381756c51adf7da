"""``can(user, action, obj)`` over roles x actions x scopes, on plain model objects (no database)."""

from __future__ import annotations

import pytest
from flask_login import AnonymousUserMixin

from tracker.models import (
    Case,
    CaseStatus,
    Community,
    Grid,
    Household,
    Membership,
    Role,
    Task,
    TaskStatus,
    User,
    Visit,
    VisitStatus,
)
from tracker.permissions import Permission, PermissionDenied, can, require

# Community 1 holds grids A and B; community 2 holds grid X. Department 5 repairs things.
COMMUNITY_1, COMMUNITY_2 = Community(id=1, name="一社区"), Community(id=2, name="二社区")
GRID_A = Grid(id=10, code="GA", name="A网格", community_id=1, community=COMMUNITY_1)
GRID_B = Grid(id=20, code="GB", name="B网格", community_id=1, community=COMMUNITY_1)
GRID_X = Grid(id=30, code="GX", name="X网格", community_id=2, community=COMMUNITY_2)
DEPARTMENT = 5


def _user(user_id: int, username: str, *memberships: Membership, admin: bool = False, active: bool = True) -> User:
    """Return an unsaved user holding ``memberships``."""
    return User(id=user_id, username=username, display_name=username, password_hash="", is_admin=admin,
                active=active, memberships=list(memberships))


def _in_grid(role: Role, grid: Grid) -> Membership:
    return Membership(role=role, grid_id=grid.id)


def _in_community(role: Role, community_id: int | None) -> Membership:
    return Membership(role=role, community_id=community_id)


USERS = {u.username: u for u in (
    _user(1, "member_a", _in_grid(Role.GRID_MEMBER, GRID_A)),
    _user(2, "member_a2", _in_grid(Role.GRID_MEMBER, GRID_A)),
    _user(3, "leader_a", _in_grid(Role.GRID_LEADER, GRID_A)),
    _user(4, "member_b", _in_grid(Role.GRID_MEMBER, GRID_B)),
    _user(5, "leader_b", _in_grid(Role.GRID_LEADER, GRID_B)),
    _user(6, "dept", Membership(role=Role.DEPARTMENT_HANDLER, department_id=DEPARTMENT)),
    _user(7, "auditor", _in_community(Role.AUDITOR, 1)),
    _user(8, "auditor_x", _in_community(Role.AUDITOR, 2)),
    _user(9, "district", _in_community(Role.AUDITOR, None)),
    _user(10, "street", _in_community(Role.STREET_OFFICE, 1)),
    _user(11, "street_x", _in_community(Role.STREET_OFFICE, 2)),
    _user(12, "admin", admin=True),
    # Member in grid B and leader in grid A at once: each role counts only in its own grid.
    _user(13, "mixed", _in_grid(Role.GRID_MEMBER, GRID_B), _in_grid(Role.GRID_LEADER, GRID_A)),
    _user(14, "nobody"),
)}
EVERYONE = frozenset(USERS)


def _case(grid: Grid = GRID_A, status: CaseStatus = CaseStatus.HANDLING, department_id: int | None = None) -> Case:
    return Case(id=100, number="GA-0001", grid_id=grid.id, grid=grid, status=status, department_id=department_id)


def _task(role: Role, *, grid: Grid = GRID_A, assignee: str | None = None, status: TaskStatus = TaskStatus.OPEN,
          department_id: int | None = None, case: Case | None = None) -> Task:
    case = case or _case(grid, department_id=department_id)
    return Task(id="t-1", name="handle", case_id=case.id, case=case, role=role, grid_id=grid.id,
                department_id=department_id, status=status,
                assignee_id=USERS[assignee].id if assignee else None)


def allowed(action: Permission, obj: object) -> set[str]:
    """Return the usernames ``can`` lets do ``action`` on ``obj``."""
    return {name for name, user in USERS.items() if can(user, action, obj)}


# -- cases --------------------------------------------------------------------------------------------

def test_members_and_leaders_record_cases_only_in_their_own_grids():
    assert allowed(Permission.CASE_CREATE, GRID_A) == {"member_a", "member_a2", "leader_a", "mixed"}
    assert allowed(Permission.CASE_CREATE, GRID_B) == {"member_b", "leader_b", "mixed"}
    assert allowed(Permission.CASE_CREATE, GRID_X) == set()


def test_a_case_is_read_by_its_grid_its_community_the_district_and_admins():
    assert allowed(Permission.CASE_READ, _case(GRID_A)) == {
        "member_a", "member_a2", "leader_a", "mixed", "auditor", "district", "street", "admin"}
    assert allowed(Permission.CASE_READ, _case(GRID_X)) == {"auditor_x", "district", "street_x", "admin"}


def test_the_referred_department_reads_the_case_and_no_other():
    assert "dept" in allowed(Permission.CASE_READ, _case(department_id=DEPARTMENT))
    assert "dept" not in allowed(Permission.CASE_READ, _case(department_id=DEPARTMENT + 1))
    assert "dept" not in allowed(Permission.CASE_READ, _case())


def test_reading_a_task_follows_reading_its_case():
    task = _task(Role.GRID_LEADER, grid=GRID_B)
    assert allowed(Permission.TASK_READ, task) == allowed(Permission.CASE_READ, task.case)
    assert "member_a" not in allowed(Permission.TASK_READ, task)


# -- completing, claiming, reassigning, releasing tasks --------------------------------------------------

@pytest.mark.parametrize(("role", "grid", "department_id", "expected"), [
    (Role.GRID_MEMBER, GRID_A, None, {"member_a", "member_a2"}),
    (Role.GRID_MEMBER, GRID_B, None, {"member_b", "mixed"}),
    (Role.GRID_LEADER, GRID_A, None, {"leader_a", "mixed"}),
    (Role.GRID_LEADER, GRID_B, None, {"leader_b"}),
    (Role.DEPARTMENT_HANDLER, GRID_A, DEPARTMENT, {"dept"}),
    (Role.STREET_OFFICE, GRID_A, None, {"street"}),
    (Role.STREET_OFFICE, GRID_X, None, {"street_x"}),
], ids=["member-A", "member-B", "leader-A", "leader-B", "department", "street-1", "street-2"])
def test_only_the_lane_role_in_the_task_scope_completes_a_pool_task(role, grid, department_id, expected):
    task = _task(role, grid=grid, department_id=department_id)
    assert allowed(Permission.TASK_COMPLETE, task) == expected
    assert allowed(Permission.TASK_CLAIM, task) == expected  # a pool task is claimed by its lane


def test_an_assigned_task_is_completed_by_its_assignee_only_and_cannot_be_claimed():
    task = _task(Role.GRID_MEMBER, assignee="member_a2")
    assert allowed(Permission.TASK_COMPLETE, task) == {"member_a2"}
    assert allowed(Permission.TASK_CLAIM, task) == set()


def test_an_assignee_who_left_the_lane_cannot_complete():
    task = _task(Role.GRID_MEMBER, grid=GRID_B, assignee="member_a")
    assert allowed(Permission.TASK_COMPLETE, task) == set()


def test_a_done_task_or_an_archived_case_takes_no_more_actions():
    done = _task(Role.GRID_LEADER, status=TaskStatus.DONE)
    archived = _task(Role.GRID_LEADER, case=_case(status=CaseStatus.ARCHIVED))
    for action in (Permission.TASK_COMPLETE, Permission.TASK_CLAIM, Permission.TASK_REASSIGN, Permission.TASK_RELEASE):
        assert allowed(action, done) == set(), action
    assert allowed(Permission.TASK_COMPLETE, archived) == set()
    assert allowed(Permission.TASK_REASSIGN, archived) == set()
    assert allowed(Permission.CASE_READ, archived.case) >= {"leader_a", "auditor"}  # still readable


def test_the_grid_leaders_and_admins_reassign_the_grid_lanes_only():
    assert allowed(Permission.TASK_REASSIGN, _task(Role.GRID_MEMBER)) == {"leader_a", "mixed", "admin"}
    assert allowed(Permission.TASK_REASSIGN, _task(Role.GRID_LEADER, grid=GRID_B)) == {"leader_b", "admin"}
    assert allowed(Permission.TASK_REASSIGN, _task(Role.DEPARTMENT_HANDLER, department_id=DEPARTMENT)) == set()
    assert allowed(Permission.TASK_REASSIGN, _task(Role.STREET_OFFICE)) == set()


def test_the_holder_and_the_grid_leaders_release_an_assigned_task():
    assert allowed(Permission.TASK_RELEASE, _task(Role.GRID_MEMBER, assignee="member_a")) == {
        "member_a", "leader_a", "mixed", "admin"}
    assert allowed(Permission.TASK_RELEASE, _task(Role.GRID_MEMBER)) == set()  # already in the pool
    department_task = _task(Role.DEPARTMENT_HANDLER, department_id=DEPARTMENT, assignee="dept")
    assert allowed(Permission.TASK_RELEASE, department_task) == {"dept"}


# -- grids, households, visits ---------------------------------------------------------------------------

def test_a_grid_is_managed_by_its_leaders_and_admins():
    assert allowed(Permission.GRID_MANAGE, GRID_A) == {"leader_a", "mixed", "admin"}
    assert allowed(Permission.HOUSEHOLD_MANAGE, GRID_A) == {"leader_a", "mixed", "admin"}
    assert allowed(Permission.GRID_MANAGE, GRID_B) == {"leader_b", "admin"}


def test_a_household_is_read_in_its_grid_and_community_and_its_diary_kept_by_the_grid():
    household = Household(id=1, grid_id=GRID_A.id, grid=GRID_A, address_detail="2单元301", head_name="张")
    assert allowed(Permission.HOUSEHOLD_READ, household) == {
        "member_a", "member_a2", "leader_a", "mixed", "auditor", "district", "street", "admin"}
    assert allowed(Permission.HOUSEHOLD_NOTE, household) == {"member_a", "member_a2", "leader_a", "mixed"}


def test_an_open_visit_is_recorded_by_the_planned_member_or_a_member_of_the_grid():
    visit = Visit(id=1, grid_id=GRID_A.id, member_id=USERS["member_b"].id, status=VisitStatus.OPEN)
    assert allowed(Permission.VISIT_COMPLETE, visit) == {"member_a", "member_a2", "member_b"}
    visit.status = VisitStatus.DONE
    assert allowed(Permission.VISIT_COMPLETE, visit) == set()


# -- who is nobody ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("action", list(Permission))
def test_no_one_signed_out_or_disabled_may_do_anything(action):
    obj = {Permission.CASE_CREATE: GRID_A, Permission.GRID_MANAGE: GRID_A, Permission.HOUSEHOLD_MANAGE: GRID_A,
           Permission.HOUSEHOLD_READ: Household(id=1, grid_id=GRID_A.id, grid=GRID_A),
           Permission.HOUSEHOLD_NOTE: Household(id=1, grid_id=GRID_A.id, grid=GRID_A),
           Permission.VISIT_COMPLETE: Visit(id=1, grid_id=GRID_A.id, member_id=1, status=VisitStatus.OPEN),
           Permission.CASE_READ: _case()}.get(action, _task(Role.GRID_LEADER))
    if action == Permission.TASK_RELEASE:
        obj.assignee_id = 98  # only a held task can be released
    disabled = _user(99, "gone", _in_grid(Role.GRID_LEADER, GRID_A), _in_grid(Role.GRID_MEMBER, GRID_A),
                     admin=True, active=False)
    enabled = _user(98, "here", _in_grid(Role.GRID_LEADER, GRID_A), _in_grid(Role.GRID_MEMBER, GRID_A), admin=True)
    assert can(enabled, action, obj)  # the same user, enabled, may: the refusals below are about who
    assert not can(disabled, action, obj)
    assert not can(None, action, obj)
    assert not can(AnonymousUserMixin(), action, obj)


def test_require_names_who_may_not_do_what_on_which_object():
    require(USERS["leader_a"], Permission.GRID_MANAGE, GRID_A)
    with pytest.raises(PermissionDenied, match="member_a may not grid:manage on grid GA"):
        require(USERS["member_a"], Permission.GRID_MANAGE, GRID_A)
    with pytest.raises(PermissionDenied, match="member_b may not case:read on case GA-0001"):
        require(USERS["member_b"], Permission.CASE_READ, _case())
