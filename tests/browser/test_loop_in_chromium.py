"""A person walks the whole loop in Debian's chromium, driven by Playwright, against a real server."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, building_id, latest_case, user_id

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def server(app) -> Iterator[str]:
    """Serve the app over real HTTP on a free loopback port."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser():
    """Launch Debian's chromium (never a downloaded browser)."""
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


def _login(browser, base: str, username: str) -> Page:
    """Open a fresh browser context and log in."""
    page = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_visible()
    return page


def _open_my_task(page: Page, base: str, title: str) -> None:
    """Go to the inbox and open the first task with this title."""
    page.goto(f"{base}/")
    page.get_by_role("link", name=title).first.click()
    expect(page.locator("h1")).to_contain_text(title)


def test_member_and_leader_walk_the_whole_loop_in_a_browser(server, browser, db):
    member = _login(browser, server, "member_a")
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

    leader = _login(browser, server, "leader_a")
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
    leader.screenshot(path=str(_screenshots() / "archived-case.png"), full_page=True)


def _screenshots() -> Path:
    """Return a folder for screenshots a person can look at after the run."""
    folder = Path(__file__).resolve().parents[2] / "instance" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
