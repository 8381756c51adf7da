"""Queries: every list the views, the API and the exports read, in one place (views hold no SQL).

Plain functions of an explicit session and acting user, no Flask globals: the case list and its
exports (``cases``), the audit search (``audit``), the inbox, notifications and the workload board
(``work``), people, buildings and households (``places``) and Open311's request list (``open311``).
Several were tuned on a million cases; their comments say which shape matters and why, so keep the
shapes when changing them. Call them as ``queries.case_list(...)``.
"""

from __future__ import annotations

from .audit import (
    AUDIT_FILTERS,
    AUDIT_PAGE,
    SCAN_BATCHES,
    SCAN_SIZE,
    audit_filters,
    audit_search,
    case_number_batches,
    readable_case_ids,
)
from .cases import (
    CASE_FILTERS,
    COUNT_CAP,
    CasePage,
    case_events,
    case_feed,
    case_filters,
    case_list,
    export_batches,
    filtered_cases,
    grid_options,
    newest_first,
    parse_date,
    referenced_names,
    visible_grids,
)
from .open311 import RequestFilters, open311_request, open311_requests
from .places import (
    all_grid_ids,
    departments,
    diary_notes,
    household_buildings,
    households,
    led_grids,
    members_of,
    recordable_buildings,
    visit_history,
    visit_photos,
)
from .work import (
    CaseNotes,
    Inbox,
    Note,
    Workload,
    away_today,
    came_back,
    case_notes,
    current_covers,
    department_by_code,
    department_counts,
    inbox,
    notifications,
    open_counts,
    reply_templates,
    task_list,
    workload,
)

__all__ = [
    "AUDIT_FILTERS", "AUDIT_PAGE", "CASE_FILTERS", "COUNT_CAP", "SCAN_BATCHES", "SCAN_SIZE", "CasePage", "Inbox",
    "RequestFilters", "Workload", "all_grid_ids", "audit_filters", "audit_search", "case_events", "case_feed",
    "away_today", "case_filters", "case_list", "case_number_batches", "current_covers", "departments", "diary_notes",
    "export_batches", "filtered_cases", "grid_options", "household_buildings", "households", "inbox",
    "led_grids", "members_of", "newest_first", "notifications", "open311_request", "open311_requests",
    "parse_date", "readable_case_ids", "recordable_buildings", "referenced_names", "task_list",
    "visible_grids", "visit_history", "workload",
    "CaseNotes", "Note", "came_back", "case_notes", "department_by_code", "department_counts", "open_counts",
    "reply_templates", "visit_photos",
]
