"""Typed SQLAlchemy models: places, people, roles, cases, task projection, audit trail."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    Column,
    Date as sa_Date,
    DateTime,
    Enum as SAEnum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from . import clock
from .codes import (
    AttachmentKind,
    CareGroup,
    Channel,
    DeadlineClass,
    DeliveryChannel,
    DeliveryStatus,
    DispatchTo,
    Door,
    FormKey,
    GreenChannel,
    NotificationKind,
    OnHoliday,
    Outcome,
    ReplyUse,
    Urgency,
)


def utcnow() -> dt.datetime:
    """Return the app's current time in UTC, timezone-aware (see ``clock``: the demo can move it)."""
    return clock.now()


class UTCDateTime(TypeDecorator):
    """Store UTC; always hand back aware datetimes, also on SQLite which keeps no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Normalize to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        """Attach UTC to values read back without a zone."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base for every GridLoop table."""

    type_annotation_map = {dt.datetime: UTCDateTime}


class Coded(SAEnum):
    """A coded column: a VARCHAR holding one of a StrEnum's values, and a CHECK refusing any other.

    The ORM refuses other values before they reach the database and reads back enum members. A
    comparison binds a plain string: a filter naming an unknown code matches nothing instead of failing.
    """

    def coerce_compared_value(self, op, value):
        """Compare with plain strings, unchecked (writes stay checked)."""
        return String(self.length)


def _values(enum: type[StrEnum]) -> list[str]:
    """Return what a coded column stores: the members' values (not their names)."""
    return [member.value for member in enum]


def coded(enum: type[StrEnum], length: int, name: str) -> Coded:
    """Return the type of a column holding ``enum``'s values; ``name`` names its CHECK constraint.

    Not a native PostgreSQL enum: adding a value later is a migration replacing the CHECK, the same on
    both backends. Migration 0011 and later ones freeze each value list; keep them in step.
    """
    return Coded(enum, native_enum=False, values_callable=_values, create_constraint=True, length=length,
                 validate_strings=True, name=name)


class Role(StrEnum):
    """What a membership lets a user do; lanes map to these in config.toml."""

    GRID_MEMBER = "grid_member"
    GRID_LEADER = "grid_leader"
    DEPARTMENT_HANDLER = "department_handler"
    AUDITOR = "auditor"
    # The street office (街道办) above the communities: escalated cases go to it.
    STREET_OFFICE = "street_office"


class CaseStatus(StrEnum):
    """Where a case is in the closed loop, derived from its ready tasks."""

    RECORDING = "recording"
    DISPATCHING = "dispatching"
    HANDLING = "handling"
    EXTENSION_REVIEW = "extension_review"
    CALLBACK = "callback"
    ARCHIVE_REVIEW = "archive_review"
    ARCHIVED = "archived"


class TaskStatus(StrEnum):
    """Whether a projected task still waits for someone."""

    OPEN = "open"
    DONE = "done"


class Community(Base):
    __tablename__ = "community"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    grids: Mapped[list[Grid]] = relationship(back_populates="community", order_by="Grid.code")


class Grid(Base):
    __tablename__ = "grid"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    # Short code shown in lists, e.g. "G1".
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    # Published on the public grid notice (网格公示): when the grid's office is open, e.g. "周一至周五 9:00-17:00",
    # and the services it offers, one per line.
    office_hours: Mapped[str] = mapped_column(String(200), default="", server_default="")
    service_items: Mapped[str] = mapped_column(Text, default="", server_default="")
    community: Mapped[Community] = relationship(back_populates="grids")
    buildings: Mapped[list[Building]] = relationship(back_populates="grid", order_by="Building.name")

    __table_args__ = (UniqueConstraint("community_id", "code"),)


class Building(Base):
    """A building compound (楼院); it fixes which grid a case belongs to."""

    __tablename__ = "building"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200), default="")
    # WGS-84 position of the compound's gate: Open311 clients file requests by coordinates.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    grid: Mapped[Grid] = relationship(back_populates="buildings")


