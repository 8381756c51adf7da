"""CSV and Excel exports of the case list: the list's filters, the user's scope, streamed out."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
import threading
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import select

from tests.conftest import intake
from tracker import exports
from tracker.db import get_session
from tracker.models import Building, Case, Department, Grid, TaskStatus, User
from tracker.services import for_app
from tracker.services.cases import complete_task, open_case
from tracker.services.commands import Dispatch, RecordCase

ZONE = ZoneInfo("Asia/Shanghai")
LINK = re.compile(r'<a href="/cases/\d+">([^<]+)</a>')


def record(app, username: str, n: int = 1, refer: bool = False, **overrides) -> list[str]:
    """Record ``n`` cases as a grid member (dispatched to a department if ``refer``); return their numbers."""
    with app.app_context():
        db = get_session()
        svc = for_app(app, db)
        actor = db.scalar(select(User).where(User.username == username))
        grid_id = actor.memberships[0].grid_id
        fields = {"resident_name": "张阿姨", "resident_phone": "+8613812345678", "category": "property_repair",
                  "description": "楼道灯不亮", "channel": "phone", "answered_on_spot": False,
                  "building_id": db.scalar(select(Building.id).where(Building.grid_id == grid_id)), **overrides}
        numbers = []
        for _ in range(n):
            case = open_case(svc, actor, RecordCase(**fields))
            if refer:
                leader = db.scalar(select(User).where(User.username == "leader_a"))
                task = next(t for t in case.tasks if t.status == TaskStatus.OPEN)
                complete_task(svc, leader, task.id, case.version, Dispatch(
                    dispatch_to="department", department_id=db.scalar(select(Department.id)), deadline_class="general"))
            numbers.append(case.number)
        db.commit()
    return numbers


def grid_id(db, code: str) -> int:
    """Return a seed grid's id."""
    return db.scalar(select(Grid.id).where(Grid.code == code))


def read_csv(response) -> list[list[str]]:
    """Parse a CSV download (after its BOM) into rows."""
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def listed(browser, query: str = "") -> list[str]:
    """Return the case numbers the case list shows for a query string, in order."""
    return LINK.findall(browser.get(f"/cases/?{query}").get_data(as_text=True))


@pytest.fixture
def cases(app) -> dict[str, list[str]]:
    """Cases in both grids: dispatching, answered on the spot (callback), and referred to the department."""
    return {"a": record(app, "member_a", 2), "a_spot": record(app, "member_a", 2, answered_on_spot=True,
                                                                 reply="已当场答复"),
            "a_dept": record(app, "member_a", refer=True), "b": record(app, "member_b", 2)}


def test_csv_has_the_headers_and_exactly_the_rows_the_list_shows(login, db, cases):
    leader = login("leader_a")

    response = leader.get("/cases/export.csv?status=callback")

    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    assert re.fullmatch(r"attachment; filename=cases-\d{8}\.csv", response.headers["Content-Disposition"])
    header, *rows = read_csv(response)
    assert header[:12] == ["编号", "登记时间", "网格", "楼院", "详细地址", "类别", "渠道", "紧急程度", "状态",
                           "居民姓名", "居民电话", "诉求内容"]
    assert len(header) == 16
    assert [r[0] for r in rows] == listed(leader, "status=callback") == cases["a_spot"][::-1]
    case = db.scalar(select(Case).where(Case.number == rows[0][0]))
    assert rows[0][1] == case.created_at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
    assert rows[0][2:4] == ["GA", "1号楼院"]
    assert rows[0][5:9] == ["物业维修", "电话", "一般", "回访"]
    assert rows[0][9:12] == ["张阿姨", "138 1234 5678", "楼道灯不亮"]  # a phone in its local form, no apostrophe


def test_auditor_export_follows_the_grid_filter_in_list_order(login, db, cases):
    auditor = login("auditor")
    query = f"grid={grid_id(db, 'GB')}"

    rows = read_csv(auditor.get(f"/cases/export.csv?{query}"))[1:]

    assert [r[0] for r in rows] == listed(auditor, query) == cases["b"][::-1]
    everything = [r[0] for r in read_csv(auditor.get("/cases/export.csv"))[1:]]
    assert everything == listed(auditor) and len(everything) == 7


@pytest.mark.parametrize("username, expected", [
    ("member_b", ["b"]), ("leader_a", ["a", "a_spot", "a_dept"]), ("dept", ["a_dept"]),
])
def test_each_user_exports_exactly_the_cases_they_may_see(login, db, cases, username, expected):
    browser = login(username)

    numbers = [r[0] for r in read_csv(browser.get("/cases/export.csv"))[1:]]

    assert numbers == listed(browser)
    assert sorted(numbers) == sorted(n for key in expected for n in cases[key])


