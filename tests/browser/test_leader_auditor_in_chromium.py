"""A leader hands a member's portfolio over and an auditor verifies a case, in Debian's chromium."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.browser.conftest import login_as, screenshots
from tests.conftest import PASSWORD, dispatch, intake, latest_case, user_id
from tracker.models import Grid, Membership, Role, User

pytestmark = pytest.mark.browser


def _board_counts(page) -> dict[str, str]:
    """Return username -> open count from the workload board."""
    counts = {}
    for row in page.locator("table.board tr[data-user]").all():
        counts[row.get_attribute("data-user")] = row.locator("td.open").inner_text().strip()
    return counts


def test_leader_hands_a_portfolio_to_two_members_and_the_board_changes(server, browser, login, db):
    grid = db.scalar(select(Grid).where(Grid.code == "GA"))
    db.add(User(username="member_a3", display_name="网格员丙", password_hash=generate_password_hash(PASSWORD),
                memberships=[Membership(role=Role.GRID_MEMBER, grid_id=grid.id)]))
    db.flush()
    recorder, leader_client = login("member_a"), login("leader_a")
    for _ in range(4):
        recorder.submit("/cases/new", intake(db))
        dispatch(leader_client, db, latest_case(db).id)

    leader = login_as(browser, server, "leader_a")
    leader.locator("button.menu-toggle").click()  # 420 px wide: the menu is folded behind its button
    leader.get_by_role("link", name="工作看板").click()
    expect(leader.locator("h1")).to_contain_text("工作量看板")
    assert _board_counts(leader)["member_a"] == "4"
    leader.locator("tr[data-user=member_a]").get_by_role("link", name="移交").click()
    # Forgetting who takes the tasks and why: told so, nothing moves.
    leader.get_by_role("button", name="预览").click()
    expect(leader.locator(".error").first).to_be_visible()
    expect(leader.locator("body")).to_contain_text("请至少选择一名接手的网格员。")
    expect(leader.locator("body")).to_contain_text("请填写移交原因。")
    leader.check(f"input[name=to_ids][value='{user_id(db, 'member_a2')}']")
    leader.check(f"input[name=to_ids][value='{user_id(db, 'member_a3')}']")
    leader.fill("input[name=reason]", "网格员甲调岗")
    leader.get_by_role("button", name="预览").click()
    expect(leader.locator("table.preview tbody tr")).to_have_count(4)
    leader.screenshot(path=str(screenshots() / "handover-preview.png"), full_page=True)
    leader.get_by_role("button", name="确认移交 4 项任务").click()
    expect(leader.locator(".flash")).to_contain_text("已移交 网格员甲 的 4 项任务")
    counts = _board_counts(leader)
    assert (counts["member_a"], counts["member_a2"], counts["member_a3"]) == ("0", "2", "2")
    leader.screenshot(path=str(screenshots() / "board-after-handover.png"), full_page=True)


def test_auditor_traces_a_case_verifies_it_and_checks_the_bundle_offline(server, browser, login, db, tmp_path):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)

    auditor = login_as(browser, server, "auditor")
    auditor.goto(f"{server}/cases/{case.id}")
    auditor.get_by_role("link", name="完整记录与校验").click()
    expect(auditor.locator(".verify.ok")).to_contain_text("链完整：已校验 3 个事件")
    history = auditor.locator("ol.timeline")
    for text in ("登记诉求", "派单", "网格员甲", "网格长甲"):
        expect(history).to_contain_text(text)
    head = auditor.locator("code.head").inner_text().strip()
    # The diagram as the case stood after event 2: the leader had to dispatch.
    auditor.locator("#event-2").get_by_role("link", name="查看此时流程图").click()
    expect(auditor.locator("svg g.el.current")).to_have_attribute("data-id", "dispatch")
    auditor.screenshot(path=str(screenshots() / "diagram-at-event-2.png"), full_page=True)
    auditor.go_back()
    with auditor.expect_download() as download:
        auditor.get_by_role("link", name="导出案卷包（可离线校验）").click()
    bundle = tmp_path / "bundle.zip"
    download.value.save_as(bundle)
    # Offline, as the README says: only the verifier from the bundle and the standard library.
    offline = tmp_path / "offline"
    offline.mkdir()
    with zipfile.ZipFile(bundle) as archive:
        archive.extract("verify_bundle.py", offline)
    result = subprocess.run([sys.executable, "-S", "verify_bundle.py", str(bundle)], cwd=offline,
                            capture_output=True, text=True, env={}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"OK: case {case.id}, 3 events, chain head {head}", result.stdout)