class Department(Base):
    """A functional department (职能部门) that referred cases go to."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class User(UserMixin, Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), default="")
    # The public grid notice (网格公示) names grid staff; it shows a phone only when this is set: the duty
    # phone if there is one, else ``phone``.
    public_phone: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A duty phone (值班电话) published instead of the personal one; empty: none.
    duty_phone: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # Werkzeug scrypt/pbkdf2 hash; the plain password is never stored.
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A program's account (the 12345 hotline bridge, Open311 apps): it acts through API tokens only, never
    # logs in with a password, and is no person: never listed, offered or given work where people are.
    is_program: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Set when an administrator resets the password: the next login must choose a new one first.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Part of every session's signed user id: raising it (logout, a new password, disabling, a role
    # taken away) ends every session of the user, on every device, at their next request.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", lazy="selectin", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        """Return whether the account may log in."""
        return self.active

    def get_id(self) -> str:
        """Return the id a session stores: the user's id and session generation, e.g. "28.3"."""
        return f"{self.id}.{self.session_generation or 0}"


class Membership(Base):
    """A role held by a user in one scope: a grid, a department or a community."""

    __tablename__ = "membership"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    role: Mapped[Role] = mapped_column(coded(Role, 32, "ck_membership_role"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    # Auditors are scoped to a community.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"))
    user: Mapped[User] = relationship(back_populates="memberships")

    __table_args__ = (UniqueConstraint("user_id", "role", "grid_id", "department_id", "community_id"),)


class ProcessDefinition(Base):
    """One deployed version of a BPMN file; cases keep the version they started on."""

    __tablename__ = "process_definition"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the BPMN source: the version's identity.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Read once per process by content hash (services.definitions.as_definition), not with every case.
    source: Mapped[str] = mapped_column(Text, deferred=True)
    deployed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


#: The cases whose figures a clock can still change (``ix_case_undecided``; queries.stats says the same in SQL).
UNDECIDED = "first_dispatched_at IS NOT NULL AND (responded_at IS NULL OR handled_at IS NULL)"


class Case(Base):
    """A resident's request and everything decided about it."""

    __tablename__ = "case"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    resident_name: Mapped[str] = mapped_column(String(100))
    # Stored in E.164 after validation.
    resident_phone: Mapped[str] = mapped_column(String(32))
    address_detail: Mapped[str] = mapped_column(String(200), default="")
    # From programs (Open311 apps): where the resident stood, an e-mail and a photo link; often empty.
    resident_email: Mapped[str] = mapped_column(String(254), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    media_url: Mapped[str] = mapped_column(String(500), default="")
    category: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str] = mapped_column(Text)
    # How the resident reached us (phone, walk-in, 12345 hotline…), as staff recorded it.
    channel: Mapped[Channel] = mapped_column(coded(Channel, 20, "ck_case_channel"), index=True)
    # The door the case came in through, set by the system, never by a form: web, api or open311.
    # Only cases filed through Open311 are shown to the public by Open311's reads.
    intake: Mapped[Door] = mapped_column(coded(Door, 16, "ck_case_intake"), default=Door.WEB, server_default="web",
                                         index=True)
    urgency: Mapped[Urgency] = mapped_column(coded(Urgency, 20, "ck_case_urgency"), default=Urgency.NORMAL)
    # Special group served first: elderly, disabled, sick; empty when none.
    green_channel: Mapped[GreenChannel] = mapped_column(coded(GreenChannel, 20, "ck_case_green_channel"),
                                                        default=GreenChannel.NONE)
    status: Mapped[CaseStatus] = mapped_column(coded(CaseStatus, 20, "ck_case_status"), index=True)
    reply: Mapped[str] = mapped_column(Text, default="")
    # "member" or "department": who the leader sent it to.
    dispatch_to: Mapped[DispatchTo | None] = mapped_column(coded(DispatchTo, 20, "ck_case_dispatch_to"))
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    deadline_class: Mapped[DeadlineClass | None] = mapped_column(coded(DeadlineClass, 20, "ck_case_deadline_class"))
    # The current handling period: when it began and when each of its timers fires.
    dispatched_at: Mapped[dt.datetime | None]
    sign_for_at: Mapped[dt.datetime | None]
    remind_at: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    escalate_at: Mapped[dt.datetime | None]
    # When the handler signed for (签收) the case in this period; None until then.
    signed_at: Mapped[dt.datetime | None]
    # The limit a reminder was last sent for, so a re-armed timer does not remind twice.
    reminded_for: Mapped[dt.datetime | None]
    result: Mapped[str] = mapped_column(Text, default="")
    # Last callback answer: satisfied / basic / dissatisfied / unreachable.
    outcome: Mapped[Outcome | None] = mapped_column(coded(Outcome, 20, "ck_case_outcome"), index=True)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    # The numbers' facts (services.facts keeps them as each audit event is recorded; README "The numbers"):
    # the first handling period's dispatch, sign-for limit and handling limit, the first sign-for (签收),
    # the first completed handling with the limit then in force (extensions included) and its working
    # minutes, whether the intake answered it on the spot, and the first callback that reached the resident.
    first_dispatched_at: Mapped[dt.datetime | None]
    respond_by: Mapped[dt.datetime | None]
    first_due_at: Mapped[dt.datetime | None]
    responded_at: Mapped[dt.datetime | None]
    handled_at: Mapped[dt.datetime | None]
    handled_due_at: Mapped[dt.datetime | None]
    handling_minutes: Mapped[int | None] = mapped_column(Integer)
    answered_on_spot: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    first_outcome: Mapped[Outcome | None] = mapped_column(coded(Outcome, 20, "ck_case_first_outcome"))
    # Who recorded the case (the audit chain names them too); reading it follows roles, not this.
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # The office's local day of ``created_at`` (services.facts sets it): the day whose totals count the case.
    local_day: Mapped[dt.date] = mapped_column(sa_Date())
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    archived_at: Mapped[dt.datetime | None]
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    # Serialized SpiffWorkflow state (zlib-compressed JSON without the spec); only workflows/ reads it.
    workflow_state: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # Number of audit events so far, and the hash of the last one (the chain's head).
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str | None] = mapped_column(String(64))
    # Duplicates (重复件) linked to this case and still waiting for its result: when it is handled, only a
    # case with some looks its links up (services.duplicates).
    waiting_duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What forms carry: every change a person makes bumps it; a stale form gets a conflict.
    # Timers firing do not bump it, so a reminder does not invalidate the form someone is filling in.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Optimistic lock on the row itself (every UPDATE, timers included).
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    grid: Mapped[Grid] = relationship(lazy="joined", innerjoin=True)
    building: Mapped[Building] = relationship(lazy="joined", innerjoin=True)
    department: Mapped[Department | None] = relationship()
    handler: Mapped[User | None] = relationship(foreign_keys=[handler_id])
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    definition: Mapped[ProcessDefinition] = relationship()
    tasks: Mapped[list[Task]] = relationship(back_populates="case", order_by="Task.created_at")

    __mapper_args__ = {"version_id_col": row_version}
    __table_args__ = (
        # The case list filters by grid or status and shows the newest first.
        Index("ix_case_grid_created", "grid_id", "created_at"),
        Index("ix_case_status_created", "status", "created_at"),
        # The numbers: one index holds every column a dashboard aggregates (the id too: PostgreSQL's
        # index-only scans need every column read), so a period's figures are read from the index alone.
        Index("ix_case_numbers", "created_at", "grid_id", "category", "channel", "department_id", "handler_id",
              "first_dispatched_at", "respond_by", "responded_at", "first_due_at", "handled_at", "handled_due_at",
              "due_at", "handling_minutes", "answered_on_spot", "first_outcome", "reopen_count", "status", "id"),
        # The numbers' "now": open cases per grid and member, due soon and overdue (an open status walks it).
        Index("ix_case_open_now", "status", "grid_id", "handler_id", "due_at"),
        # Hotspots: the same building and category within a few days.
        Index("ix_case_building_category_created", "building_id", "category", "created_at"),
        # The numbers' cases a clock can still change (dispatched, not yet signed for or not yet handled): the
        # day totals (stats_day) hold every other case's figures; these are counted at "now".
        Index("ix_case_undecided", "created_at", "grid_id", "first_dispatched_at", "respond_by", "responded_at",
              "first_due_at", "handled_at", "handled_due_at", "due_at", "id", sqlite_where=text(UNDECIDED),
              postgresql_where=text(UNDECIDED)),
    )


#: What a day's totals of one grid keep (``stats_day``): queries.stats' counted figures as no clock can change
#: them, the handling minutes, and the on-time and overdue counts held to the limits set at dispatch.
DAY_COUNTERS = ("recorded", "on_spot", "dispatched", "response_due", "responded", "handling_due", "on_time",
                "overdue", "handled", "reached", "satisfied", "basic", "dissatisfied", "reopened", "handling_minutes",
                "on_time_original", "overdue_original")

#: The numbers' day totals per grid (local days), kept current by the database itself with every write to a
#: case or a duplicate link (triggers services.facts installs): a dashboard reads a period of an area from a
#: few hundred of these rows, not from every case.
stats_day = Table(
    "stats_day", Base.metadata,
    Column("day", sa_Date(), primary_key=True),
    Column("grid_id", ForeignKey("grid.id"), primary_key=True),
    *(Column(name, Integer, nullable=False, server_default="0") for name in DAY_COUNTERS),
    Index("ix_stats_day_grid", "grid_id", "day"),
)


class Task(Base):
    """Projection of a READY user task; inboxes query this, never the workflow state."""

    __tablename__ = "task"

    # The SpiffWorkflow task UUID.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    form_key: Mapped[FormKey] = mapped_column(coded(FormKey, 100, "ck_task_form_key"))
    lane: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(coded(Role, 32, "ck_task_role"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    # None while the task sits in the pool of its grid or department.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[TaskStatus] = mapped_column(coded(TaskStatus, 10, "ck_task_status"), default=TaskStatus.OPEN)
    due_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # The case's audit events that opened and closed the task: after event k the current tasks are
    # those with opened_seq <= k and no closed_seq <= k (the diagram of a past event).
    opened_seq: Mapped[int | None]
    closed_seq: Mapped[int | None]

    case: Mapped[Case] = relationship(back_populates="tasks")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])

    __table_args__ = (
        Index("ix_task_inbox", "status", "assignee_id"),
        Index("ix_task_pool_grid", "status", "role", "grid_id"),
        Index("ix_task_pool_department", "status", "role", "department_id"),
    )


class AuditEvent(Base):
    """An append-only, per-case hash-chained record of who did what."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Display name at the time, kept so the record reads the same if the user is renamed.
    actor_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    task_name: Mapped[str | None] = mapped_column(String(100))
    # JSON object: field -> [old, new].
    changes: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship()

    __table_args__ = (UniqueConstraint("case_id", "seq"),)


class TokenScope(StrEnum):
    """What an API token may do, each within its user's own permissions."""

    # File requests through /open311/v2 and follow them as the public can; nothing on /api/v1.
    OPEN311 = "open311"
    # GET on /api/v1 (and Open311 reads) within the user's permissions; no change to anything.
    READ = "read"
    # Everything the user can do, through /api/v1 and Open311.
    FULL = "full"


class ApiToken(Base):
    """A bearer token a program uses to act as one user through the API and Open311; stored hashed."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    # What the token is for, e.g. "12345 hotline bridge".
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the secret: tokens are long random strings, so a plain digest is enough to look them up.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the secret, shown so people can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Rows from before scopes (migration 0008) act as their user in full, as they did when issued.
    scope: Mapped[TokenScope] = mapped_column(coded(TokenScope, 10, "ck_api_token_scope"))
    # After this moment the token is refused (401 "expired"); None: until revoked.
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class Cover(Base):
    """Stand-in cover (代班): between two dates, new work for one member of a grid goes to another."""

    __tablename__ = "cover"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    stand_in_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Local calendar days, both included.
    starts_on: Mapped[dt.date] = mapped_column(sa_Date())
    ends_on: Mapped[dt.date] = mapped_column(sa_Date())
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set when a leader ends the cover early; the cover no longer applies.
    cancelled_at: Mapped[dt.datetime | None]

    member: Mapped[User] = relationship(foreign_keys=[member_id])
    stand_in: Mapped[User] = relationship(foreign_keys=[stand_in_id])
    grid: Mapped[Grid] = relationship()


class Timer(Base):
    """The next moment something must happen to a case or a visit; the scheduler reads only this."""

    __tablename__ = "timer"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), unique=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id"), unique=True)
    due_at: Mapped[dt.datetime] = mapped_column(index=True)
    # Failed firing attempts; the timer is retried later and never dropped.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class Notification(Base):
    """An in-app notice to one person: reminders, supervision, escalation, missed visits."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id"))
    # What the notice is about: reminder, supervision, escalation… (codes.NotificationKind).
    kind: Mapped[NotificationKind] = mapped_column(coded(NotificationKind, 30, "ck_notification_kind"))
    # JSON object of values the message shows (case number, limit, note).
    params: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]

    case: Mapped[Case | None] = relationship()

    __table_args__ = (Index("ix_notification_inbox", "user_id", "read_at", "id"),)


