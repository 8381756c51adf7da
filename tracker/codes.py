"""Coded values: each coded field of a case or a task form is one of these, stored as its value.

Display labels live in ``labels`` (they need the UI language); the codes live here so that commands,
services and models share one definition without importing Flask.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How the resident reached us, as staff record it; ``api`` and ``open311`` name doors (see Door)."""

    WALK_IN = "walk_in"
    PHONE = "phone"
    WECHAT = "wechat"
    APP = "app"
    MOBILE_DESK = "mobile_desk"
    VISIT = "visit"
    HOTLINE_12345 = "hotline_12345"
    # A resident scanned a grid poster's QR code and filed the public form (扫码); only that door may carry it.
    QR_CODE = "qr_code"
    # Opened by a leader from a hotspot before anyone asked (主动发现, 未诉先办).
    PROACTIVE = "proactive"
    API = "api"
    OPEN311 = "open311"


class Door(StrEnum):
    """The door a case came in through, recorded by the system: the adapter that built the intake says it."""

    WEB = "web"
    API = "api"
    OPEN311 = "open311"
    # The public resident form a grid poster's QR code opens (no login).
    PUBLIC = "public"


#: Channels that name a door: only a case that came in through that door may carry them.
DOOR_CHANNELS = {Channel.API: Door.API, Channel.OPEN311: Door.OPEN311, Channel.QR_CODE: Door.PUBLIC}


class Urgency(StrEnum):
    """How urgent the request is."""

    NORMAL = "normal"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class GreenChannel(StrEnum):
    """The group served first with shorter limits (绿色通道); NONE when the resident is in none."""

    NONE = ""
    ELDERLY = "elderly"
    DISABLED = "disabled"
    SICK = "sick"


class Disposition(StrEnum):
    """What recording a request settled: answered on the spot, or sent on for handling."""

    DISPATCH = "dispatch"
    ON_SPOT = "on_spot"


class DispatchTo(StrEnum):
    """Who a leader sends a case to."""

    MEMBER = "member"
    DEPARTMENT = "department"


class DeadlineClass(StrEnum):
    """The time limit classes of [deadlines] in config.toml."""

    EMERGENCY = "emergency"
    UTILITIES = "utilities"
    GENERAL = "general"
    COMPLEX = "complex"


class HandleAction(StrEnum):
    """How the handler ends the handling step."""

    DONE = "done"
    RETURN = "return"
    EXTEND = "extend"


class Decision(StrEnum):
    """A leader's decision on an extension request."""

    APPROVE = "approve"
    REFUSE = "refuse"


class Outcome(StrEnum):
    """The resident's answer at the callback (回访)."""

    SATISFIED = "satisfied"
    BASIC = "basic"
    DISSATISFIED = "dissatisfied"
    UNREACHABLE = "unreachable"


class ArchiveDecision(StrEnum):
    """What archive review (审核归档) decides: file the record, or send the case back for rework (退回重办)."""

    ARCHIVE = "archive"
    REWORK = "rework"


class ReplyUse(StrEnum):
    """Which text a reply template (常用语) fills: the on-the-spot reply, the handling result, the callback."""

    REPLY = "reply"
    RESULT = "result"
    CALLBACK = "callback"


class HandoverMode(StrEnum):
    """How a handover shares the tasks out."""

    EVEN = "even"
    LEAST_LOADED = "least_loaded"


class FormKey(StrEnum):
    """The form a user task shows: the ``formKey`` of each user task in bpmn/ (a task row stores it)."""

    RECORD_REPLY = "record_reply"
    DISPATCH = "dispatch"
    HANDLE = "handle"
    REVIEW_EXTENSION = "review_extension"
    CALLBACK = "callback"
    REVIEW_ARCHIVE = "review_archive"
    SUPERVISE = "supervise"
    # The routine visit process's one task; its visit row keeps it, not the task table.
    VISIT = "visit"


class NotificationKind(StrEnum):
    """What an in-app notice is about; each has its message in templates/notifications."""

    SIGN_FOR = "sign_for"
    REMINDER = "reminder"
    SUPERVISION = "supervision"
    ESCALATION = "escalation"
    SUPERVISION_NOTE = "supervision_note"
    VISIT_MISSED = "visit_missed"
    ASSIGNED = "assigned"
    HANDED_OVER = "handed_over"
    # The same building and category asked about again and again (未诉先办).
    HOTSPOT = "hotspot"
    # A mediation's agreed follow-up date has come.
    MEDIATION_FOLLOW_UP = "mediation_follow_up"
    # Archive review sent the case back for rework (退回重办).
    REWORK = "rework"
    # A leader recalled a case referred to a department (撤回).
    RECALLED = "recalled"
    # A case was dispatched to the person (派单): sent only to those who get messages by e-mail or webhook
    # (the inbox shows new work in the app).
    NEW_TASK = "new_task"


class AttachmentKind(StrEnum):
    """When a photo or file was attached: at intake, before or after handling, on a visit or a mediation."""

    INTAKE = "intake"
    BEFORE = "before"
    AFTER = "after"
    VISIT = "visit"
    MEDIATION = "mediation"


class DeliveryChannel(StrEnum):
    """Where a notification goes besides the app: e-mail over SMTP, or the deployment's webhook (SMS, WeChat Work)."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    """Where one outgoing message stands in the outbox."""

    PENDING = "pending"
    # Claimed by a scheduler; due again when its lease ends (the sender died mid-send).
    SENDING = "sending"
    SENT = "sent"
    # Given up after [delivery] max_attempts.
    FAILED = "failed"


class CareGroup(StrEnum):
    """Households visited on a schedule (三定走访); NONE for a household in none of them."""

    NONE = ""
    ELDERLY_ALONE = "elderly_alone"
    LEFT_BEHIND_CHILD = "left_behind_child"
    HARDSHIP = "hardship"
    MIGRANT = "migrant"


class OnHoliday(StrEnum):
    """What a visit plan does on a public holiday."""

    # The visit happens anyway: the elderly still need it.
    KEEP = "keep"
    SKIP = "skip"


__all__ = ["DOOR_CHANNELS", "ArchiveDecision", "AttachmentKind", "CareGroup", "Channel", "DeadlineClass",
           "DeliveryChannel", "DeliveryStatus", "Decision", "DispatchTo", "Disposition", "Door",
           "FormKey", "GreenChannel", "HandleAction", "HandoverMode", "NotificationKind", "OnHoliday", "Outcome",
           "ReplyUse", "Urgency"]
