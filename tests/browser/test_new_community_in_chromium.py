"""Issue 15's "done when", as one walk in Debian's chromium at 390 px: an admin sets up a new community from
the downloadable templates (the preview names the one bad row, which is fixed), the grid's poster is opened,
its QR code's address leads a resident to the form, the request is filed and followed on the status page, and
the admin trail verifies at the end. No page of the walk scrolls sideways."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import openpyxl
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from tests.browser.test_admin_in_chromium import _fill, _login, _preview, _problems, _template
from tests.conftest import PASSWORD_HASH
from tracker.models import Building, Case, Grid, User

pytestmark = pytest.mark.browser


def _fits(page: Page) -> None:
    """Nothing on the page sticks out to the right at 390 px (once the page has loaded)."""
    page.wait_for_load_state()
    width, client = page.evaluate(
        "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert width <= client, f"{page.url} scrolls sideways: {width} > {client}"


def test_a_new_community_is_set_up_from_templates_and_a_resident_files_through_its_poster(
        server, browser, db, tmp_path):
    db.add(User(username="admin", display_name="管理员", password_hash=PASSWORD_HASH, is_admin=True))
    db.flush()
    admin = _login(browser, server, "admin")
    expect(admin.locator(".who")).to_be_visible()
    _fits(admin)

    # The community and its grid, from the admin pages.
    admin.locator("button.menu-toggle").click()  # 390 px wide: the menu is folded behind its button
    admin.get_by_role("link", name="系统管理").click()
    admin.wait_for_url("**/admin/")
    _fits(admin)
    admin.get_by_role("link", name="社区与网格").first.click()
    admin.fill("#community-name", "新华社区")
    admin.click("#save-community")
    expect(admin.locator(".flash")).to_contain_text("社区已保存")
    admin.select_option("#grid-community_id", label="新华社区")
    admin.fill("#grid-code", "XH1")
    admin.fill("#grid-name", "新华一网格")
    admin.click("#save-grid")
    expect(admin.locator(".flash")).to_contain_text("网格已保存")
    _fits(admin)

    # Both templates, downloaded from the import page.
    admin.get_by_role("link", name="导入表格").first.click()
    admin.wait_for_url("**/admin/import")
    _fits(admin)
    buildings = _template(admin, "buildings", tmp_path)
    people = _template(admin, "people", tmp_path)
    assert [c.value for c in openpyxl.load_workbook(people).worksheets[0][1]][:3] == ["用户名", "姓名", "电话"]

    # Buildings, one row bad: the preview names it and writes nothing; fixed, they are imported.
    rows = [["新华社区", "XH1", f"{n}号楼院", f"新华路{n}号", 36.08 + n / 1000, 115.3 + n / 1000] for n in range(1, 5)]
    rows[2][1] = "XH9"  # row 4 of the sheet: a grid that does not exist
    _fill(buildings, rows)
    _preview(admin, "buildings", buildings)
    expect(admin.locator("#problems")).to_be_visible()
    assert _problems(admin) == [("4", "网格编码")]
    expect(admin.locator("#problems")).to_contain_text("XH9")
    assert admin.locator("#confirm-import").count() == 0
    assert db.scalar(select(func.count()).select_from(Building).where(Building.address.like("新华路%"))) == 0
    _fits(admin)
    rows[2][1] = "XH1"
    _fill(buildings, rows)
    _preview(admin, "buildings", buildings)
    expect(admin.locator("#preview")).to_contain_text("新增4条")
    admin.click("#confirm-import")
    expect(admin.locator("#import-result")).to_contain_text("新增4条")
    _fits(admin)

    # People: the grid's leader (duty phone made public) and a member.
    _fill(people, [["xh_leader", "新华网格长", "13600000001", "网格长", "新华社区", "XH1", "", "是", "0393-5551234", ""],
                   ["xh_member", "新华网格员", "13600000002", "网格员", "新华社区", "XH1", "", "", "", ""]])
    _preview(admin, "people", people)
    expect(admin.locator("#preview")).to_contain_text("新增2条")
    admin.click("#confirm-import")
    expect(admin.locator("#temporary-passwords")).to_be_visible()
    _fits(admin)

    # The grid's printable poster, from the community's public notice.
    grid = db.scalar(select(Grid.id).where(Grid.code == "XH1"))
    resident = browser.new_context(viewport={"width": 390, "height": 860}).new_page()
    resident.on("console", lambda message: "Content Security Policy" in message.text
                and browser.csp_refusals.append(f"{resident.url}: {message.text}"))
    resident.goto(f"{server}/public/")
    resident.get_by_role("link", name="新华社区").first.click()
    expect(resident.locator(f"#grid-{grid}")).to_contain_text("新华网格长")
    expect(resident.locator(f"#grid-{grid}")).to_contain_text("0393 555 1234")  # the public duty phone, in its local form
    _fits(resident)
    resident.locator(f"#grid-{grid}").get_by_role("link", name="打印公示牌").click()
    resident.wait_for_url(f"**/public/grids/{grid}/poster")
    expect(resident.locator("svg.segno")).to_be_visible()
    expect(resident.locator("article.poster")).to_contain_text("新华一网格")
    _fits(resident)

    # The address the QR code carries (written under it), followed on this test server.
    target = resident.locator(".qr figcaption small").inner_text().strip()
    assert urlsplit(target).path == f"/public/grids/{grid}/request", target
    resident.goto(server + urlsplit(target).path)
    expect(resident.locator("h1")).to_contain_text("新华一网格")
    _fits(resident)
    resident.fill("input[name=resident_name]", "孙奶奶")
    resident.fill("input[name=resident_phone]", "13987654321")
    resident.select_option("select[name=building_id]", label="3号楼院")
    resident.fill("textarea[name=description]", "3号楼院门口路灯不亮")
    a, b = re.search(r"(\d) \+ (\d) = \?", resident.locator(".field small").last.inner_text()).groups()
    resident.fill("input[name=answer]", str(int(a) + int(b)))
    resident.click("button.primary")
    expect(resident.locator("h1")).to_contain_text("诉求已收到")
    number = resident.locator(".case-number").inner_text().strip()
    db.expire_all()
    case = db.scalar(select(Case).where(Case.number == number))
    assert case is not None and case.building.name == "3号楼院" and case.building.grid_id == grid
    _fits(resident)

    # Followed by its number and the phone's last four digits: the stage, no personal data.
    resident.get_by_role("link", name="查询我的诉求").last.click()
    resident.wait_for_url("**/public/status")
    _fits(resident)
    resident.fill("input[name=number]", number)
    resident.fill("input[name=last_four]", "4321")
    resident.click("button.primary")
    expect(resident.locator("#case-status")).to_contain_text(number)
    expect(resident.locator("#case-status")).to_contain_text("已受理")
    expect(resident.locator("#case-status")).not_to_contain_text("孙奶奶")
    expect(resident.locator("#case-status")).not_to_contain_text("13987654321")
    _fits(resident)

    # At the end, the admin trail holds the set-up and verifies.
    admin.goto(f"{server}/admin/trail")
    expect(admin.locator("#trail-state")).to_contain_text("核验通过")
    expect(admin.locator("main")).to_contain_text("新华社区")
    _fits(admin)
