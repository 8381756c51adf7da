"""Reply templates (常用语): kept by grid leaders per grid, offered on the matching task forms and at intake."""

from __future__ import annotations

import html

from sqlalchemy import select

from tests.conftest import dispatch, intake, latest_case, open_task
from tracker.models import Grid, ReplyTemplate


def _grid_id(db, code: str = "GA") -> int:
    return db.scalar(select(Grid.id).where(Grid.code == code))


def _add(leader, db, **overrides):
    """Add a template through the page, as a leader fills the form in."""
    data = {"grid_id": str(_grid_id(db)), "category": "property_repair", "use": "result",
            "title": "维修完成", "text": "{name}家的问题已修复（编号{number}）。"}
    data.update(overrides)
    return leader.submit("/replies/", data)


def _templates(db) -> list[ReplyTemplate]:
    db.expire_all()
    return list(db.scalars(select(ReplyTemplate).order_by(ReplyTemplate.id)))


def test_leader_adds_edits_and_deletes_a_template(login, db):
    leader = login("leader_a")
    assert "常用语" in leader.get("/").get_data(as_text=True)  # the menu link
    response = _add(leader, db)
    assert response.status_code == 302
    [template] = _templates(db)
    assert (template.title, template.use, template.category) == ("维修完成", "result", "property_repair")
    page = leader.get("/replies/").get_data(as_text=True)
    assert "维修完成" in page and "办理结果" in page and "物业维修" in page
    response = leader.submit(f"/replies/{template.id}", {
        "grid_id": str(_grid_id(db)), "category": "", "use": "callback", "title": "回访开场",
        "text": "{name}您好，我是网格员。"})
    assert response.status_code == 302
    [template] = _templates(db)
    assert (template.title, template.use, template.category) == ("回访开场", "callback", "")
    assert leader.submit(f"/replies/{template.id}/delete", {}, page="/replies/").status_code == 302
    assert _templates(db) == []


def test_bad_template_is_refused_with_reasons_and_saves_nothing(login, db):
    leader = login("leader_a")
    response = _add(leader, db, title="", text="", use="shout", category="nonsense")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "请给常用语起一个简短的标题" in body and "请填写常用语的内容" in body
    assert _templates(db) == []
    response = _add(leader, db, category="nonsense")
    assert response.status_code == 422 and "nonsense" in response.get_data(as_text=True)
    assert _templates(db) == []


def test_templates_are_scoped_to_the_grids_a_leader_leads(login, db):
    assert _add(login("leader_a"), db).status_code == 302
    [template] = _templates(db)
    other = login("leader_b")
    assert "维修完成" not in other.get("/replies/").get_data(as_text=True)
    assert other.get(f"/replies/{template.id}").status_code == 403
    assert other.submit(f"/replies/{template.id}/delete", {}, page="/replies/").status_code == 403
    assert _add(other, db, grid_id=str(_grid_id(db, "GA"))).status_code == 403
    for who in ("member_a", "dept", "auditor"):
        assert login(who).get("/replies/").status_code == 403, who
    assert len(_templates(db)) == 1


def test_handling_form_offers_the_grids_templates_for_its_category_with_name_and_number(login, db):
    leader = login("leader_a")
    _add(leader, db)  # property_repair, result
    _add(leader, db, category="", title="通用结果", text="已处理。")
    _add(leader, db, category="legal", title="法律结果", text="已转法律援助。")
    _add(leader, db, use="callback", title="回访话术", text="{name}您好")
    _add(login("leader_b"), db, grid_id=str(_grid_id(db, "GB")), title="B网格的", text="B")
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(leader, db, case.id)
    page = login("member_a").get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    box = page.split('class="reply-templates"')[1].split("</div>")[0]
    assert 'data-target="text"' in box
    assert f'data-name="张阿姨" data-number="{case.number}"' in box
    assert "维修完成" in box and "通用结果" in box
    assert "法律结果" not in box and "回访话术" not in box and "B网格的" not in box
    assert html.escape("{name}家的问题已修复（编号{number}）。") in box or "{name}家的问题已修复" in box
    assert "/static/replies.js" in page


def test_intake_offers_the_on_the_spot_replies(login, db):
    _add(login("leader_a"), db, use="reply", title="当场答复", text="{name}您好，已登记。")
    page = login("member_a").get("/cases/new").get_data(as_text=True)
    box = page.split('class="reply-templates"')[1].split("</div>")[0]
    assert 'data-target="reply"' in box and "当场答复" in box
    assert 'data-category="property_repair"' in box
    assert "/static/replies.js" in page
    assert 'class="reply-templates"' not in login("member_b").get("/cases/new").get_data(as_text=True)