class Setting(Base):
    """A small key/value store for state the app keeps between restarts (the demo clock)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Household(Base):
    """A household in a building; visits and diary notes attach to it."""

    __tablename__ = "household"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    # Unit and room, e.g. "2单元301".
    address_detail: Mapped[str] = mapped_column(String(200))
    head_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), default="")
    care_group: Mapped[CareGroup] = mapped_column(coded(CareGroup, 30, "ck_household_care_group"),
                                                  default=CareGroup.NONE)
    note: Mapped[str] = mapped_column(Text, default="")

    grid: Mapped[Grid] = relationship(lazy="joined", innerjoin=True)
    building: Mapped[Building] = relationship(lazy="joined", innerjoin=True)
    plans: Mapped[list[VisitPlan]] = relationship(back_populates="household", order_by="VisitPlan.id")


class VisitPlan(Base):
    """Fixed person, fixed days, fixed time: who visits a household and when."""

    __tablename__ = "visit_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    # ISO weekdays, comma-separated: "1,4" is Monday and Thursday.
    weekdays: Mapped[str] = mapped_column(String(20))
    # Local time of the visit, "HH:MM".
    time_of_day: Mapped[str] = mapped_column(String(5))
    # When the plan falls on a public holiday: "keep" (the elderly still need a visit) or "skip".
    on_holiday: Mapped[OnHoliday] = mapped_column(coded(OnHoliday, 10, "ck_visit_plan_on_holiday"),
                                                  default=OnHoliday.KEEP)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    household: Mapped[Household] = relationship(back_populates="plans")
    member: Mapped[User] = relationship()


class VisitStatus(StrEnum):
    """Where a routine visit stands."""

    OPEN = "open"
    DONE = "done"


class Visit(Base):
    """One planned visit: a routine_visit process instance and its one user task."""

    __tablename__ = "visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("visit_plan.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    scheduled_for: Mapped[dt.date] = mapped_column(sa_Date())
    # Planned moment, and the end of the planned day: after it the visit counts as missed.
    planned_at: Mapped[dt.datetime]
    missed_at: Mapped[dt.datetime | None]
    status: Mapped[VisitStatus] = mapped_column(coded(VisitStatus, 10, "ck_visit_status"), default=VisitStatus.OPEN)
    # The ready user task's id in the workflow.
    task_id: Mapped[str | None] = mapped_column(String(36))
    completed_at: Mapped[dt.datetime | None]
    # A case the visit raised, if any.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    # The idempotency key of the record that completed it (an offline phone's replay sends it again).
    record_key: Mapped[str | None] = mapped_column(String(64))
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    workflow_state: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    plan: Mapped[VisitPlan] = relationship()
    household: Mapped[Household] = relationship(lazy="joined", innerjoin=True)
    member: Mapped[User] = relationship()
    definition: Mapped[ProcessDefinition] = relationship()

    __mapper_args__ = {"version_id_col": row_version}
    __table_args__ = (UniqueConstraint("plan_id", "scheduled_for"),
                      Index("ix_visit_member_status", "member_id", "status"))


class DiaryNote(Base):
    """A dated note a worker keeps about a household (民情日记)."""

    __tablename__ = "diary_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    written_on: Mapped[dt.date] = mapped_column(sa_Date())
    text: Mapped[str] = mapped_column(Text)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship()
    case: Mapped[Case | None] = relationship()


class DeskStatus(StrEnum):
    """Where a mobile desk session (流动办公桌) stands."""

    PLANNED = "planned"
    OPEN = "open"
    CLOSED = "closed"


class DeskRoute(Base):
    """A fixed route of mobile desk sessions: every week on one weekday, the route's places in turn."""

    __tablename__ = "desk_route"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    # ISO weekday (1 Monday … 7 Sunday) and local times "HH:MM".
    weekday: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[str] = mapped_column(String(5))
    ends_at: Mapped[str] = mapped_column(String(5))
    # Building ids, comma-separated, in the order the sessions visit them.
    building_ids: Mapped[str] = mapped_column(String(1000))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


