"""The numbers' one input rule (``StatsQuery``): its rules, the API's 400s naming each parameter, and the
dashboards saying in Chinese what is wrong with a period asked for (then showing this month)."""

from __future__ import annotations

import datetime as dt
import re
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
import time_machine
from lxml import html as markup

from tests.web.test_stats import NOW, PERIOD, _token, build_scenario, figures, user_grid
from tracker.queries import stats
from tracker.services.commands import (
    MAX_ID,
    InvalidCommand,
    StatsGrouping,
    StatsPeriod,
    StatsQuery,
    build,
)

TODAY = dt.date(2026, 11, 18)


def problems(args: dict[str, str]) -> dict[str, str]:
    """Return the English message template of each parameter the query refuses ({} when it is taken)."""
    try:
        StatsQuery.from_args(args)
    except InvalidCommand as exc:
        return {e.field: e.template % {k: v for k, v in e.params.items()} for e in exc.errors}
    return {}


# -- the command -----------------------------------------------------------------------------------

def test_a_query_names_the_days_it_asks_for():
    assert StatsQuery.from_args({}).period_on(TODAY) == stats.month_of(TODAY)
    for kind in ("week", "month", "quarter"):
        # Days sent with another kind of period are checked as dates, and left alone.
        query = StatsQuery.from_args({"period": kind, "from": "2026-01-01", "to": "2026-01-05"})
        assert query.period_on(TODAY) == stats.period_of(kind, TODAY) and query.period_on(TODAY).kind == kind
    custom = StatsQuery.from_args({"period": "custom", "from": "2026-10-01", "to": "2026-10-31"})
    assert custom.period_on(TODAY) == stats.Period("custom", dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    single = StatsQuery.from_args({"period": "custom", "from": "2026-10-01", "to": "2026-10-01"})
    assert single.period_on(TODAY) == stats.Period("custom", dt.date(2026, 10, 1), dt.date(2026, 10, 1))
    query = StatsQuery.from_args({"grid": "7", "department": "8", "handler": str(MAX_ID), "by": "handler",
                                  "page": "2", "fig": "anything"})  # not the numbers' parameters: left alone
    assert (query.grid, query.department, query.handler, query.by) == (7, 8, MAX_ID, "handler")


def test_the_command_speaks_the_queries_vocabulary():
    assert get_args(StatsPeriod) == stats.PERIOD_KINDS
    assert set(get_args(StatsGrouping)) == set(stats.DIMENSIONS)


def test_a_custom_period_needs_both_days_in_order_and_at_most_the_longest():
    assert problems({"period": "custom"}) == {"from": "Give the first day of the custom period.",
                                              "to": "Give the last day of the custom period."}
    assert problems({"period": "custom", "from": "2026-10-01"}) == {"to": "Give the last day of the custom period."}
    assert problems({"period": "custom", "to": "2026-10-01"}) == {"from": "Give the first day of the custom period."}
    assert problems({"period": "custom", "from": "2026-10-31", "to": "2026-10-01"}) == {
        "from": "The custom period starts after it ends; check the dates."}
    first = dt.date(2024, 1, 1)
    longest = first + dt.timedelta(days=stats.MAX_CUSTOM_DAYS - 1)
    taken = StatsQuery.from_args({"period": "custom", "from": str(first), "to": str(longest)}).period_on(TODAY)
    assert (taken.last - taken.first).days + 1 == stats.MAX_CUSTOM_DAYS and taken.kind == "custom"
    assert problems({"period": "custom", "from": str(first), "to": str(longest + dt.timedelta(days=1))}) == {
        "from": f"A custom period is at most {stats.MAX_CUSTOM_DAYS} days; choose fewer days."}
    # The queries get no day whose period, or the period before it, is no date.
    assert set(problems({"period": "custom", "from": "0001-01-01", "to": "0001-01-02"})) == {"from"}
    assert set(problems({"period": "custom", "from": "9999-12-30", "to": "9999-12-31"})) == {"from"}
    for edge in ({"from": "1900-01-01", "to": "1900-01-31"}, {"from": "9998-12-01", "to": "9998-12-31"}):
        period = StatsQuery.from_args({"period": "custom", **edge}).period_on(TODAY)
        assert period.kind == "custom" and period.previous().first < period.first
        period.bounds(ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize("day", ["20261001", "2026-10-1", "2026-02-30", "2026-10-01T00:00", "1790000000", "", " ",
                                 "２０２６-１０-０１", "2026-10-01\x00"])
def test_a_day_is_written_yyyy_mm_dd(day):
    assert set(problems({"period": "week", "from": day})) == {"from"}
    assert set(problems({"period": "custom", "from": "2026-10-01", "to": day})) == {"to"}


@pytest.mark.parametrize("value", ["x", "0", "-1", "5.0", "+5", "5_000", "1e3", "²", str(MAX_ID + 1), ""])
def test_an_id_is_a_positive_whole_number_in_range(value):
    for name in ("grid", "department", "handler"):
        assert set(problems({name: value})) == {name}


def test_the_period_and_the_grouping_are_one_of_their_choices():
    assert problems({"period": "decade"}) == {
        "period": "Choose this week, this month, this quarter or custom days."}
    assert problems({"period": "Month"}).keys() == {"period"}
    assert problems({"by": "mood"}) == {"by": "Group by grid, department, handler, category or channel."}
    assert problems({"by": "grid"}) == {}
    # Every wrong parameter is named at once.
    assert problems({"period": "custom", "from": "2026-10-31", "to": "2026-10-01", "by": "mood", "grid": "x"}).keys() \
        == {"from", "by", "grid"}


def test_the_command_is_closed_and_frozen():
    with pytest.raises(InvalidCommand) as refused:
        build(StatsQuery, {"period": "month", "page": "2"})
    assert [e.field for e in refused.value.errors] == ["page"]
    query = StatsQuery.from_args({})
    with pytest.raises(ValueError):
        query.period = "week"  # type: ignore[misc]


# -- the API --------------------------------------------------------------------------------------

def test_the_api_names_every_wrong_parameter_in_the_requests_language(app, db):
    client, street = app.test_client(), _token(app, "street")

    def errors(query: dict[str, str], language: str) -> dict[str, str]:
        answer = client.get("/api/v1/stats", query_string=query, headers={**street, "Accept-Language": language})
        assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
        body = answer.get_json()
        assert body["type"] == "urn:gridloop:problem:bad-filter" and body["status"] == 400
        return {e["field"]: e["message"] for e in body["errors"]}

    reversed_days = {"period": "custom", "from": "2026-10-31", "to": "2026-10-01", "by": "mood", "grid": "x"}
    assert errors(reversed_days, "zh-CN") == {"from": "自定义日期的开始日期晚于结束日期，请检查日期。",
                                              "by": "分组方式须为以下之一：grid、department、handler、category、channel。",
                                              "grid": "请输入整数。"}
    assert errors(reversed_days, "en") == {"from": "The custom period starts after it ends; check the dates.",
                                           "by": "Group by grid, department, handler, category or channel.",
                                           "grid": "Enter a whole number."}
    assert errors({"period": "custom"}, "en").keys() == {"from", "to"}
    too_long = errors({"period": "custom", "from": "2000-01-01", "to": "3999-01-01"}, "zh-CN")
    assert too_long == {"from": f"自定义日期最长 {stats.MAX_CUSTOM_DAYS} 天，请缩短日期范围。"}
    assert errors({"period": "decade", "handler": str(MAX_ID + 1), "from": "2026-1-1"}, "en") == {
        "period": "Choose this week, this month, this quarter or custom days.",
        "handler": f"Enter a number of at most {MAX_ID}.", "from": "Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01."}
    # Other parameters are not the numbers': left alone, as before.
    assert client.get("/api/v1/stats", query_string={"period": "week", "utm": "x"}, headers=street).status_code == 200


def test_the_document_describes_the_parameters_the_command_takes(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    params = {p["name"]: p for p in document["paths"]["/stats"]["get"]["parameters"]}
    assert list(params) == list(StatsQuery.PARAMETERS)
    assert params["period"]["schema"]["enum"] == list(stats.PERIOD_KINDS)
    assert set(params["by"]["schema"]["enum"]) == set(stats.DIMENSIONS)
    assert params["grid"]["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    assert params["from"]["schema"] == {"type": "string", "format": "date"} and params["from"]["required"] is False


# -- the dashboards -------------------------------------------------------------------------------

def _rates(html: str) -> dict[str, str]:
    """Return each rate's text in a dashboard's table of rates."""
    return dict(re.findall(r'data-rate="(\w+)">\s*<th scope="row">[^<]*</th>\s*<td class="num value">([^<]*)</td>',
                           html))


def _notice(html: str) -> list[str]:
    """Return the lines of the period notice (none when the period was taken)."""
    found = markup.fromstring(html).xpath('//*[@id="period-problems"]')
    return [" ".join(node.text_content().split()) for node in found[0].xpath(".//p | .//li")] if found else []


def _picked(html: str) -> tuple[str, str, str]:
    """Return the period picker's chosen kind and days."""
    page = markup.fromstring(html)
    kind = page.xpath('//form[contains(@class, "period")]//option[@selected]/@value')[0]
    first = page.xpath('//form[contains(@class, "period")]//input[@name="from"]/@value')[0]
    last = page.xpath('//form[contains(@class, "period")]//input[@name="to"]/@value')[0]
    return kind, first, last


def test_a_dashboard_says_what_is_wrong_with_the_period_and_shows_this_month(app, db, login):
    build_scenario(app, db)
    with time_machine.travel(NOW, tick=False):
        leader = login("leader_a")
        page = f"/numbers/grids/{user_grid(app, 'GA')}"
        month = leader.get(f"{page}?period=month").get_data(as_text=True)
        assert _notice(month) == [] and _picked(month) == ("month", "2026-10-01", "2026-10-31")
        reversed_days = leader.get(f"{page}?period=custom&from=2026-10-31&to=2026-10-01")
        html = reversed_days.get_data(as_text=True)
        assert reversed_days.status_code == 200
        notice = _notice(html)
        assert notice == ["无法按所选周期统计，下面显示的是本月的数据。",
                          "开始日期：自定义日期的开始日期晚于结束日期，请检查日期。"]
        assert not re.search(r"[A-Za-z]", " ".join(notice))  # no English on a Chinese page
        # This month instead, exactly as asked for it.
        assert _picked(html) == ("month", "2026-10-01", "2026-10-31") and _rates(html) == _rates(month)
        # A day left empty in the picker is not given: a custom period says which one it needs.
        missing = leader.get(f"{page}?period=custom&from=2026-10-01&to=").get_data(as_text=True)
        assert _notice(missing)[1:] == ["结束日期：请填写自定义日期的结束日期。"]
        assert _notice(leader.get(f"{page}?period=custom&from=2026-10-01&to=2026-13-01").get_data(as_text=True))[1:] \
            == ["结束日期：日期格式不对：请按 YYYY-MM-DD 填写，例如 2026-12-01。"]
        assert _notice(leader.get(f"{page}?period=decade").get_data(as_text=True))[1:] == [
            "统计周期：请选择本周、本月、本季度或自定义日期。"]
        # The street office's page says the same.
        area = login("street").get("/numbers/area?period=custom&from=2026-10-31&to=2026-10-01").get_data(as_text=True)
        assert _notice(area) == notice and 'data-grid="GA"' in area


def test_a_good_period_shows_the_same_figures_as_before(app, db, login):
    build_scenario(app, db)
    with time_machine.travel(NOW, tick=False):
        html = login("leader_a").get(f"/numbers/grids/{user_grid(app, 'GA')}?period=custom&from={PERIOD.first}"
                                     f"&to={PERIOD.last}").get_data(as_text=True)
        assert _notice(html) == [] and _picked(html) == ("custom", str(PERIOD.first), str(PERIOD.last))
        [tally] = figures(app, "leader_a", NOW, stats.Definitions.from_config(app.config["GRIDLOOP"]))
        rates = tally.rates(stats.Definitions.from_config(app.config["GRIDLOOP"]))
        expected = {name: "—" if value is None else (f"{value:.1f}" if name == "handling_hours"
                                                      else f"{value * 100:.1f}%") for name, value in rates.items()
                    if name in _rates(html)}
        assert _rates(html) == expected and len(expected) == 8 and expected["response_rate"] == "33.3%"
        # The ranking of the street office is the grids' figures of the period asked for.
        area = login("street").get(f"/numbers/area?period=custom&from={PERIOD.first}&to={PERIOD.last}"
                                   ).get_data(as_text=True)
        assert _notice(area) == [] and area.index('data-grid="GA"') < area.index('data-grid="GB"')
