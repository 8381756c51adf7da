"""The numbers: every rate from cases with known timestamps (travelling in time), across a holiday, an
extension, a reopening (重办) and a linked duplicate; each figure's cases are the case list's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import inspect, select

from tests.conftest import building_id, configured_app, user_id
from tracker.db import get_session
from tracker.deadlines import DueWindow
from tracker.models import Case, DuplicateLink, Task, TaskStatus, User
from tracker.queries import filtered_cases, stats
from tracker.services import for_app
from tracker.services.cases import complete_task, open_case, sign_for
from tracker.services.commands import Callback, Dispatch, Handle, RecordCase, ReviewArchive, ReviewExtension

SH = ZoneInfo("Asia/Shanghai")
#: The period of the scenario: 28 Sep to 31 Oct 2026 (National Day, 1-7 Oct, inside).
PERIOD = stats.Period("custom", dt.date(2026, 9, 28), dt.date(2026, 10, 31))


def local(*args) -> dt.datetime:
    """A moment in Beijing time."""
    return dt.datetime(*args, tzinfo=SH)


def at(app, moment: dt.datetime, act: Callable):
    """Run ``act(svc, person)`` at ``moment`` in one transaction, as a request would; return its result."""
    with time_machine.travel(moment, tick=False), app.app_context():
        session = get_session()
        svc = for_app(app, session)
        result = act(svc, lambda name: session.scalar(select(User).where(User.username == name)))
        session.commit()
        return result


def record(app, db, moment: dt.datetime, *, on_spot: bool = False, grid: str = "GA", category: str = "property_repair",
           **extra) -> int:
    """Record a case at ``moment`` as the grid's member; return its id."""
    member = "member_a" if grid == "GA" else "member_b"
    intake = RecordCase(channel=extra.pop("channel", "phone"), resident_name="张阿姨", resident_phone="13812345678",
                        building_id=building_id(db, grid), category=category, description="楼道灯不亮",
                        answered_on_spot=on_spot, reply="已当场答复" if on_spot else "", **extra)
    return at(app, moment, lambda svc, who: open_case(svc, who(member), intake).id)


def act(app, moment: dt.datetime, case_id: int, form_key: str, actor: str, command) -> None:
    """Complete the case's open task ``form_key`` at ``moment`` as ``actor``."""
    def run(svc, who):
        task = svc.session.scalar(select(Task).where(Task.case_id == case_id, Task.status == TaskStatus.OPEN,
                                                     Task.form_key == form_key))
        assert task is not None, f"case {case_id} has no open {form_key} task"
        # Whoever holds the task acts (the callback goes to whom the grid's rules give it); else ``actor``.
        person = svc.session.get(User, task.assignee_id) if task.assignee_id else who(actor)
        complete_task(svc, person, task.id, task.case.version, command)
    at(app, moment, run)


def dispatch(app, db, moment: dt.datetime, case_id: int, leader: str = "leader_a", member: str = "member_a") -> None:
    """Dispatch the case to a member with the general limit (7 working days)."""
    act(app, moment, case_id, "dispatch", leader,
        Dispatch(dispatch_to="member", handler_id=user_id(db, member), deadline_class="general"))


def sign(app, moment: dt.datetime, case_id: int, member: str = "member_a") -> None:
    """Sign for (签收) the case's handling task."""
    def run(svc, who):
        task = svc.session.scalar(select(Task).where(Task.case_id == case_id, Task.status == TaskStatus.OPEN,
                                                     Task.form_key == "handle"))
        sign_for(svc, who(member), task.id, task.case.version)
    at(app, moment, run)


def handle(app, moment: dt.datetime, case_id: int, member: str = "member_a") -> None:
    """Complete handling with a result."""
    act(app, moment, case_id, "handle", member, Handle(handle_action="done", text="已修好"))


def callback(app, moment: dt.datetime, case_id: int, answer: str) -> None:
    """Record the resident's answer at the callback (the recorder phones them)."""
    act(app, moment, case_id, "callback", "member_a", Callback(satisfaction=answer, note="灯还是不亮"))