desk_session_staff = Table(
    "desk_session_staff", Base.metadata,
    Column("session_id", ForeignKey("desk_session.id"), primary_key=True),
    Column("user_id", ForeignKey("user_account.id"), primary_key=True),
)


class DeskSession(Base):
    """One mobile desk session: a place, a day and hours, the staff; requests are recorded into it."""

    __tablename__ = "desk_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    route_id: Mapped[int | None] = mapped_column(ForeignKey("desk_route.id"))
    # The place: a building compound of the grid, or a free address (a square, a market), or both.
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    address: Mapped[str] = mapped_column(String(200), default="")
    # Local calendar day and times "HH:MM".
    held_on: Mapped[dt.date] = mapped_column(sa_Date(), index=True)
    starts_at: Mapped[str] = mapped_column(String(5))
    ends_at: Mapped[str] = mapped_column(String(5))
    status: Mapped[DeskStatus] = mapped_column(coded(DeskStatus, 10, "ck_desk_session_status"),
                                               default=DeskStatus.PLANNED)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[dt.datetime | None]
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    closed_at: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # What the staff note when closing (weather, turnout, what to bring next time).
    summary_note: Mapped[str] = mapped_column(Text, default="")

    grid: Mapped[Grid] = relationship(lazy="joined", innerjoin=True)
    building: Mapped[Building | None] = relationship(lazy="joined")
    staff: Mapped[list[User]] = relationship(secondary=desk_session_staff, order_by="User.display_name",
                                             lazy="selectin")
    entries: Mapped[list[DeskEntry]] = relationship(back_populates="session", order_by="DeskEntry.id")

    __table_args__ = (Index("ix_desk_session_grid_day", "grid_id", "held_on"),)


