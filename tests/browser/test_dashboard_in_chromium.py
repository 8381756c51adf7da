"""The numbers in Debian's chromium at phone width: a leader follows a figure to its cases; the street office
ranks the grids and opens one."""

from __future__ import annotations

import pytest
import time_machine
from playwright.sync_api import expect

from tests.browser.conftest import login_as, screenshots
from tests.web.test_stats import NOW, PERIOD, _numbers, build_scenario

pytestmark = pytest.mark.browser
QUERY = f"period=custom&from={PERIOD.first}&to={PERIOD.last}"


def _no_sideways_scroll(page) -> None:
    """The page fits 390 px: nothing scrolls sideways (wide tables scroll inside their own box)."""
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390


def test_leader_and_street_office_dashboards(server, browser, app, db):
    scenario = build_scenario(app, db)
    numbers = _numbers(db, scenario)
    with time_machine.travel(NOW, tick=True):
        leader = login_as(browser, server, "leader_a")
        leader.set_viewport_size({"width": 390, "height": 844})
        leader.locator("button.menu-toggle").click()  # the menu is folded behind its button on a phone
        leader.get_by_role("link", name="数据", exact=True).click()
        expect(leader.locator("h1")).to_contain_text("数据统计")
        leader.goto(f"{leader.url.split('?')[0]}?{QUERY}")
        rates = leader.locator("table.rates")
        expect(rates.locator("tr[data-rate=response_rate] td.value")).to_have_text("33.3%")
        expect(rates.locator("tr[data-rate=satisfaction_rate] td.value")).to_have_text("50.0%")
        expect(leader.locator("svg.bar").first).to_be_visible()
        _no_sideways_scroll(leader)
        leader.screenshot(path=str(screenshots() / "numbers-leader.png"), full_page=True)
        # Follow the overdue figure to its cases: exactly case C.
        rates.locator("tr[data-rate=overdue_count] a[data-fig=overdue]").click()
        expect(leader.locator("table.cases tbody tr, table.list tbody tr")).to_have_count(1)
        expect(leader.locator("main")).to_contain_text(numbers["C"])

        street = login_as(browser, server, "street")
        street.set_viewport_size({"width": 390, "height": 844})
        street.goto(f"{server}/numbers/area?{QUERY}")
        expect(street.locator("h1")).to_contain_text("数据统计")
        ranking = street.locator("#grid-ranking tbody tr")
        expect(ranking).to_have_count(2)
        expect(ranking.first).to_have_attribute("data-grid", "GA")
        _no_sideways_scroll(street)
        street.screenshot(path=str(screenshots() / "numbers-street-office.png"), full_page=True)
        ranking.first.locator("th a").click()
        expect(street.locator("h1")).to_contain_text("GA")