def build_scenario(app, db) -> dict[str, int]:
    """Record the scenario's cases; return their ids by letter (see the test's comments)."""
    ids = {}
    # A: dispatched Wed 30 Sep 10:00 before National Day: sign for by Thu 8 Oct 10:00, handle by Thu 15 Oct.
    ids["A"] = record(app, db, local(2026, 9, 30, 9, 50))
    dispatch(app, db, local(2026, 9, 30, 10, 0), ids["A"])
    sign(app, local(2026, 10, 8, 9, 0), ids["A"])
    handle(app, local(2026, 10, 14, 10, 0), ids["A"])
    callback(app, local(2026, 10, 14, 15, 0), ids["A"], "satisfied")
    act(app, local(2026, 10, 15, 9, 0), ids["A"], "review_archive", "leader_a", ReviewArchive(confirm=True))
    # B: dispatched Mon 12 Oct 10:00 (sign for by 13 Oct 10:00, handle by Wed 21 Oct 10:00), signed an hour
    # late, 3 working days' extension approved (limit Mon 26 Oct), handled Fri 23 Oct: on time as extended,
    # late against the original limit. The resident is dissatisfied: reopened (重办), handled again, "basic".
    ids["B"] = record(app, db, local(2026, 10, 12, 9, 0))
    dispatch(app, db, local(2026, 10, 12, 10, 0), ids["B"])
    sign(app, local(2026, 10, 13, 11, 0), ids["B"])
    act(app, local(2026, 10, 19, 10, 0), ids["B"], "handle", "member_a",
        Handle(handle_action="extend", text="需要采购配件", extension_days=3))
    act(app, local(2026, 10, 19, 11, 0), ids["B"], "review_extension", "leader_a",
        ReviewExtension(decision="approve"))
    handle(app, local(2026, 10, 23, 10, 0), ids["B"])
    callback(app, local(2026, 10, 23, 16, 0), ids["B"], "dissatisfied")
    handle(app, local(2026, 10, 26, 10, 0), ids["B"])
    callback(app, local(2026, 10, 26, 16, 0), ids["B"], "basic")
    # C: dispatched 12 Oct 10:00 and left alone: late to respond, overdue once 21 Oct 10:00 passes.
    ids["C"] = record(app, db, local(2026, 10, 12, 9, 30))
    dispatch(app, db, local(2026, 10, 12, 10, 0), ids["C"])
    # D: answered on the spot.
    ids["D"] = record(app, db, local(2026, 10, 12, 11, 0), on_spot=True, channel="walk_in")
    # E: C's duplicate (重复件), linked to it: left out of every figure, though dispatched and never signed for.
    ids["E"] = record(app, db, local(2026, 10, 13, 9, 0))
    dispatch(app, db, local(2026, 10, 13, 10, 0), ids["E"])
    db.add(DuplicateLink(case_id=ids["E"], main_case_id=ids["C"], linked_by_id=user_id(db, "leader_a"),
                         linked_at=local(2026, 10, 13, 10, 5)))
    db.commit()
    # F: dispatched Thu 29 Oct 15:00: at the scenario's "now" (Fri 30 Oct 12:00) nothing is decided yet.
    ids["F"] = record(app, db, local(2026, 10, 29, 14, 0), category="city_management")
    dispatch(app, db, local(2026, 10, 29, 15, 0), ids["F"])
    # G: recorded before the period: not counted.
    ids["G"] = record(app, db, local(2026, 9, 15, 9, 0))
    # H: grid B's, signed for in time: counted for grid B only.
    ids["H"] = record(app, db, local(2026, 10, 20, 9, 0), grid="GB")
    dispatch(app, db, local(2026, 10, 20, 10, 0), ids["H"], leader="leader_b", member="member_b")
    sign(app, local(2026, 10, 20, 11, 0), ids["H"], member="member_b")
    return ids


def figures(app, username: str, now: dt.datetime, defs: stats.Definitions | None = None,
            scope: stats.Scope | None = None, by: str | None = None):
    """Return the tallies ``username`` sees at ``now`` for the scenario's period."""
    with app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.username == username))
        return stats.tallies(session, user, scope or stats.Scope(), PERIOD, SH, now,
                             defs or stats.Definitions(), by=by)