class DeskEntry(Base):
    """A request recorded at a mobile desk session: its case, and whether it was answered there."""

    __tablename__ = "desk_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("desk_session.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), unique=True)
    answered_on_spot: Mapped[bool] = mapped_column(Boolean, default=False)

    session: Mapped[DeskSession] = relationship(back_populates="entries")
    case: Mapped[Case] = relationship()


class Attachment(Base):
    """A photo or file of a case (or a visit): stored by content hash; its hash is on the case's chain.

    The original is kept as sent (EXIF, GPS included: evidence); what pages show are the display copy
    and the thumbnail, re-encoded without any metadata.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id"), index=True)
    mediation_id: Mapped[int | None] = mapped_column(ForeignKey("mediation.id"), index=True)
    kind: Mapped[AttachmentKind] = mapped_column(coded(AttachmentKind, 20, "ck_attachment_kind"))
    # SHA-256 of the original's bytes: its name in the store, in the case bundle and on the audit chain.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # The name the file had on the phone, for people only (never a path).
    file_name: Mapped[str] = mapped_column(String(200), default="")
    # The display copy and thumbnail (JPEG, no metadata), stored by their own hashes.
    display_sha256: Mapped[str] = mapped_column(String(64))
    thumb_sha256: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User] = relationship()


class Mediation(Base):
    """A dispute mediation (矛盾调解) recorded while handling a case; every field is on the case's chain."""

    __tablename__ = "mediation"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    # JSON list of {"name", "phone"}: the parties (private: staff who may read the case only).
    parties: Mapped[str] = mapped_column(Text)
    mediators: Mapped[str] = mapped_column(String(200))
    agreement: Mapped[str] = mapped_column(Text)
    # Whether both parties accept what was agreed; a failed mediation may be referred on.
    accepted: Mapped[bool] = mapped_column(Boolean)
    # Where a failed mediation was referred, e.g. 法律援助中心; empty when not referred.
    referred_to: Mapped[str] = mapped_column(String(200), default="")
    # The follow-up day (local) and the moment the handler is reminded: the scheduler fires it once.
    follow_up_on: Mapped[dt.date | None] = mapped_column(sa_Date())
    follow_up_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    reminded_at: Mapped[dt.datetime | None]
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    recorded_by: Mapped[User] = relationship()
    case: Mapped[Case] = relationship()