def test_member_of_another_grid_gets_nothing_by_asking_for_that_grid(login, db, cases):
    rows = read_csv(login("member_b").get(f"/cases/export.csv?grid={grid_id(db, 'GA')}"))
    assert rows == [rows[0]]


def test_referred_case_names_its_department(login, cases):
    _header, row = read_csv(login("dept").get("/cases/export.csv"))
    assert row[12] == "物业维修中心"  # handler or department


def test_formula_like_text_is_neutralised_in_csv_and_stays_text_in_excel(app, login):
    record(app, "member_a", resident_name="=HYPERLINK(\"http://x.example\",\"点击\")", description="@SUM(A1)",
           address_detail="-1+1")
    leader = login("leader_a")

    row = read_csv(leader.get("/cases/export.csv"))[1]
    assert (row[9], row[11], row[4]) == ("'=HYPERLINK(\"http://x.example\",\"点击\")", "'@SUM(A1)", "'-1+1")

    sheet = openpyxl.load_workbook(io.BytesIO(leader.get("/cases/export.xlsx").data)).active
    name = sheet.cell(row=2, column=10)
    assert (name.value, name.data_type) == ("=HYPERLINK(\"http://x.example\",\"点击\")", "s")
    assert sheet.cell(row=2, column=12).value == "@SUM(A1)"


def test_xlsx_opens_and_has_the_same_rows_as_the_csv(login, db, cases):
    auditor = login("auditor")

    response = auditor.get("/cases/export.xlsx?status=dispatching")

    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == exports.XLSX_MIME
    assert re.fullmatch(r"attachment; filename=cases-\d{8}\.xlsx", response.headers["Content-Disposition"])
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    csv_header, *csv_rows = read_csv(auditor.get("/cases/export.csv?status=dispatching"))
    assert header == csv_header
    assert [r[0] for r in rows] == [r[0] for r in csv_rows] == (cases["a"] + cases["b"])[::-1]
    for row, csv_row in zip(rows, csv_rows):
        recorded = db.scalar(select(Case.created_at).where(Case.number == row[0]))
        assert abs(row[1] - recorded.astimezone(ZONE).replace(tzinfo=None)) < dt.timedelta(seconds=1)
        assert [v or "" for v in row[2:13]] == [v.removeprefix("'") for v in csv_row[2:13]]


def test_export_reads_in_batches_and_streams_chunk_by_chunk(app, login, monkeypatch):
    numbers = record(app, "member_a", 5)
    monkeypatch.setattr(exports, "BATCH", 2)

    response = login("member_a").get("/cases/export.csv")

    chunks = list(response.response)
    assert len(chunks) >= 4  # header, then one chunk per two rows
    text = b"".join(chunks).decode("utf-8-sig")
    assert [r[0] for r in csv.reader(io.StringIO(text))][1:] == numbers[::-1]


def test_a_download_in_progress_does_not_block_people_recording_cases(app, login, db, monkeypatch):
    record(app, "member_a", 3)
    monkeypatch.setattr(exports, "BATCH", 1)
    # Log in first: a request made in this thread while the download is suspended would share its
    # contexts (a real server runs each request in its own thread).
    member, data, status = login("member_a"), intake(db), []
    response = login("leader_a").get("/cases/export.csv")
    chunks = iter(response.response)
    for _ in range(2):  # the header, then the first row: the query is open
        next(chunks)

    # Another request, as in another server thread: the suspended download keeps its contexts pushed here.
    writer = threading.Thread(target=lambda: status.append(member.submit("/cases/new", data).status_code))
    writer.start()
    writer.join()
    assert status == [302]

    rest = b"".join(chunks).decode("utf-8")
    assert rest.count("\n") == 2  # the two rows still to come


def test_xlsx_leaves_no_temporary_file_behind_even_when_reading_fails(app, login, monkeypatch, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    record(app, "member_a")

    response = login("member_a").get("/cases/export.xlsx")
    assert len(openpyxl.load_workbook(io.BytesIO(response.data)).active["A"]) == 2
    assert list(spool.iterdir()) == []

    def rows_then_outage():
        yield ["20261123-000001"] + [""] * 15
        raise OSError("database went away")
    with app.test_request_context(), pytest.raises(OSError):
        exports.write_xlsx(rows_then_outage(), "Cases")
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("url", ["/cases/export.csv", "/cases/export.xlsx"])
def test_anonymous_request_is_sent_to_login(app, url):
    response = app.test_client().get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_case_list_links_to_exports_with_its_filters(login, db):
    html = login("leader_a").get(f"/cases/?status=handling&page=2&grid={grid_id(db, 'GA')}").get_data(as_text=True)
    query = f"status=handling&amp;grid={grid_id(db, 'GA')}"
    assert f'href="/cases/export.csv?{query}"' in html and f'href="/cases/export.xlsx?{query}"' in html
