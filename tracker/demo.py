"""Demo data: one community, 4 grids, 28 buildings, staff, departments and ~50 cases."""

from __future__ import annotations

import datetime as dt
import itertools

from flask import Flask, current_app
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from . import clock, jobs
from .models import Building, Case, Community, Department, Grid, Membership, Role, TaskStatus, User
from .services import for_app, visits
from .services.cases import complete_task, open_case
from .services.commands import (
    AddNote,
    Callback,
    Dispatch,
    Handle,
    PlanVisits,
    RecordCase,
    RegisterHousehold,
    ReviewArchive,
)

PASSWORD = "gridloop2026"
DEPARTMENTS = [
    ("civil_affairs", "民政办"), ("legal_aid", "法律援助站"), ("employment", "就业服务站"),
    ("medical_insurance", "医保站"), ("pension", "社保养老站"), ("property", "物业维修中心"),
    ("security", "综治中心"), ("city_management", "城管中队"), ("family_planning", "计生办"),
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["芳", "伟", "娜", "敏", "静", "强", "磊", "洋", "艳", "军", "杰", "涛", "明", "超", "霞", "平"]
REQUESTS = [
    ("property_repair", "3号楼2单元楼道灯不亮，晚上老人上下楼看不见。", "phone", ""),
    ("property_repair", "5楼以上水压太低，早晚用水高峰几乎没水。", "wechat", ""),
    ("employment", "夫妻二人同时下岗，希望社区帮忙介绍工作。", "walk_in", ""),
    ("certificates", "需要开具居住证明，用于办理医疗保险。", "walk_in", ""),
    ("medical_insurance", "异地就医报销需要哪些材料？", "phone", "sick"),
    ("civil_affairs", "申请育儿补贴，不清楚办理流程。", "app", ""),
    ("city_management", "小区门口违章停车堵塞消防通道。", "hotline_12345", ""),
    ("city_management", "绿化带乱扔垃圾，长期无人清理。", "visit", ""),
    ("dispute_mediation", "楼上漏水到楼下，邻里协商不成。", "mobile_desk", "elderly"),
    ("dispute_mediation", "楼上夜间噪音扰民。", "wechat", ""),
    ("security", "楼顶疑似违章搭建。", "hotline_12345", ""),
    ("pension", "退休人员养老金资格认证如何办理？", "phone", "elderly"),
    ("legal", "劳动合同纠纷，单位拖欠工资三个月。", "walk_in", ""),
    ("civil_affairs", "独居老人申请低保，腰椎间盘突出无法工作。", "visit", "disabled"),
]


def _people(db: Session, grids: list[Grid], departments: list[Department]) -> tuple[dict, list]:
    """Create the staff: a leader and 3 members per grid, department handlers, auditor, admin."""
    names = (s + g for s, g in itertools.product(SURNAMES, GIVEN))
    pw = generate_password_hash(PASSWORD)
    staff: dict[str, User] = {}
    logins = []

    def add(username: str, what: str, *memberships: Membership, admin: bool = False) -> User:
        user = User(username=username, display_name=next(names), password_hash=pw, is_admin=admin,
                    phone=f"1380000{len(staff):04d}", memberships=list(memberships))
        db.add(user)
        staff[username] = user
        logins.append((username, PASSWORD, f"{user.display_name} — {what}"))
        return user

    for grid in grids:
        n = grid.code[1:]
        add(f"leader{n}", f"网格长 grid leader, {grid.name}", Membership(role=Role.GRID_LEADER, grid_id=grid.id))
        for i in "abc":
            add(f"member{n}{i}", f"网格员 grid member, {grid.name}", Membership(role=Role.GRID_MEMBER, grid_id=grid.id))
    for dept in departments:
        add(f"dept_{dept.code}", f"职能部门 handler, {dept.name}",
            Membership(role=Role.DEPARTMENT_HANDLER, department_id=dept.id))
    add("auditor", "督查 auditor, whole community", Membership(role=Role.AUDITOR, community_id=grids[0].community_id))
    add("street", "街道办 street office (escalated cases)",
        Membership(role=Role.STREET_OFFICE, community_id=grids[0].community_id))
    add("admin", "系统管理员 administrator", admin=True)
    # The account programs use (the 12345 hotline bridge, Open311 apps): it may record cases in every grid.
    add("hotline", "12345 热线对接账号 account for programs (API / Open311 token below)",
        *(Membership(role=Role.GRID_MEMBER, grid_id=grid.id) for grid in grids))
    db.flush()
    return staff, logins


def _places(db: Session) -> tuple[list[Grid], list[Department]]:
    """Create the community, its 4 grids with 7 buildings each, and the departments."""
    community = Community(name="幸福社区")
    db.add(community)
    grids = []
    for n in range(1, 5):
        grid = Grid(community=community, code=f"G{n}", name=f"第{n}网格")
        for b in range(1, 8):
            number = (n - 1) * 7 + b
            # Grids side by side along 幸福路, compounds 150 m apart (a made-up spot in Beijing).
            grid.buildings.append(Building(name=f"{number}号楼院", address=f"幸福路{number * 2}号",
                                           latitude=round(39.9000 + (b - 1) * 0.00135, 6),
                                           longitude=round(116.4000 + (n - 1) * 0.0035, 6)))
        grids.append(grid)
    departments = [Department(code=code, name=name) for code, name in DEPARTMENTS]
    db.add_all(grids + departments)
    db.flush()
    return grids, departments


#: How far each demo case travels, as a list of steps after intake.
STAGES = [
    [],  # waiting for the leader to dispatch
    ["member"],  # handling by a grid member
    ["department"],  # referred, handling by a department
    ["member", "extend"],  # extension waiting for the leader
    ["member", "done"],  # waiting for callback
    ["department", "done", "dissatisfied"],  # reopened
    ["member", "done", "unreachable"],  # callback retry
    ["member", "done", "satisfied"],  # waiting for archive review
    ["member", "done", "satisfied", "archive"],
    ["department", "done", "basic", "archive"],
    ["member", "return"],  # returned to the leader
    ["on_spot"],  # answered on the spot, callback pending
    ["on_spot", "satisfied", "archive"],
    ["pool"],  # arrived by hotline, nobody has recorded a reply yet
]


def load(db: Session) -> list[tuple[str, str, str]]:
    """Create all demo data through the real services; return the logins to print."""
    grids, departments = _places(db)
    staff, logins = _people(db, grids, departments)
    svc = for_app(current_app, db)
    for i in range(50):
        grid = grids[i % 4]
        n = grid.code[1:]
        member = staff[f"member{n}{'abc'[i % 3]}"]
        category, text, channel, green = REQUESTS[i % len(REQUESTS)]
        steps = STAGES[i % len(STAGES)]
        intake = RecordCase(resident_name=next(_residents), resident_phone=f"139{10000000 + i * 7919:08d}",
                        building_id=grid.buildings[i % 7].id, category=category, description=text,
                        channel=channel, green_channel=green, address_detail=f"{i % 6 + 1}单元{i % 9 + 1}01室",
                        answered_on_spot=None if steps == ["pool"] else steps[:1] == ["on_spot"],
                        reply="已当场解答政策并告知办理材料。" if steps[:1] == ["on_spot"] else "")
        department = departments[i % len(departments)]
        # Spread the cases over the last two weeks, so some are near or past their limits.
        with clock.shifted(-dt.timedelta(days=(i * 5) % 16, hours=i % 7)):
            case = open_case(svc, member, intake)
            for step in steps:
                _advance(svc, case, step, staff, n, member, department)
    _households(db, svc, grids, staff)
    return logins


HOUSEHOLDS = [
    ("王秀英", "elderly_alone", "94岁，独居，子女在外地。", (1, 4)),
    ("李建国", "elderly_alone", "82岁，行动不便，需定期送药。", (2, 5)),
    ("张小雨", "left_behind_child", "父母在外务工，随祖母生活，上小学四年级。", (3,)),
    ("刘桂兰", "hardship", "低保户，患慢性病。", (1,)),
    ("陈志强", "migrant", "外来务工人员，租住，需登记流动人口信息。", (6,)),
    ("赵淑芬", "elderly_alone", "79岁，独居，听力较差。", (1, 2, 3, 4, 5, 6, 7)),
]


def _households(db: Session, svc, grids: list[Grid], staff: dict) -> None:
    """Register households with visit plans (三定走访), and a few diary notes."""
    for i, (name, group, note, weekdays) in enumerate(HOUSEHOLDS):
        grid = grids[i % 2]
        n = grid.code[1:]
        household = visits.add_household(svc, staff[f"leader{n}"], RegisterHousehold(
            building_id=grid.buildings[i % 7].id, address_detail=f"{i + 1}单元{i + 2}02室", head_name=name,
            phone=f"+86137{10000000 + i * 3571:08d}", care_group=group, note=note))
        visits.add_plan(svc, staff[f"leader{n}"], household, PlanVisits(
            member_id=staff[f"member{n}a"].id, weekdays=list(weekdays), time_of_day=f"{9 + i % 6:02d}:30"))
        visits.add_note(svc, staff[f"member{n}a"], household, AddNote(text=f"初次入户：{note}已建立联系卡。"))


def catch_up(app: Flask) -> int:
    """Start yesterday's visits (some show as missed) and today's, then fire what is due; return how many fired."""
    today = clock.now().astimezone(app.extensions["gridloop.calendar"].zone).date()
    with clock.shifted(-dt.timedelta(days=1)):
        jobs.start_visits(app, today - dt.timedelta(days=1))
    jobs.start_visits(app, today)
    return jobs.tick(app).fired


_residents = (s + "先生" if i % 2 else s + "女士" for i, s in enumerate(itertools.cycle(SURNAMES)))


def _advance(svc, case: Case, step: str, staff: dict, n: str, member: User, department: Department) -> None:
    """Take one demo step on a case, as the person whose turn it is."""
    task = next((t for t in case.tasks if t.status == TaskStatus.OPEN), None)
    if task is None or step in ("pool", "on_spot"):
        return
    leader = staff[f"leader{n}"]
    handler = staff[f"member{n}b"]
    if step in ("member", "department"):
        complete_task(svc, leader, task.id, case.version, Dispatch(
            dispatch_to=step, handler_id=handler.id, department_id=department.id, deadline_class="general"))
    elif step in ("done", "extend", "return"):
        actor = handler if task.role == Role.GRID_MEMBER else staff[f"dept_{department.code}"]
        complete_task(svc, actor, task.id, case.version, Handle(
            handle_action=step, extension_days=3 if step == "extend" else None,
            text={"done": "已上门处理完毕，居民确认。", "extend": "需等待配件到货。",
                  "return": "不属于本网格范围，请重新派单。"}[step]))
    elif step in ("satisfied", "basic", "dissatisfied", "unreachable"):
        actor = task.assignee or member
        complete_task(svc, actor, task.id, case.version, Callback(satisfaction=step))
    elif step == "archive":
        complete_task(svc, leader, task.id, case.version, ReviewArchive(confirm=True, comment="记录完整，同意归档。"))
