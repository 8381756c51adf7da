"""Reply templates, archive rework (退回重办) and recall (撤回), walked in Debian's chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import login_as, screenshots
from tests.conftest import dispatch, intake, latest_case, open_task
from tracker.models import Case, CaseStatus, Department

pytestmark = pytest.mark.browser


def _no_sideways_scroll(page) -> None:
    """The page fits a phone's width (390 px), and the viewport goes back afterwards."""
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), page.url
    finally:
        page.set_viewport_size(size)


def test_templates_rework_and_recall(server, browser, login, db):
    # The leader keeps a template for handling results of property repairs.
    leader = login_as(browser, server, "leader_a")
    expect(leader.locator("header nav a[href='/replies/']")).to_have_text("常用语")  # in the (foldable) menu
    leader.goto(f"{server}/replies/")
    expect(leader.locator("h1")).to_contain_text("常用语")
    leader.get_by_role("button", name="保存").click()  # nothing filled in: told what is missing
    expect(leader.locator("body")).to_contain_text("请给常用语起一个简短的标题。")
    leader.select_option("select[name=category]", "property_repair")
    leader.check("input[name=use][value=result]")
    leader.fill("input[name=title]", "维修完成")
    leader.fill("textarea[name=text]", "已为{name}修好楼道灯（编号{number}）。")
    leader.get_by_role("button", name="保存").click()
    expect(leader.locator(".flash")).to_contain_text("维修完成")
    _no_sideways_scroll(leader)

    # At the desk: an on-the-spot reply for certificates, offered while that category is chosen.
    leader.select_option("select[name=category]", "certificates")
    leader.check("input[name=use][value=reply]")
    leader.fill("input[name=title]", "居住证明")
    leader.fill("textarea[name=text]", "{name}您好，请携带身份证到服务台办理居住证明。")
    leader.get_by_role("button", name="保存").click()
    expect(leader.locator(".flash")).to_contain_text("居住证明")
    desk = login_as(browser, server, "member_a")
    desk.goto(f"{server}/cases/new")
    button = desk.locator(".reply-templates button", has_text="居住证明")
    desk.select_option("select[name=category]", "property_repair")
    expect(button).to_be_hidden()
    desk.select_option("select[name=category]", "certificates")
    desk.fill("input[name=resident_name]", "李大爷")
    button.click()
    expect(desk.locator("textarea[name=reply]")).to_have_value("李大爷您好，请携带身份证到服务台办理居住证明。")
    _no_sideways_scroll(desk)

    # A case recorded and dispatched; the handler inserts the template with one click.
    recorder, leader_client = login("member_a"), login("leader_a")
    recorder.submit("/cases/new", intake(db))
    case = latest_case(db)
    leader.goto(f"{server}/tasks/{open_task(db, case.id).id}")
    expect(leader.locator("select[name=handler_id]")).to_contain_text("在办")
    _no_sideways_scroll(leader)
    dispatch(leader_client, db, case.id, handler="member_a2")
    member = login_as(browser, server, "member_a2")
    member.goto(f"{server}/tasks/{open_task(db, case.id).id}")
    member.get_by_role("button", name="维修完成").click()
    expect(member.locator("textarea[name=text]")).to_have_value(f"已为张阿姨修好楼道灯（编号{case.number}）。")
    _no_sideways_scroll(member)
    member.locator("form:has(textarea[name=text]) button.primary").click()
    expect(member.locator(".flash")).to_be_visible()
    assert latest_case(db).result == f"已为张阿姨修好楼道灯（编号{case.number}）。"
    recorder.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "satisfied"})

    # Archive review sends it back: a reason is required, then the handler sees it with a new limit.
    leader.goto(f"{server}/tasks/{open_task(db, case.id).id}")
    _no_sideways_scroll(leader)
    leader.check("input[name=archive_decision][value=rework]")
    leader.get_by_role("button", name="提交审核").click()
    expect(leader.locator("body")).to_contain_text("请写明退回重办的理由")
    leader.check("input[name=archive_decision][value=rework]")
    leader.fill("textarea[name=comment]", "请补充更换灯具的照片")
    leader.get_by_role("button", name="提交审核").click()
    expect(leader.locator(".flash")).to_be_visible()
    expect(leader.locator("body")).to_contain_text("已退回重办")
    db.expire_all()
    assert db.get(Case, case.id).status == CaseStatus.HANDLING
    member.goto(f"{server}/tasks/{open_task(db, case.id).id}")
    expect(member.locator("dd.rework")).to_contain_text("请补充更换灯具的照片")
    member.goto(f"{server}/notifications")
    expect(member.locator("body")).to_contain_text("请补充更换灯具的照片")
    member.screenshot(path=str(screenshots() / "rework-notice.png"), full_page=True)

    # A referral recalled before the department finishes.
    recorder.submit("/cases/new", intake(db, description="小区门口违章停车"))
    referral = latest_case(db)
    leader_client.submit(f"/tasks/{open_task(db, referral.id).id}", {
        "dispatch_to": "department", "handler_id": "0", "department_id": str(db.scalar(select(Department.id))),
        "deadline_class": "general", "dispatch_note": "请物业中心处理"})
    handle = open_task(db, referral.id)
    leader.goto(f"{server}/tasks/{handle.id}")
    expect(leader.locator("#recall")).to_be_visible()
    leader.fill("#recall input[name=reason]", "应由城管中队处理")
    leader.locator("#recall").get_by_role("button", name="撤回").click()
    expect(leader.locator(".flash")).to_contain_text("已撤回")
    db.expire_all()
    assert db.get(Case, referral.id).status == CaseStatus.DISPATCHING
    leader.goto(f"{server}/tasks/{open_task(db, referral.id).id}")
    expect(leader.locator("ol.returns")).to_contain_text("应由城管中队处理")
    _no_sideways_scroll(leader)
    leader.screenshot(path=str(screenshots() / "dispatch-after-recall.png"), full_page=True)
    dept = login_as(browser, server, "dept")
    dept.goto(f"{server}/notifications")
    expect(dept.locator("body")).to_contain_text("应由城管中队处理")