class DeliveryPreference(Base):
    """How one person wants notifications sent besides the app: by e-mail, by the webhook (SMS, WeChat Work)."""

    __tablename__ = "delivery_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    # Where e-mail goes; empty: no e-mail, whatever ``email_on`` says.
    email: Mapped[str] = mapped_column(String(254), default="")
    email_on: Mapped[bool] = mapped_column(Boolean, default=False)
    # The webhook gateway reaches the person by their phone (SMS) or account there.
    webhook_on: Mapped[bool] = mapped_column(Boolean, default=False)


class Delivery(Base):
    """The outbox: one notification to send over one channel, with its attempts (the delivery log)."""

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    channel: Mapped[DeliveryChannel] = mapped_column(coded(DeliveryChannel, 10, "ck_delivery_channel"))
    # The e-mail address at the time it was queued (a later change of preference does not redirect it).
    address: Mapped[str] = mapped_column(String(254), default="")
    status: Mapped[DeliveryStatus] = mapped_column(coded(DeliveryStatus, 10, "ck_delivery_status"),
                                                   default=DeliveryStatus.PENDING)
    # Attempts so far, counting one in progress; after [delivery] max_attempts it is given up.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a scheduler may take it next: the retry time, or while SENDING the end of the sender's lease.
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]

    notification: Mapped[Notification] = relationship()
    user: Mapped[User] = relationship()

    # One message per notification and channel: queuing twice is refused by the database.
    __table_args__ = (UniqueConstraint("notification_id", "channel", name="uq_delivery_notification_channel"),
                      Index("ix_delivery_due", "status", "next_attempt_at"))


