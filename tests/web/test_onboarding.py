"""Spreadsheet onboarding: templates, a preview naming every bad cell, all-or-nothing, idempotent re-imports."""

from __future__ import annotations

import csv
import io
import re
import time

import openpyxl
import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD_HASH, Browser, csrf_token
from tracker.db import get_session
from tracker.models import AdminEvent, Building, Grid, Household, Membership, Role, User
from tracker.services import onboarding


@pytest.fixture
def admin(db, login) -> Browser:
    """An administrator, logged in."""
    db.add(User(username="admin", display_name="管理员", password_hash=PASSWORD_HASH, is_admin=True))
    db.flush()
    return login("admin")


def xlsx(rows: list[list[object]]) -> bytes:
    """Return a workbook whose first sheet holds ``rows``."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[list[object]], encoding: str = "utf-8-sig") -> bytes:
    """Return CSV text of ``rows``."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def upload(browser: Browser, kind: str, data: bytes, name: str = "sheet.xlsx"):
    """Upload a sheet for preview."""
    token = csrf_token(browser.get("/admin/import").get_data(as_text=True))
    return browser.client.post(f"/admin/import/{kind}", data={"csrf_token": token, "sheet": (io.BytesIO(data), name)},
                               content_type="multipart/form-data")


def confirm(browser: Browser, kind: str, preview_html: str):
    """Confirm the previewed import."""
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]{64})"', preview_html).group(1)
    return browser.client.post(f"/admin/import/{kind}/confirm",
                               data={"csrf_token": csrf_token(preview_html), "digest": digest})


def problems(html: str) -> list[tuple[str, str, str]]:
    """Return the preview's (row, column, problem) rows."""
    table = re.search(r'<table class="list" id="problems">(.*?)</table>', html, re.S)
    if table is None:
        return []
    return re.findall(r"<tr><td[^>]*>(\d+)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td></tr>", table.group(1))


BUILDING_HEADER = ["社区", "网格编码", "楼院名称", "地址", "纬度", "经度"]


def test_templates_download_with_chinese_headers(admin):
    response = admin.get("/admin/import/households/template.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert [c.value for c in book.worksheets[0][1]] == ["社区", "网格编码", "楼院名称", "单元门牌", "户主姓名", "电话",
                                                         "关怀类别", "备注"]
    text = admin.get("/admin/import/people/template.csv").get_data(as_text=True)
    assert text.lstrip("\ufeff").startswith("用户名,姓名,电话,角色")
    assert admin.get("/admin/import/nothing/template.xlsx").status_code == 404


def test_the_preview_names_every_bad_row_and_cell_and_writes_nothing(admin, db):
    rows = [BUILDING_HEADER,
            ["", "GA", "2号楼院", "和平路2号", "36.07", "115.2"],
            ["", "GX", "3号楼院", "", "", ""],            # unknown grid
            ["", "GA", "4号楼院", "", "north", "115"],     # bad coordinates
            ["", "GA", "5号楼院", "", "95", "115"],        # latitude out of range
            ["", "GA", "2号楼院", "", "", ""],             # same as row 2
            ["", "GA", "", "", "", ""]]                   # no name
    before = db.scalar(select(func.count()).select_from(Building))
    response = upload(admin, "buildings", xlsx(rows))
    assert response.status_code == 422
    found = problems(response.get_data(as_text=True))
    assert [(row, column) for row, column, _p in found] == [
        ("3", "网格编码"), ("4", "纬度"), ("5", "纬度"), ("6", "楼院名称"), ("7", "楼院名称")]
    assert "GX" in found[0][2] and "第2行" in found[3][2]
    assert 'id="confirm-import"' not in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Building)) == before