def list_ids(app, username: str, now: dt.datetime, **filters: str) -> set[int]:
    """Return the ids of the case list (its own query) under ``filters`` at ``now``."""
    with app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.username == username))
        f = {k: "" for k in ("status", "grid", "category", "channel", "date_from", "date_to", "q", "deadline",
                             "department", "handler", "fig", "outcome")} | filters
        window = DueWindow(now, now + dt.timedelta(hours=24))
        return set(session.scalars(filtered_cases(user, f, window, SH).with_only_columns(Case.id)))


@pytest.fixture
def scenario(app, db) -> dict[str, int]:
    """The scenario's cases, recorded in grid A (and one in grid B)."""
    return build_scenario(app, db)


NOW = local(2026, 10, 30, 12, 0)


def test_the_facts_each_case_keeps(app, db, scenario):
    db.expire_all()
    a, b = db.get(Case, scenario["A"]), db.get(Case, scenario["B"])
    assert a.first_dispatched_at == local(2026, 9, 30, 10, 0)
    assert a.respond_by == local(2026, 10, 8, 10, 0)  # one working day, National Day skipped
    assert a.first_due_at == a.handled_due_at == local(2026, 10, 15, 10, 0)
    assert a.responded_at == local(2026, 10, 8, 9, 0)
    assert a.handled_at == local(2026, 10, 14, 10, 0)
    # Office hours 09:00-17:00: 30 Sep 7 h, 8-10 Oct 24 h (Sat 10 Oct is a make-up working day), 12-13 Oct 16 h,
    # 14 Oct 1 h; the holidays and Sunday count nothing.
    assert a.handling_minutes == 48 * 60
    assert a.first_outcome == "satisfied"
    assert b.first_due_at == local(2026, 10, 21, 10, 0)
    assert b.handled_due_at == local(2026, 10, 26, 10, 0)  # the approved extension
    assert b.handled_at == local(2026, 10, 23, 10, 0)  # the first handling, not the one after reopening
    assert b.handling_minutes == 72 * 60
    assert (b.first_outcome, b.outcome, b.reopen_count) == ("dissatisfied", "basic", 1)
    assert db.get(Case, scenario["D"]).answered_on_spot is True
    assert db.get(Case, scenario["C"]).responded_at is None


def test_every_rate_of_grid_a(app, scenario):
    [t] = figures(app, "leader_a", NOW)
    counts = {name: t[name] for name in stats.COUNTED}
    assert counts == {"recorded": 5, "on_spot": 1, "dispatched": 4, "response_due": 3, "responded": 1,
                      "handling_due": 3, "on_time": 2, "overdue": 1, "handled": 2, "reached": 2, "satisfied": 1,
                      "basic": 0, "dissatisfied": 1, "reopened": 1}
    rates = t.rates(stats.Definitions())
    assert rates["response_rate"] == pytest.approx(1 / 3)  # A in time; B an hour late; C never; F undecided
    assert rates["on_time_rate"] == pytest.approx(2 / 3)  # A, B (extended); C overdue; F undecided
    assert rates["overdue_rate"] == pytest.approx(1 / 3)
    assert rates["resolution_rate"] == pytest.approx(1 / 2)  # the first answers: satisfied, dissatisfied
    assert rates["satisfaction_rate"] == pytest.approx(0.5)  # (1.0 + 0.0) / 2
    assert rates["reopen_rate"] == pytest.approx(1 / 2)
    assert rates["on_spot_share"] == pytest.approx(1 / 5)
    assert rates["handling_hours"] == pytest.approx(60.0)  # (48 + 72) / 2 working hours


def test_extensions_counted_as_configured(app, scenario):
    original = stats.Definitions(extensions="original")
    [t] = figures(app, "leader_a", NOW, original)
    # B was handled after its original limit (21 Oct) though within the extended one (26 Oct).
    assert (t["on_time"], t["overdue"], t["handling_due"]) == (1, 2, 3)
    assert list_ids(app, "leader_a", NOW, fig="overdue.original", **PERIOD.args()) == {scenario["B"], scenario["C"]}
    assert list_ids(app, "leader_a", NOW, fig="overdue", **PERIOD.args()) == {scenario["C"]}