# -- the desk: duplicates (重复件) and one-time intake keys -------------------------------------------

#: Searching a resident by the whole number uses this; partial digits scan (a desk's volume, not a city's).
Index("ix_case_resident_phone", Case.resident_phone)


class DuplicateLink(Base):
    """A case linked to a main case as its duplicate (重复件): it follows the main case's handling.

    While ``released_at`` is empty the duplicate waits with no open task; when the main case is handled
    it proceeds to its own callback with the main case's result. Unlinking deletes the row (the audit
    chains of both cases keep the link and the unlink).
    """

    __tablename__ = "duplicate_link"

    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), primary_key=True)
    main_case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    linked_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    linked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # When the main case's result reached this case (its callback opened); None while it still follows.
    released_at: Mapped[dt.datetime | None]

    case: Mapped[Case] = relationship(foreign_keys=[case_id])
    main_case: Mapped[Case] = relationship(foreign_keys=[main_case_id])


class IntakeKey(Base):
    """A one-time key an intake was sent with (the desk form's hidden key, the API's Idempotency-Key).

    A repeat with the same key from the same account answers with the case already made.
    """

    __tablename__ = "intake_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    key: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the intake as sent (its command's JSON): the same key with other content is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_intake_key_user_key"),)


__all__ = ["AdminEvent", "ApiToken", "Attachment", "AuditEvent", "Base", "Building", "CalendarDay", "Case",
           "CaseStatus", "Category", "Coded", "Community", "Cover", "Delivery", "DeliveryPreference", "Department",
           "DeskEntry", "DeskRoute", "DeskSession", "DeskStatus", "DiaryNote", "DuplicateLink", "Grid", "Hotspot",
           "Household", "ImportUpload", "IntakeKey", "Mediation", "Membership", "Notification", "ProcessDefinition",
           "ReplyTemplate", "Report", "ReportPeriod", "ReportScope", "Role", "Setting", "Task", "TaskStatus", "Timer",
           "TokenScope", "UTCDateTime", "User", "Visit", "VisitPlan", "VisitStatus", "coded", "func", "utcnow"]


# -- administration (issue 15) ---------------------------------------------------------------------