def test_a_fixed_sheet_imports_all_at_once_and_again_changes_nothing(admin, db):
    rows = [BUILDING_HEADER, ["测试社区", "GA", "2号楼院", "和平路2号", "36.07", "115.2"],
            ["", "GB", "10号楼院", "和平路10号", "", ""]]
    response = upload(admin, "buildings", csv_bytes(rows), "sheet.csv")
    assert response.status_code == 200, problems(response.get_data(as_text=True))
    done = confirm(admin, "buildings", response.get_data(as_text=True))
    assert done.status_code == 200 and "新增2条" in done.get_data(as_text=True)
    assert db.scalar(select(Building.latitude).where(Building.name == "2号楼院")) == pytest.approx(36.07)
    trail = db.scalar(select(func.count()).select_from(AdminEvent))
    again = upload(admin, "buildings", csv_bytes(rows), "sheet.csv")
    assert "新增0条，修改0条，未变2条" in again.get_data(as_text=True)
    confirm(admin, "buildings", again.get_data(as_text=True))
    assert db.scalar(select(func.count()).select_from(Building).where(Building.name.in_(["2号楼院", "10号楼院"]))) == 2
    assert db.scalar(select(func.count()).select_from(AdminEvent)) == trail  # nothing changed, nothing recorded
    # A changed address is an update of the same building, not a new one.
    rows[2][3] = "和平路12号"
    changed = upload(admin, "buildings", csv_bytes(rows, "gb18030"), "sheet.csv")  # Excel's CSV on Chinese Windows
    assert "修改1条" in confirm(admin, "buildings", changed.get_data(as_text=True)).get_data(as_text=True)
    assert db.scalar(select(Building.address).where(Building.name == "10号楼院")) == "和平路12号"


PEOPLE_HEADER = ["用户名", "姓名", "电话", "角色", "社区", "网格编码", "部门编码", "公示电话", "值班电话", "初始密码"]


def test_people_import_names_duplicate_phones_unknown_roles_and_scopes(admin, db):
    db.execute(User.__table__.update().where(User.username == "member_b").values(phone="+8613800009999"))
    rows = [PEOPLE_HEADER,
            ["zhang3", "张三", "13800001111", "网格员", "", "GA", "", "是", "", ""],
            ["li4", "李四", "13800001111", "网格员", "", "GA", "", "", "", ""],          # same phone as row 2
            ["wang5", "王五", "13800009999", "网格长", "", "GB", "", "", "", ""],        # member_b's phone
            ["zhao6", "赵六", "", "主任", "", "", "", "", "", ""],                       # unknown role
            ["sun7", "孙七", "", "职能部门", "", "", "nowhere", "", "", ""],             # unknown department
            ["zhou8", "周八", "12345", "", "", "", "", "也许", "", ""],                  # bad phone, bad yes/no
            ["wu9", "吴九", "", "网格员", "", "GZ", "", "", "", ""],                     # unknown grid
            ["zheng10", "郑十", "", "", "", "", "", "", "", "aaaaaaaaaaaa"]]              # one character repeated
    response = upload(admin, "people", xlsx(rows))
    found = problems(response.get_data(as_text=True))
    assert {(row, column) for row, column, _p in found} == {
        ("3", "电话"), ("4", "电话"), ("5", "角色"), ("6", "部门编码"), ("7", "公示电话"), ("7", "电话"),
        ("8", "网格编码"), ("9", "初始密码")}
    assert db.scalar(select(User).where(User.username == "zhang3")) is None


def test_people_import_creates_accounts_with_roles_and_temporary_passwords(app, admin, db):
    rows = [PEOPLE_HEADER,
            ["zhang3", "张三", 13800001111, "网格员", "测试社区", "GA", "", "是", "", ""],
            ["li4", "李四", "13800002222", "职能部门", "", "", "property", "", "", "li4-own-pass1"],
            ["leader_a", "网格长甲", "", "网格长", "", "GB", "", "", "", ""]]  # an existing person: one more role
    preview = upload(admin, "people", xlsx(rows))
    assert preview.status_code == 200, problems(preview.get_data(as_text=True))
    done = confirm(admin, "people", preview.get_data(as_text=True)).get_data(as_text=True)
    assert "zhang3" in done and 'id="temporary-passwords"' in done
    zhang = db.scalar(select(User).where(User.username == "zhang3"))
    assert zhang.phone == "+8613800001111" and zhang.public_phone and zhang.must_change_password
    assert [m.role for m in zhang.memberships] == [Role.GRID_MEMBER]
    li = db.scalar(select(User).where(User.username == "li4"))
    assert not li.must_change_password and li.memberships[0].department_id is not None
    grid_b = db.scalar(select(Grid.id).where(Grid.code == "GB"))
    assert db.scalar(select(Membership.id).join(User).where(
        User.username == "leader_a", Membership.grid_id == grid_b, Membership.role == Role.GRID_LEADER))
    again = upload(admin, "people", xlsx(rows)).get_data(as_text=True)
    assert "新增0条，修改0条，未变3条" in again