def test_weights_and_resolved_answers_are_configurable(app, scenario):
    [t] = figures(app, "leader_a", NOW)
    defs = stats.Definitions(resolved=("satisfied", "basic", "dissatisfied"),
                             weights={"satisfied": 1.0, "basic": 0.5, "dissatisfied": 0.2})
    assert t.rates(defs)["resolution_rate"] == pytest.approx(1.0)
    assert t.rates(defs)["satisfaction_rate"] == pytest.approx((1.0 + 0.2) / 2)


def test_the_clock_alone_moves_a_figure_no_timer_needed(app, scenario):
    # Just before C's limit (Wed 21 Oct 10:00) its handling is undecided; just after, it is overdue: the
    # figures compare with "now", so no timer has to fire (and none did) for them to be right.
    before, after = local(2026, 10, 21, 9, 59), local(2026, 10, 21, 10, 1)
    [t] = figures(app, "leader_a", before)
    assert (t["handling_due"], t["overdue"]) == (2, 0)  # A and B, both handled
    assert list_ids(app, "leader_a", before, fig="overdue", **PERIOD.args()) == set()
    [t] = figures(app, "leader_a", after)
    assert (t["handling_due"], t["overdue"]) == (3, 1)
    assert list_ids(app, "leader_a", after, fig="overdue", **PERIOD.args()) == {scenario["C"]}


def test_each_figure_lists_exactly_its_cases(app, scenario):
    c = scenario
    expected = {"recorded": {c["A"], c["B"], c["C"], c["D"], c["F"]}, "on_spot": {c["D"]},
                "dispatched": {c["A"], c["B"], c["C"], c["F"]}, "response_due": {c["A"], c["B"], c["C"]},
                "responded": {c["A"]}, "response_late": {c["B"], c["C"]}, "handling_due": {c["A"], c["B"], c["C"]},
                "on_time": {c["A"], c["B"]}, "overdue": {c["C"]}, "handled": {c["A"], c["B"]},
                "reached": {c["A"], c["B"]}, "satisfied": {c["A"]}, "dissatisfied": {c["B"]}, "reopened": {c["B"]}}
    [t] = figures(app, "leader_a", NOW)
    for name, ids in expected.items():
        assert list_ids(app, "leader_a", NOW, fig=name, grid=str(user_grid(app, "GA")), **PERIOD.args()) == ids, name
        if name in stats.COUNTED:
            assert t[name] == len(ids), name
    assert list_ids(app, "leader_a", NOW, fig="reached", outcome="satisfied,basic", **PERIOD.args()) == {c["A"]}
    # An unknown figure matches nothing (never everything).
    assert list_ids(app, "leader_a", NOW, fig="bogus") == set()
    assert list_ids(app, "leader_a", NOW, fig="recorded.original") == set()


def user_grid(app, code: str) -> int:
    """Return a grid's id."""
    from tracker.models import Grid
    with app.app_context():
        return get_session().scalar(select(Grid.id).where(Grid.code == code))


def test_groups_by_grid_member_and_category_and_the_street_office_sees_all(app, db, scenario):
    by_grid = {t.key: t for t in figures(app, "street", NOW, by="grid")}
    assert by_grid[user_grid(app, "GA")]["recorded"] == 5
    assert by_grid[user_grid(app, "GB")]["recorded"] == 1
    assert by_grid[user_grid(app, "GB")]["responded"] == 1
    # A leader of grid A sees only grid A's cases.
    assert {t.key for t in figures(app, "leader_a", NOW, by="grid")} == {user_grid(app, "GA")}
    by_member = {t.key: t for t in figures(app, "leader_a", NOW, by="handler")}
    assert by_member[user_id(db, "member_a")]["dispatched"] == 4
    by_category = {t.key: t["recorded"] for t in figures(app, "leader_a", NOW, by="category")}
    assert by_category == {"property_repair": 4, "city_management": 1}
    by_channel = {t.key: t["recorded"] for t in figures(app, "leader_a", NOW, by="channel")}
    assert by_channel == {"phone": 4, "walk_in": 1}
    ranked = stats.ranked(list(by_grid.values()), stats.Definitions())
    assert ranked[0].key == user_grid(app, "GA")  # grid B has no callback yet: last


