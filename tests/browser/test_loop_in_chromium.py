"""A person walks the whole loop in Debian's chromium, driven by Playwright, against a real server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login_as, screenshots
from tests.conftest import building_id, latest_case, user_id

pytestmark = pytest.mark.browser


def _open_my_task(page: Page, base: str, title: str) -> None:
    """Go to the inbox and open the first task with this title."""
    page.goto(f"{base}/")
    page.get_by_role("link", name=title).first.click()
    expect(page.locator("h1")).to_contain_text(title)


def test_member_and_leader_walk_the_whole_loop_in_a_browser(server, browser, db):
    member = login_as(browser, server, "member_a")
    member.goto(f"{server}/cases/new")
    member.fill("input[name=resident_name]", "李奶奶")
    member.fill("input[name=resident_phone]", "13912345678")
    member.select_option("select[name=building_id]", str(building_id(db)))
    member.select_option("select[name=category]", "property_repair")
    member.select_option("select[name=channel]", "phone")
    member.select_option("select[name=green_channel]", "elderly")
    member.fill("textarea[name=description]", "楼道灯坏了，老人晚上看不见")
    member.click("button.primary")
    expect(member.locator(".flash")).to_contain_text("已登记")
    number = latest_case(db).number
    expect(member.locator("h1")).to_contain_text(number)

    leader = login_as(browser, server, "leader_a")
    _open_my_task(leader, server, "派单/转办")
    leader.check("input[name=dispatch_to][value=member]")
    leader.select_option("select[name=handler_id]", str(user_id(db, "member_a")))
    leader.select_option("select[name=deadline_class]", "emergency")
    leader.click("button.primary")
    expect(leader.locator(".flash")).to_be_visible()

    _open_my_task(member, server, "网格员办理")
    member.check("input[name=handle_action][value=done]")
    member.fill("textarea[name=text]", "已更换灯泡，居民确认可用")
    member.click("button.primary")

    _open_my_task(member, server, "回访")
    member.check("input[name=satisfaction][value=satisfied]")
    member.click("button.primary")

    _open_my_task(leader, server, "审核归档")
    leader.check("input[name=confirm]")
    leader.click("button.primary")

    expect(leader.locator("h1")).to_contain_text("已归档")
    timeline = leader.locator("ol.timeline")
    for text in ("登记诉求", "派单", "办理", "回访", "网格员甲", "网格长甲", "已更换灯泡，居民确认可用"):
        expect(timeline).to_contain_text(text)
    expect(timeline.locator("li")).to_have_count(6)
    assert re.search(r"已归档|archived", leader.content())
    leader.screenshot(path=str(screenshots() / "archived-case.png"), full_page=True)