def test_files_that_are_no_sheet_or_too_large_are_refused(admin):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    response = upload(admin, "households", png, "photo.xlsx")
    assert response.status_code == 422 and "既不是" in response.get_data(as_text=True)
    fake_zip = b"PK\x03\x04" + b"junk" * 10
    assert upload(admin, "households", fake_zip, "sheet.xlsx").status_code == 422
    old = b"\xd0\xcf\x11\xe0" + b"\x00" * 100
    assert ".xls" in upload(admin, "households", old, "old.xls").get_data(as_text=True)
    missing = upload(admin, "households", csv_bytes([["网格编码", "楼院名称"], ["GA", "1号楼院"]]), "s.csv")
    assert missing.status_code == 422 and "单元门牌" in missing.get_data(as_text=True)
    # Refused by its declared length before any of it is read (the page says the limit).
    huge = admin.client.post("/admin/import/households", data=b"a" * (onboarding.MAX_BYTES + 100_000),
                             content_type="multipart/form-data; boundary=x")
    assert huge.status_code == 413
    with pytest.raises(onboarding.SheetRefused):
        onboarding.sheet_format(b"a," * (onboarding.MAX_BYTES // 2 + 1))


def test_households_import_from_the_cli_all_or_nothing(app, db, tmp_path):
    sheet = tmp_path / "households.csv"
    rows = [["网格编码", "楼院名称", "单元门牌", "户主姓名", "电话", "关怀类别"],
            ["GA", "1号楼院", "1单元101", "李秀英", "13912345678", "独居老人"],
            ["GA", "1号楼院", "1单元102", "王强", "", "外星人"]]
    sheet.write_bytes(csv_bytes(rows))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-sheet", "households", str(sheet), "--yes"])
    assert result.exit_code == 1 and "第 3 行 关怀类别" in result.output
    assert db.scalar(select(func.count()).select_from(Household)) == 0
    rows[2][5] = ""
    sheet.write_bytes(csv_bytes(rows))
    dry = runner.invoke(args=["import-sheet", "households", str(sheet)])
    assert dry.exit_code == 0 and "2 new" in dry.output
    assert db.scalar(select(func.count()).select_from(Household)) == 0
    assert runner.invoke(args=["import-sheet", "households", str(sheet), "--yes"]).exit_code == 0
    assert db.scalar(select(Household.care_group).where(Household.head_name == "李秀英")) == "elderly_alone"


def test_ten_thousand_households_import_in_bulk_and_again_change_nothing(app, db):
    rows = [["网格编码", "楼院名称", "单元门牌", "户主姓名", "电话", "关怀类别", "备注"]]
    rows += [["GA" if i % 2 else "GB", "1号楼院" if i % 2 else "9号楼院", f"{i // 100 + 1}单元{i % 100 + 101}",
              f"住户{i}", f"139{i:08d}", "独居老人" if i % 17 == 0 else "", ""] for i in range(10_000)]
    data = xlsx(rows)
    with app.app_context():
        session = get_session()
        started = time.perf_counter()
        sheet = onboarding.plan(session, "households", data)
        planned = time.perf_counter() - started
        assert sheet.ok, sheet.problems[:3]
        result = onboarding.apply(session, None, sheet)
        session.commit()
        took = time.perf_counter() - started
        print(f"\n10,000 households: read and checked in {planned:.2f} s, imported in {took:.2f} s")
        assert result.created == 10_000
        again = onboarding.plan(get_session(), "households", data)
        assert (len(again.inserts), len(again.updates), again.unchanged) == (0, 0, 10_000)
    assert db.scalar(select(func.count()).select_from(Household)) == 10_000


def test_the_previewed_sheet_waits_in_the_database_for_any_machine_to_import_it(app, admin, db):
    from tests.conftest import configured_app
    rows = [BUILDING_HEADER, ["", "GA", "20号楼院", "", "", ""]]
    preview = upload(admin, "buildings", csv_bytes(rows), "s.csv").get_data(as_text=True)
    with configured_app(app.config["DATABASE_URL"]) as other:  # another web machine serves the confirmation
        browser = Browser(other.test_client())
        browser.client.set_cookie("session", admin.client.get_cookie("session").value)
        done = confirm(browser, "buildings", preview)
        assert done.status_code == 200 and "新增1条" in done.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Building).where(Building.name == "20号楼院")) == 1
    gone = confirm(admin, "buildings", preview)  # imported: the sheet is forgotten
    assert gone.status_code == 302 and gone.headers["Location"].endswith("/admin/import")