def test_today_board_and_trend(app, db, scenario):
    with app.app_context():
        session = get_session()
        leader = session.scalar(select(User).where(User.username == "leader_a"))
        window = DueWindow(NOW, NOW + dt.timedelta(hours=24))
        today = stats.today_counts(session, leader, stats.Scope(), window)[None]
        # Open now, whenever recorded: B (archive review), C, D (callback), F and G; A is archived, E a duplicate.
        assert today == {"open": 5, "due_soon": 0, "overdue": 1}
        weeks = stats.weekly(session, leader, stats.Scope(), NOW.date(), SH, NOW, stats.Definitions())
        session.rollback()
    assert list_ids(app, "leader_a", NOW, fig="open") == {scenario[k] for k in "BCDFG"}
    # The board's links add fig=open, which leaves the duplicate out as the count does.
    assert list_ids(app, "leader_a", NOW, fig="open", deadline="overdue") == {scenario["C"]}
    assert len(weeks) == 8 and weeks[-1][0].first == dt.date(2026, 10, 26)
    per_week = {w.first: t["recorded"] for w, t in weeks}
    assert per_week[dt.date(2026, 9, 28)] == 1 and per_week[dt.date(2026, 10, 12)] == 3
    assert per_week[dt.date(2026, 10, 26)] == 1 and per_week[dt.date(2026, 9, 14)] == 1  # G


