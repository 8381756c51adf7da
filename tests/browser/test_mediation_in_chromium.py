"""A handler at 390 px records a mediation (矛盾调解) from the handling page; the case page shows it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.test_photos_in_chromium import WIDTH, _phone
from tests.conftest import configured_app, dispatch, intake, latest_case, open_task
from tracker.models import Mediation


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def _no_sideways_scroll(page: Page) -> None:
    """The page scrolls only up and down at this width."""
    scroll, client = page.evaluate(
        "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert scroll <= client <= WIDTH, f"{page.url} is {scroll}px wide in {client}px"


def test_the_handler_records_a_mediation_from_the_handling_page_at_390px(browser, server, login, db):
    assert login("member_a").submit("/cases/new", intake(db, category="dispute_mediation",
                                                         description="楼上漏水到楼下")).status_code == 302
    case = latest_case(db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    follow_up = (dt.date.today() + dt.timedelta(days=7)).isoformat()

    member = _phone(browser, server, "member_a")
    member.goto(f"{server}/tasks/{open_task(db, case.id).id}")
    _no_sideways_scroll(member)
    member.locator(f"a[href$='/cases/{case.id}/mediations/new']").first.click()
    expect(member.locator("#party1_name")).to_be_visible()
    _no_sideways_scroll(member)
    member.fill("#party1_name", "王先生")
    member.fill("#party1_phone", "13900001111")
    member.fill("#party2_name", "赵女士")
    member.fill("#party2_phone", "13900002222")
    member.fill("#mediators", "网格员甲、社区调解员")
    member.fill("#follow_up_on", follow_up)
    member.locator("button.primary[type=submit]").click()
    # No agreement: the page names the problem, keeps what was typed, and records nothing.
    expect(member.locator(".field.has-error #agreement")).to_be_visible()
    assert member.input_value("#party1_name") == "王先生" and member.input_value("#party2_phone") == "13900002222"
    assert db.scalars(select(Mediation)).first() is None
    _no_sideways_scroll(member)
    member.fill("#agreement", "楼上修好防水，赔偿500元")
    member.locator("button.primary[type=submit]").click()

    record = member.locator("#mediations dl.mediation")
    expect(record).to_have_count(1)
    assert member.url.split("#")[0].rstrip("/").endswith(f"/cases/{case.id}")
    text = record.inner_text()
    assert "王先生" in text and "赵女士" in text and "网格员甲" in text and "楼上修好防水，赔偿500元" in text
    assert follow_up in text
    _no_sideways_scroll(member)
    row = db.scalars(select(Mediation)).one()
    assert row.case_id == case.id and row.accepted and row.follow_up_on.isoformat() == follow_up