class Category(Base):
    """A case category edited by administrators; config.toml's [categories] is the seed a row overrides."""

    __tablename__ = "category"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    # What the dispatch form proposes for a case of this category; None: no proposal.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    deadline_class: Mapped[DeadlineClass | None] = mapped_column(
        coded(DeadlineClass, 20, "ck_category_deadline_class"))
    # Inactive: no longer offered for new cases; old cases keep showing its name.
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CalendarDay(Base):
    """A day the working-day calendar treats otherwise than the published schedule (and config.toml)."""

    __tablename__ = "calendar_day"

    day: Mapped[dt.date] = mapped_column(sa_Date(), primary_key=True)
    # True: an extra working day (调休上班); False: an extra holiday (a local closure).
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")


class AdminEvent(Base):
    """One change an administrator made, on the admin trail: append-only, hash-chained like a case's events.

    Hashed by ``tracker.chain.event_hash`` with case id 0 and ``target`` in the task name's place; the
    trail's head (count and last hash) is kept in the setting ``admin_trail_head``.
    """

    __tablename__ = "admin_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actor_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    # What was changed, e.g. "user:12" or "building:3".
    target: Mapped[str] = mapped_column(String(100))
    # JSON object: field -> [old, new].
    changes: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ImportUpload(Base):
    """A previewed sheet waiting to be imported: kept in the database so any web machine can import it."""

    __tablename__ = "import_upload"

    # SHA-256 of the file: the confirmation names it.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReportPeriod(StrEnum):
    """How long a report's period is (the numbers)."""

    WEEK = "week"
    MONTH = "month"


class ReportScope(StrEnum):
    """Whose figures a report holds: a grid, a department or a community."""

    GRID = "grid"
    DEPARTMENT = "department"
    COMMUNITY = "community"


class Report(Base):
    """A produced report (周报 / 月报) of one grid, department or community, kept for download."""

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[ReportPeriod] = mapped_column(coded(ReportPeriod, 10, "ck_report_period"))
    scope: Mapped[ReportScope] = mapped_column(coded(ReportScope, 20, "ck_report_scope"))
    # The grid, department or community id (as ``scope`` says).
    scope_id: Mapped[int] = mapped_column(Integer)
    # Local days, both included.
    starts_on: Mapped[dt.date] = mapped_column(sa_Date())
    ends_on: Mapped[dt.date] = mapped_column(sa_Date())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # None: produced by the scheduler.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # The figures as computed when produced (JSON): the printable page shows them, as the workbook does.
    figures: Mapped[str] = mapped_column(Text, deferred=True)
    # The XLSX workbook; None: built from ``figures`` when downloaded (the scheduler keeps the figures only).
    xlsx: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    __table_args__ = (UniqueConstraint("period", "scope", "scope_id", "starts_on", name="uq_report_period_scope"),)


hotspot_case = Table(
    "hotspot_case", Base.metadata,
    Column("hotspot_id", ForeignKey("hotspot.id"), primary_key=True),
    Column("case_id", ForeignKey("case.id"), primary_key=True, index=True),
)


class Hotspot(Base):
    """The same building and category asked about again and again within a few days (未诉先办)."""

    __tablename__ = "hotspot"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    category: Mapped[str] = mapped_column(String(40))
    # The first and the last request counted, and when the leader was told.
    first_at: Mapped[dt.datetime]
    last_at: Mapped[dt.datetime]
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The proactive case (主动发现) a leader opened for it; None until then.
    proactive_case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))

    building: Mapped[Building] = relationship(lazy="joined", innerjoin=True)
    cases: Mapped[list[Case]] = relationship(secondary=hotspot_case, order_by="Case.created_at")
    proactive_case: Mapped[Case | None] = relationship(foreign_keys=[proactive_case_id])

    __table_args__ = (Index("ix_hotspot_place", "building_id", "category", "last_at"),)


class ReplyTemplate(Base):
    """A reply template (常用语) of a grid: one click puts its text into the reply, result or callback note.

    ``{name}`` and ``{number}`` in the text become the resident's name and the case number when inserted.
    """

    __tablename__ = "reply_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"))
    # A category code of [categories]; empty: offered for every category.
    category: Mapped[str] = mapped_column(String(40), default="")
    use: Mapped[ReplyUse] = mapped_column(coded(ReplyUse, 20, "ck_reply_template_use"))
    title: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    grid: Mapped[Grid] = relationship()

    __table_args__ = (Index("ix_reply_template_grid_use", "grid_id", "use", "category"),)
