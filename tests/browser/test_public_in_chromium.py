"""In Debian's chromium at 390 px: a resident reads the grid notice and the poster, files a request through
the QR form and follows it on the status page; a mobile desk session walked end to end; the grid map.
No page scrolls sideways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import screenshots
from tests.conftest import PASSWORD, building_id, latest_case, user_id
from tracker.models import Building, Community, Grid, User

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def _page(browser, username: str | None = None, base: str = "") -> Page:
    """Open a 390 px wide page (logged in when a username is given), watching for CSP refusals."""
    page = browser.new_context(viewport=PHONE).new_page()
    page.on("console", lambda message: "Content Security Policy" in message.text
            and browser.csp_refusals.append(f"{page.url}: {message.text}"))
    if username:
        page.goto(f"{base}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator(".who")).to_be_visible()
    return page


def _no_sideways_scroll(page: Page) -> None:
    """The page fits 390 px: nothing sticks out to the right."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"


def _publish(db) -> None:
    leader = db.scalar(select(User).where(User.username == "leader_a"))
    leader.duty_phone, leader.public_phone = "010-66668888", True
    grid = db.scalar(select(Grid).where(Grid.code == "GA"))
    grid.office_hours, grid.service_items = "周一至周五 9:00-17:00", "代办证明\n政策咨询"
    for n, b in enumerate(db.scalars(select(Building)).all()):
        b.latitude, b.longitude = 39.90 + n * 0.001, 116.40 + n * 0.003
    db.flush()


def test_a_resident_reads_the_notice_files_through_the_qr_form_and_follows_it(server, browser, db):
    _publish(db)
    community = db.scalar(select(Community.id))
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    page = _page(browser)
    page.goto(f"{server}/public/communities/{community}")
    expect(page.locator("h1")).to_contain_text("网格公示")
    expect(page.locator("svg.gridmap")).to_be_visible()
    expect(page.locator(f"#grid-{grid}")).to_contain_text("010 6666 8888")
    assert page.locator("svg.gridmap .building").count() == 2
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots() / "public-notice.png"), full_page=True)

    page.locator(f"#grid-{grid}").get_by_role("link", name="打印公示牌").click()
    expect(page.locator("svg.segno")).to_be_visible()
    target = page.locator(".qr figcaption small").inner_text()
    assert target.endswith(f"/public/grids/{grid}/request")
    _no_sideways_scroll(page)
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()  # the poster prints alone
    page.emulate_media(media="screen")

    # The QR code's address, on this test server.
    page.goto(f"{server}/public/grids/{grid}/request")
    _no_sideways_scroll(page)
    page.fill("input[name=resident_name]", "赵大爷")
    page.fill("input[name=resident_phone]", "13912345678")
    page.select_option("select[name=building_id]", str(building_id(db)))
    page.fill("textarea[name=description]", "3单元楼道灯坏了")
    page.fill("input[name=answer]", "0")  # wrong first: nothing lost
    page.click("button.primary")
    expect(page.locator(".error")).to_be_visible()
    expect(page.locator("textarea[name=description]")).to_have_value("3单元楼道灯坏了")
    a, b = re.search(r"(\d) \+ (\d) = \?", page.locator(".field small").last.inner_text()).groups()
    page.fill("input[name=answer]", str(int(a) + int(b)))
    page.click("button.primary")
    expect(page.locator("h1")).to_contain_text("诉求已收到")
    number = latest_case(db).number
    expect(page.locator(".case-number")).to_have_text(number)
    _no_sideways_scroll(page)

    page.get_by_role("link", name="查询我的诉求").last.click()
    page.fill("input[name=number]", number)
    page.fill("input[name=last_four]", "5678")
    page.click("button.primary")
    expect(page.locator("#case-status")).to_contain_text("已受理")
    expect(page.locator("#case-status")).not_to_contain_text("赵大爷")
    _no_sideways_scroll(page)


def test_a_desk_session_walked_end_to_end_at_390_px(server, browser, db):
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    leader = _page(browser, "leader_a", server)
    leader.goto(f"{server}/desk/")
    _no_sideways_scroll(leader)
    leader.get_by_role("link", name="安排流动办公").click()
    leader.check(f"input[name=building_ids][value='{building_id(db)}']")
    leader.check(f"input[name=staff_ids][value='{user_id(db, 'member_a')}']")
    leader.fill("input[name=weeks]", "2")
    _no_sideways_scroll(leader)
    leader.click("button.primary")
    expect(leader.locator(".flash")).to_contain_text("已安排 2 场")
    expect(leader.locator(f"#grid-{grid} ul.sessions li")).to_have_count(2)

    member = _page(browser, "member_a", server)
    member.goto(f"{server}/desk/")
    member.locator(f"#grid-{grid} ul.sessions li a").first.click()
    member.click("#open-session")
    expect(member.locator(".flash")).to_contain_text("流动办公已开始")
    expect(member.locator("select[name=building_id]")).to_have_value(str(building_id(db)))
    _no_sideways_scroll(member)
    member.fill("input[name=resident_name]", "钱阿姨")
    member.fill("input[name=resident_phone]", "13812345678")
    member.select_option("select[name=category]", "pension")
    member.fill("textarea[name=description]", "养老金资格认证怎么办")
    member.check("input[name=disposition][value=on_spot]")
    member.fill("textarea[name=reply]", "已当场说明认证材料")
    member.click("#desk-intake button.primary")
    expect(member.locator(".flash")).to_contain_text("已登记")
    expect(member.locator("#count-taken")).to_have_text("1")
    expect(member.locator("#count-on-spot")).to_have_text("1")
    member.fill("textarea[name=note]", "来访居民5人")
    member.click("#close-session")
    expect(member.locator("h1")).to_contain_text("流动办公桌小结")
    expect(member.locator("#count-taken")).to_have_text("1")
    _no_sideways_scroll(member)
    member.screenshot(path=str(screenshots() / "desk-summary.png"), full_page=True)


def test_the_grid_map_at_390_px_links_buildings_to_their_cases(server, browser, db):
    _publish(db)
    member = _page(browser, "member_a", server)
    member.goto(f"{server}/cases/new")
    expect(member.locator("button[data-locate]")).to_be_visible()  # shown by map.js
    member.goto(f"{server}/map/")
    expect(member.locator("svg.gridmap")).to_be_visible()
    _no_sideways_scroll(member)
    member.locator(f"svg.gridmap a[data-building='{building_id(db)}']").click()
    expect(member.locator("h1")).to_contain_text("1号楼院")
    _no_sideways_scroll(member)