def test_periods():
    day = dt.date(2026, 11, 18)
    assert stats.period_of("week", day) == stats.Period("week", dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    month = stats.period_of("month", day)
    assert (month.first, month.last) == (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert month.previous() == stats.Period("month", dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    quarter = stats.period_of("quarter", day)
    assert (quarter.first, quarter.last) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert quarter.previous().first == dt.date(2026, 7, 1)
    custom = stats.period_of("custom", day, dt.date(2026, 11, 3), dt.date(2026, 11, 9))
    assert custom.previous() == stats.Period("custom", dt.date(2026, 10, 27), dt.date(2026, 11, 2))
    # A custom period backwards falls back to the month.
    assert stats.period_of("custom", day, dt.date(2026, 11, 9), dt.date(2026, 11, 3)).kind == "month"


def test_bad_definitions_fail_at_start_naming_the_key(database_url):
    from tracker.config import ConfigError
    for section, key in (({"extensions": "sometimes"}, "stats.extensions"),
                         ({"basic_weight": 1.5}, "stats.basic_weight"),
                         ({"office_hours": ["18:00", "09:00"]}, "stats.office_hours"),
                         ({"resolved_outcomes": ["unreachable"]}, "stats.resolved_outcomes")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")), configured_app(database_url, stats=section):
            pass


# -- the dashboards --------------------------------------------------------------------------------

def _period_query() -> str:
    return f"period=custom&from={PERIOD.first}&to={PERIOD.last}"


def test_leader_dashboard_figures_link_to_exactly_their_cases(app, db, login, scenario):
    with time_machine.travel(NOW, tick=False):
        leader = login("leader_a")
        home = leader.get(f"/numbers/?{_period_query()}")
        assert home.status_code == 302 and f"/numbers/grids/{user_grid(app, 'GA')}" in home.location
        page = leader.get(home.location)
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert 'data-rate="response_rate"' in html and "33.3%" in html  # 1 of 3
        assert "66.7%" in html and "60.0" in html  # on time 2 of 3; 60 working hours
        links = _figure_links(html)
        overdue = leader.get(links["overdue"]).get_data(as_text=True)
        numbers = _numbers(db, scenario)
        assert numbers["C"] in overdue and numbers["B"] not in overdue and numbers["A"] not in overdue
        assert "超期办结或超期未办" in overdue and 'name="fig" value="overdue"' in overdue  # stated, and kept
        late = leader.get(links["response_due"]).get_data(as_text=True)
        assert all(numbers[k] in late for k in "ABC") and numbers["F"] not in late and numbers["E"] not in late
        now_overdue = leader.get(links["overdue_now"]).get_data(as_text=True)
        assert numbers["C"] in now_overdue and numbers["E"] not in now_overdue
        # The member table names the member, with their open cases now.
        assert "网格员甲" in html


def _figure_links(html: str) -> dict[str, str]:
    """Return the first link of each figure on a dashboard (data-fig)."""
    import html as markup
    import re
    found: dict[str, str] = {}
    for href, fig in re.findall(r'<a href="([^"]+)" data-fig="([^"]+)"', html):
        found.setdefault(fig, markup.unescape(href))
    return found


def _numbers(db, scenario: dict[str, int]) -> dict[str, str]:
    db.expire_all()
    return {k: db.get(Case, v).number for k, v in scenario.items()}


def test_street_office_and_auditor_see_every_grid_ranked_members_do_not(app, db, login, scenario):
    with time_machine.travel(NOW, tick=False):
        for username in ("street", "auditor"):
            person = login(username)
            assert person.get("/numbers/").status_code == 302
            page = person.get(f"/numbers/area?{_period_query()}")
            html = page.get_data(as_text=True)
            assert page.status_code == 200
            assert 'data-grid="GA"' in html and 'data-grid="GB"' in html
            assert html.index('data-grid="GA"') < html.index('data-grid="GB"')  # grid B has no callback yet
            links = _figure_links(html)
            listed = person.get(links["recorded"]).get_data(as_text=True)
            numbers = _numbers(db, scenario)
            assert all(numbers[k] in listed for k in "ABCDFH") and numbers["E"] not in listed
        member = login("member_a")
        assert member.get("/numbers/").status_code == 403
        assert member.get(f"/numbers/grids/{user_grid(app, 'GA')}").status_code == 403
        assert member.get("/numbers/area").status_code == 403
        # A leader sees their own grid, not another.
        assert login("leader_b").get(f"/numbers/grids/{user_grid(app, 'GA')}").status_code == 403


# -- the API ------------------------------------------------------------------------------------------

def _token(app, username: str) -> dict[str, str]:
    from tracker.services import tokens
    with app.app_context():
        session = get_session()
        _row, secret = tokens.create(session, session.scalar(select(User).where(User.username == username)), "t")
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_the_api_gives_the_same_figures(app, db, scenario):
    client = app.test_client()
    query = {"period": "custom", "from": str(PERIOD.first), "to": str(PERIOD.last)}
    with time_machine.travel(NOW, tick=False):
        street = _token(app, "street")
        answer = client.get("/api/v1/stats", query_string={**query, "by": "grid"}, headers=street)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        body = answer.get_json()
        [t] = figures(app, "street", NOW)
        assert body["total"]["counts"] == {name: t[name] for name in stats.COUNTED}
        assert body["total"]["rates"]["handling_hours"] == pytest.approx(60.0)
        assert [g["key"] for g in body["groups"]] == [user_grid(app, "GA"), user_grid(app, "GB")]
        grid_a = client.get("/api/v1/stats", query_string={**query, "grid": user_grid(app, "GA")}, headers=street)
        assert grid_a.get_json()["total"]["rates"]["response_rate"] == pytest.approx(1 / 3)
        # A leader reads their grid's figures (by default), never another grid's; a member reads none.
        leader = _token(app, "leader_a")
        assert client.get("/api/v1/stats", query_string=query, headers=leader).get_json()["total"]["counts"][
            "recorded"] == 5
        assert client.get("/api/v1/stats", query_string={"grid": user_grid(app, "GB")}, headers=leader
                          ).status_code == 403
        assert client.get("/api/v1/stats", headers=_token(app, "member_a")).status_code == 403
        # Bad parameters are named, and nothing else happens.
        bad = client.get("/api/v1/stats", query_string={"period": "custom", "from": "2026-10-31", "to": "2026-10-01",
                                                        "by": "mood", "grid": "x"}, headers=street)
        assert bad.status_code == 400
        assert {e["field"] for e in bad.get_json()["errors"]} == {"from", "by", "grid"}
        # The case list takes the same figures.
        listed = client.get("/api/v1/cases", query_string={"fig": "overdue", "date_from": str(PERIOD.first),
                                                           "date_to": str(PERIOD.last)}, headers=street).get_json()
        # C, and grid B's H (signed for, unhandled past its limit, Thu 29 Oct 10:00).
        assert {c["id"] for c in listed["items"]} == {scenario["C"], scenario["H"]}
        wrong = client.get("/api/v1/cases", query_string={"fig": "everything", "outcome": "happy"}, headers=street)
        assert {e["field"] for e in wrong.get_json()["errors"]} == {"fig", "outcome"}


def test_migration_0015_replays_the_same_facts_from_the_chains(app, db, scenario):
    import importlib.util
    from pathlib import Path

    from sqlalchemy import text
    path = Path(__file__).resolve().parents[2] / "migrations/versions/0015_numbers_reports_hotspots.py"
    spec = importlib.util.spec_from_file_location("migration_0015", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    names = ("first_dispatched_at", "respond_by", "first_due_at", "responded_at", "handled_at", "handled_due_at",
             "handling_minutes", "answered_on_spot", "first_outcome")
    db.expire_all()
    live = {c.id: tuple(getattr(c, n) for n in names) for c in db.scalars(select(Case))}
    assert any(facts[0] for facts in live.values())
    engine = app.extensions["gridloop.db"]
    with engine.begin() as connection:
        # As before the revision: no facts (its upgrade adds the columns empty, then replays the chains).
        connection.execute(text('UPDATE "case" SET first_dispatched_at = NULL, respond_by = NULL, first_due_at = NULL, '
                                'responded_at = NULL, handled_at = NULL, handled_due_at = NULL, '
                                'handling_minutes = NULL, answered_on_spot = false, first_outcome = NULL'))
        migration.replay(connection)
    db.expire_all()
    replayed = {c.id: tuple(getattr(c, n) for n in names) for c in db.scalars(select(Case))}
    assert replayed == live


def _from_cases(monkeypatch) -> None:
    """Make the figures read every case (the path of a department's scope) instead of the day totals."""
    monkeypatch.setattr(stats, "day_total_grids", lambda user, scope: stats.NOT_BY_GRID)


@pytest.mark.parametrize("extensions", ["extended", "original"])
def test_the_day_totals_give_the_figures_the_cases_give(app, db, scenario, monkeypatch, extensions):
    """Area, grid and community figures, per grid and per week, at moments before, between and after the limits
    pass, read from the day totals are those read from every case."""
    defs = stats.Definitions(extensions=extensions)
    community = db.get(Case, scenario["A"]).grid.community_id
    moments = [local(2026, 10, 12, 9, 59), local(2026, 10, 21, 10, 1), NOW, local(2027, 3, 1, 9, 0)]
    looks = [("street", stats.Scope(), None), ("street", stats.Scope(), "grid"), ("leader_a", stats.Scope(), None),
             ("leader_a", stats.Scope(grid_id=user_grid(app, "GA")), "grid"), ("admin", stats.Scope(), "grid"),
             (None, stats.Scope(community_id=community), "grid"), ("member_b", stats.Scope(), None)]

    def counts(tally: stats.Tally) -> dict[str, int]:
        return {**{name: tally[name] for name in stats.COUNTED}, "minutes": tally.handling_minutes}

    def read() -> list:
        with app.app_context():
            session = get_session()
            found = []
            for name, scope, by in looks:
                user = session.scalar(select(User).where(User.username == name)) if name else None
                for moment in moments:
                    found.append([(t.key, counts(t)) for t in stats.tallies(
                        session, user, scope, PERIOD, SH, moment, defs, by=by)])
                    found.append([(w.first, counts(t)) for w, t in stats.weekly(
                        session, user, scope, moment.date(), SH, moment, defs)])
            session.rollback()
        return found

    from_day_totals = read()
    assert any(t[1]["overdue"] for looked in from_day_totals for t in looked)
    _from_cases(monkeypatch)
    assert read() == from_day_totals


def test_the_day_totals_follow_every_write(app, db, scenario):
    """Kept with each write -- dispatch, sign-for, extension, handling, callback, reopening, a linked duplicate
    -- the day totals are what counting every case again gives; unlinking and moving cases keep them so."""
    from tests.factories import assert_day_totals_current, stored_day_totals
    assert_day_totals_current(app)
    with app.app_context():
        # The days of G, A, B-C-D, F (grid A) and H (grid B); E, a duplicate, counts nothing on its day.
        assert len(stored_day_totals(get_session())) == 5
        get_session().rollback()
    link = db.scalar(select(DuplicateLink))
    db.delete(link)
    db.commit()
    assert_day_totals_current(app)
    case = db.get(Case, scenario["H"])
    case.grid_id = user_grid(app, "GA")  # as moving a building with its open cases does (services.admin)
    db.commit()
    assert_day_totals_current(app)
    [a] = figures(app, "leader_a", NOW)
    assert a["recorded"] == 7  # five, E no longer a duplicate, and H moved in


def test_two_writers_of_one_grid_and_day_both_count(app, db):
    """Two requests changing two cases of the same grid and day at once: the later one waits for the day's
    totals row and counts the earlier one's change, so neither is lost."""
    import threading
    import time

    from tests.factories import assert_day_totals_current
    moment = local(2026, 11, 2, 9, 0)
    ids = [record(app, db, moment), record(app, db, moment + dt.timedelta(hours=1))]
    first_flushed, second_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write(case_id: int, first: bool) -> None:
        try:
            with app.app_context():
                session = get_session()
                session.get(Case, case_id).answered_on_spot = True  # a fact of the day's totals
                session.flush()
                if first:
                    first_flushed.set()
                    second_started.wait(5)
                    time.sleep(0.3)  # the second writer is now waiting for this one
                session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    one = threading.Thread(target=write, args=(ids[0], True))
    one.start()
    assert first_flushed.wait(10)
    two = threading.Thread(target=lambda: (second_started.set(), write(ids[1], False)))
    two.start()
    one.join(20)
    two.join(20)
    assert not errors, errors
    assert_day_totals_current(app)
    with app.app_context():
        session = get_session()
        leader = session.scalar(select(User).where(User.username == "leader_a"))
        [t] = stats.tallies(session, leader, stats.Scope(), stats.month_of(moment.date()), SH, moment,
                            stats.Definitions())
        session.rollback()
    assert (t["recorded"], t["on_spot"]) == (2, 2)


def test_count_day_totals_counts_them_all_again(app, db, scenario):
    """After the time zone changed (or cases were loaded around the app), the command counts every total again."""
    from tests.factories import assert_day_totals_current, stored_day_totals
    from tracker.models import stats_day
    with app.app_context():
        kept = stored_day_totals(get_session())
        get_session().rollback()
    db.execute(stats_day.delete())
    db.commit()
    result = app.test_cli_runner().invoke(args=["count-day-totals"])
    assert result.exit_code == 0, result.output
    assert "day totals counted" in result.output
    with app.app_context():
        assert stored_day_totals(get_session()) == kept
        get_session().rollback()
    assert_day_totals_current(app)


def test_the_database_runs_this_releases_day_totals(app):
    """The triggers in the database are the ones made from today's definitions of the figures: a change to a
    definition needs a migration that installs them again (and counts again), or this fails."""
    from tracker.services.facts import day_total_sources, installed_day_totals
    with app.extensions["gridloop.db"].connect() as connection:
        installed, wanted = installed_day_totals(connection), day_total_sources(connection.dialect)
    assert len(wanted) == 5 and installed == wanted


def test_migration_0021_gives_older_cases_their_days_and_counts_their_totals(app, db, scenario):
    """A database of the release before (no local days, no totals) upgrades to one whose totals and figures are
    those of the cases it holds."""
    from tests.factories import assert_day_totals_current, stored_day_totals
    from tracker.migrate import downgrade, upgrade
    with app.app_context():
        kept = stored_day_totals(get_session())
        get_session().rollback()
    before = figures(app, "street", NOW, by="grid")
    db.close()
    engine = app.extensions["gridloop.db"]
    downgrade(engine, "0020")
    with engine.connect() as connection:
        assert "stats_day" not in inspect(connection).get_table_names()
    with app.app_context():
        upgrade(engine)
    assert_day_totals_current(app)
    with app.app_context():
        assert stored_day_totals(get_session()) == kept
        days = {case_id: day for case_id, day in get_session().execute(select(Case.id, Case.local_day))}
        get_session().rollback()
    assert days[scenario["A"]] == dt.date(2026, 9, 30)
    assert [(t.key, t.counts) for t in figures(app, "street", NOW, by="grid")] == [(t.key, t.counts) for t in before]
