"""An administrator sets up a new community from the browser alone, in Debian's chromium at 390 px."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from tests.browser.conftest import screenshots
from tests.conftest import PASSWORD, PASSWORD_HASH
from tracker.models import Building, User

pytestmark = pytest.mark.browser


def _login(browser, base: str, username: str, password: str = PASSWORD) -> Page:
    """Open a phone-sized context and log in."""
    page = browser.new_context(viewport={"width": 390, "height": 860}, accept_downloads=True).new_page()
    page.on("console", lambda message: "Content Security Policy" in message.text
            and browser.csp_refusals.append(f"{page.url}: {message.text}"))
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return page


def _no_sideways_scroll(page: Page) -> None:
    """The page fits the phone's width."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.url


def _template(page: Page, kind: str, folder: Path) -> Path:
    """Download a kind's XLSX template from the import page."""
    with page.expect_download() as download:
        page.click(f"#template-{kind}-xlsx")
    path = folder / f"{kind}.xlsx"
    download.value.save_as(path)
    return path


def _fill(path: Path, rows: list[list[object]]) -> None:
    """Write rows under the template's header, as a person does in a spreadsheet program."""
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    sheet.delete_rows(2, sheet.max_row)
    for row in rows:
        sheet.append(row)
    book.save(path)


def _preview(page: Page, kind: str, path: Path) -> None:
    """Upload a sheet for preview."""
    section = page.locator(f"section#{kind}")
    section.locator("input[type=file]").set_input_files(str(path))
    section.locator(f"#preview-{kind}").click()


def _problems(page: Page) -> list[tuple[str, str]]:
    """Return the preview's (row, column) pairs."""
    return [(row.locator("td").nth(0).inner_text(), row.locator("td").nth(1).inner_text())
            for row in page.locator("#problems tbody tr").all()]


def test_an_admin_sets_up_a_community_from_the_browser_alone(server, browser, db, tmp_path):
    db.add(User(username="admin", display_name="管理员", password_hash=PASSWORD_HASH, is_admin=True))
    db.flush()
    page = _login(browser, server, "admin")
    page.locator("button.menu-toggle").click()  # 390 px wide: the menu is folded behind its button
    page.get_by_role("link", name="系统管理").click()
    page.get_by_role("link", name="社区与网格").first.click()
    page.fill("#community-name", "和平社区")
    page.click("#save-community")
    expect(page.locator(".flash")).to_contain_text("社区已保存")
    for code, name in (("H1", "和平一网格"), ("H2", "和平二网格")):
        page.select_option("#grid-community_id", label="和平社区")
        page.fill("#grid-code", code)
        page.fill("#grid-name", name)
        page.click("#save-grid")
        expect(page.locator(".flash")).to_contain_text("网格已保存")
    _no_sideways_scroll(page)

    # Buildings: the template, a sheet with two mistakes, the preview naming them, nothing written.
    page.get_by_role("link", name="导入表格").first.click()
    buildings = _template(page, "buildings", tmp_path)
    assert [c.value for c in openpyxl.load_workbook(buildings).worksheets[0][1]][:3] == ["社区", "网格编码", "楼院名称"]
    rows = [["和平社区", "H1", f"{n}号楼院", f"和平路{n}号", 36.07 + n / 1000, 115.2] for n in range(1, 8)]
    rows[2][1] = "H9"           # row 4: a grid that does not exist
    rows[5][4] = "北纬36度"      # row 7: not a number
    _fill(buildings, rows)
    _preview(page, "buildings", buildings)
    expect(page.locator("#problems")).to_be_visible()
    assert _problems(page) == [("4", "网格编码"), ("7", "纬度")]
    expect(page.locator("#problems")).to_contain_text("H9")
    assert page.locator("#confirm-import").count() == 0
    assert db.scalar(select(func.count()).select_from(Building).where(Building.address.like("和平路%"))) == 0
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots() / "admin-import-problems.png"), full_page=True)
    # Fixed, uploaded again, imported; the same file again changes nothing.
    rows[2][1], rows[5][4] = "H2", 36.076
    _fill(buildings, rows)
    _preview(page, "buildings", buildings)
    expect(page.locator("#preview")).to_contain_text("新增7条")
    page.click("#confirm-import")
    expect(page.locator("#import-result")).to_contain_text("新增7条")
    _preview(page, "buildings", buildings)
    expect(page.locator("#preview")).to_contain_text("新增0条，修改0条，未变7条")

    # People: a duplicate phone is named; fixed, they are imported with temporary passwords.
    people = _template(page, "people", tmp_path)
    _fill(people, [["hp_leader", "和平网格长", "13700000001", "网格长", "和平社区", "H1", "", "是", "", ""],
                   ["hp_member", "和平网格员", "13700000001", "网格员", "和平社区", "H1", "", "", "", ""]])
    _preview(page, "people", people)
    assert _problems(page) == [("3", "电话")]
    _fill(people, [["hp_leader", "和平网格长", "13700000001", "网格长", "和平社区", "H1", "", "是", "", ""],
                   ["hp_member", "和平网格员", "13700000002", "网格员", "和平社区", "H1", "", "", "", ""]])
    _preview(page, "people", people)
    page.click("#confirm-import")
    expect(page.locator("#temporary-passwords")).to_be_visible()
    temporary = page.locator("#temporary-passwords tr", has_text="hp_member").locator("code").inner_text()
    _no_sideways_scroll(page)

    # Households of the new buildings, from the template too.
    households = _template(page, "households", tmp_path)
    _fill(households, [["和平社区", "H1", "1号楼院", f"1单元{n}01", f"住户{n}", "", "独居老人" if n == 1 else "", ""]
                       for n in range(1, 6)])
    _preview(page, "households", households)
    page.click("#confirm-import")
    expect(page.locator("#import-result")).to_contain_text("新增5条")

    # Every change is on the admin trail, and it verifies.
    page.get_by_role("link", name="管理审计记录").first.click()
    expect(page.locator("#trail-state")).to_contain_text("核验通过")
    _no_sideways_scroll(page)

    # The new grid member logs in with the temporary password, must choose their own, then sees their grid.
    member = _login(browser, server, "hp_member", temporary)
    expect(member.locator("#forced-change")).to_be_visible()
    member.fill("input[name=current_password]", temporary)
    member.fill("input[name=new_password]", "heping-member-2027")
    member.fill("input[name=confirm_password]", "heping-member-2027")
    member.get_by_role("button", name="修改密码").click()
    expect(member.locator(".flash")).to_contain_text("密码已修改")
    member.goto(f"{server}/cases/new")
    expect(member.locator("select[name=building_id]")).to_contain_text("1号楼院")
    _no_sideways_scroll(member)
    db.expire_all()
    assert not db.scalar(select(User.must_change_password).where(User.username == "hp_member"))
