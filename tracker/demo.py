"""Demo data: one community, 4 grids, 28 buildings, staff, departments and ~50 cases."""

from __future__ import annotations

import datetime as dt
import itertools

from flask import Flask, current_app
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from . import clock, jobs
from .models import Building, Case, Community, Department, Grid, Membership, Role, TaskStatus, User
from .services import assign, desk, duplicates, for_app, replies, visits
from .services.cases import complete_task, open_case
from .services.commands import (
    AddNote,
    Callback,
    Dispatch,
    Handle,
    LinkDuplicate,
    PlanDeskSessions,
    PlanVisits,
    RecordCase,
    RegisterHousehold,
    ReviewArchive,
    SaveReplyTemplate,
)

PASSWORD = "gridloop2026"
DEPARTMENTS = [
    ("civil_affairs", "民政办"), ("legal_aid", "法律援助站"), ("employment", "就业服务站"),
    ("medical_insurance", "医保站"), ("pension", "社保养老站"), ("property", "物业维修中心"),
    ("security", "综治中心"), ("city_management", "城管中队"), ("family_planning", "计生办"),
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
#: The staff's names, in the order they are handed out: as varied as a real office's (not 王X, 李X, ...).
STAFF_NAMES = [
    "张丽华", "刘志强", "陈晓燕", "杨海涛", "赵春梅", "黄文斌", "周玉兰", "吴振华", "徐丽娟", "孙国庆",
    "胡晓东", "朱红霞", "高建军", "林美玲", "何家俊", "郭淑芬", "马永刚", "罗雪梅", "梁志明", "宋佳怡",
    "郑德胜", "谢婷婷", "韩立新", "唐晓明", "冯秀兰", "于海燕", "董卫东", "萧雅琴", "程浩然", "曹金凤",
    "袁明辉", "邓丽萍", "许文博", "傅春燕", "沈建平", "彭小红",
]
#: The department a demo case of each category is referred to (the configured proposal first, then these).
DEMO_DEPARTMENTS = {"certificates": "civil_affairs", "dispute_mediation": "legal_aid", "other": "civil_affairs"}
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
    names = iter(STAFF_NAMES)
    pw = generate_password_hash(PASSWORD)
    staff: dict[str, User] = {}
    logins = []

    def add(username: str, what: str, *memberships: Membership, admin: bool = False, program: str = "") -> User:
        user = User(username=username, display_name=program or next(names), password_hash=pw, is_admin=admin,
                    is_program=bool(program), phone=f"1380000{len(staff):04d}", memberships=list(memberships))
        db.add(user)
        staff[username] = user
        logins.append((username, "(token only)" if program else PASSWORD, f"{user.display_name} — {what}"))
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
    # The account programs use (the 12345 hotline bridge, Open311 apps): it may record cases in every grid, and
    # is no person: never offered work, no password login (`flask demo` prints its token).
    add("hotline", "account for programs (token below)",
        *(Membership(role=Role.GRID_MEMBER, grid_id=grid.id) for grid in grids), program="12345热线对接")
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
        department = _department_for(category, departments)
        # Spread the cases over the last two weeks, so some are near or past their limits.
        with clock.shifted(-dt.timedelta(days=(i * 5) % 16, hours=i % 7)):
            case = open_case(svc, member, intake)
            for step in steps:
                _advance(svc, case, step, staff, n, member, department)
    _households(db, svc, grids, staff)
    _duplicate_call(svc, grids, staff)
    _reply_templates(svc, grids, staff)
    _public_notice_and_desk(svc, grids, staff)
    _hotspot(svc, grids, staff)
    return logins


def _hotspot(svc, grids: list[Grid], staff: dict) -> None:
    """Three calls about one compound's water pressure in two days: a hotspot (未诉先办) for grid 1's leader."""
    from .services import hotspots
    building = grids[0].buildings[1]
    for n, name in enumerate(("赵先生", "钱女士", "孙大爷")):
        with clock.shifted(-dt.timedelta(days=2 - n)):
            open_case(svc, staff["member1a"], RecordCase(
                resident_name=name, resident_phone=f"1391234{5670 + n}", building_id=building.id,
                category="property_repair", description="五楼以上水压低，早晚用水高峰几乎没水。", channel="phone",
                address_detail=f"{n + 3}单元501室", answered_on_spot=False, reply=""))
    hotspots.scan(svc, clock.now())


def _public_notice_and_desk(svc, grids: list[Grid], staff: dict) -> None:
    """Publish each grid's hours, services and staff phones (网格公示); plan grid 1's mobile desk route."""
    for grid in grids:
        n = grid.code[1:]
        grid.office_hours = "周一至周五 8:30-12:00，14:00-17:30；周六上午值班"
        grid.service_items = "政策咨询\n证明代办\n矛盾调解\n就业登记\n老年人优待证办理"
        staff[f"leader{n}"].public_phone = True
        staff[f"leader{n}"].duty_phone = f"010-6666{int(n):04d}"
        for i in "abc":
            staff[f"member{n}{i}"].public_phone = True
    # Every Tuesday, compounds 1-7 in turn, from the coming Tuesday (today, if it is one); and one today.
    today = assign.local_today(svc)
    tuesday = today + dt.timedelta(days=(1 - today.weekday()) % 7)
    leader, crew = staff["leader1"], [staff["member1a"].id, staff["member1b"].id]
    desk.plan_sessions(svc, leader, grids[0], PlanDeskSessions(
        building_ids=[b.id for b in grids[0].buildings], first_day=tuesday, starts_at="09:00", ends_at="11:30",
        staff_ids=crew, weeks=7))
    if tuesday != today:
        desk.plan_sessions(svc, leader, grids[0], PlanDeskSessions(
            address="幸福广场东门", first_day=today, starts_at="15:00", ends_at="17:00", staff_ids=crew))


#: Reply templates (常用语) every demo grid starts with: (category or "" for all, use, title, text).
REPLY_TEMPLATES = [
    ("", "reply", "已登记转办", "{name}您好，您反映的问题已登记（编号{number}），我们会尽快安排人员处理并回复您。"),
    ("certificates", "reply", "证明材料", "{name}您好，开具居住证明请携带身份证、户口本到社区服务台办理，当场可取。"),
    ("property_repair", "result", "维修完成", "已安排维修人员上门，{name}家的问题已修复，居民现场确认。"),
    ("", "result", "已电话答复", "已电话联系{name}，说明了办理流程和所需材料，居民表示清楚。"),
    ("", "callback", "回访话术",
     "{name}您好，我是社区网格员，关于您反映的问题（编号{number}），想问一下处理结果您是否满意？"),
]


def _duplicate_call(svc, grids: list[Grid], staff: dict) -> None:
    """A resident calls twice about the same light: the leader links the second call to the first (重复件)."""
    grid, n = grids[0], grids[0].code[1:]
    calls = [open_case(svc, staff[f"member{n}a"], RecordCase(
        resident_name="宋桂芳", resident_phone="13988886666", building_id=grid.buildings[0].id,
        category="property_repair", description=text, channel="phone", address_detail="2单元302室", reply=""))
        for text in ("2单元楼道灯坏了，晚上看不见台阶。", "又打电话来问：2单元楼道灯还是不亮。")]
    duplicates.link_duplicate(svc, staff[f"leader{n}"], calls[1].id,
                              LinkDuplicate(version=calls[1].version, main_number=calls[0].number))


def _reply_templates(svc, grids: list[Grid], staff: dict) -> None:
    """Give every grid a few reply templates, kept by its leader."""
    for grid in grids:
        for category, use, title, text in REPLY_TEMPLATES:
            replies.create_template(svc, staff[f"leader{grid.code[1:]}"], SaveReplyTemplate(
                grid_id=grid.id, category=category, use=use, title=title, text=text))


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


def present_logins(db: Session) -> list[tuple[str, str, str]]:
    """Return the logins of a demo loaded before (passwords are the demo's unless someone changed them)."""
    from sqlalchemy import select
    users = db.scalars(select(User).where(User.active.is_(True)).order_by(User.id)).all()
    return [(u.username, "(token only)" if u.is_program else PASSWORD, f"{u.display_name} — {_roles(u)}")
            for u in users]


#: How the printed logins name each role.
ROLE_NAMES = {Role.GRID_LEADER: "网格长 grid leader", Role.GRID_MEMBER: "网格员 grid member",
              Role.DEPARTMENT_HANDLER: "职能部门 handler", Role.AUDITOR: "督查 auditor",
              Role.STREET_OFFICE: "街道办 street office"}


def _roles(user: User) -> str:
    """Say what a user is, as the printed logins do."""
    if user.is_program:
        return "account for programs (token below)"
    names = sorted({ROLE_NAMES[m.role] for m in user.memberships})
    return ", ".join(names + (["系统管理员 administrator"] if user.is_admin else [])) or "-"


def _department_for(category: str, departments: list[Department]) -> Department:
    """Return the department a demo case of ``category`` is referred to: one that does that work."""
    code = current_app.config["GRIDLOOP"]["dispatch"]["departments"].get(category) or DEMO_DEPARTMENTS[category]
    return next(d for d in departments if d.code == code)


def _advance(svc, case: Case, step: str, staff: dict, n: str, member: User, department: Department) -> None:
    """Take one demo step on a case, as the person whose turn it is."""
    task = next((t for t in case.tasks if t.status == TaskStatus.OPEN), None)
    if task is None or step in ("pool", "on_spot"):
        return
    leader = staff[f"leader{n}"]
    handler = staff[f"member{n}b"]
    if step in ("member", "department"):
        complete_task(svc, leader, task.id, case.version, Dispatch(
            dispatch_to=step, handler_id=handler.id, department_id=department.id, deadline_class="general",
            dispatch_note="请先电话联系居民，上门核实后处理。"))
    elif step in ("done", "extend", "return"):
        actor = handler if task.role == Role.GRID_MEMBER else staff[f"dept_{department.code}"]
        complete_task(svc, actor, task.id, case.version, Handle(
            handle_action=step, extension_days=3 if step == "extend" else None,
            text={"done": "已上门处理完毕，居民确认。", "extend": "需等待配件到货。",
                  "return": "不属于本网格范围，请重新派单。"}[step]))
    elif step in ("satisfied", "basic", "dissatisfied", "unreachable"):
        actor = task.assignee or member
        complete_task(svc, actor, task.id, case.version, Callback(
            satisfaction=step, note="居民反映灯还是时亮时不亮，希望彻底修好。" if step == "dissatisfied" else ""))
    elif step == "archive":
        complete_task(svc, leader, task.id, case.version, ReviewArchive(confirm=True, comment="记录完整，同意归档。"))
