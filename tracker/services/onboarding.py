"""Spreadsheet onboarding: people, buildings and households from XLSX or CSV, previewed, then all or nothing.

A sheet is read whole and every row checked (by the same commands the admin screens use) before
anything is written; the preview names each bad row and cell. Rows are matched by a natural key
(people: username; buildings: grid and name; households: building and address detail), so importing
the same file again changes nothing. Households are written in bulk: ten thousand in a few seconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..codes import CareGroup
from ..errors import N_, DomainError
from ..models import Building, Community, Department, Grid, Household, ImportUpload, Role, User, utcnow
from . import accounts, admin
from .commands import GrantRole, InvalidCommand, RegisterHousehold, SaveBuilding, SavePerson, build

#: The largest file accepted (a sheet of 10,000 households is about 0.5 MB as XLSX, 1 MB as CSV).
MAX_BYTES = 8 * 1024 * 1024
#: The most rows one sheet may hold, and the most an XLSX may unpack to.
MAX_ROWS = 50_000
MAX_UNPACKED = 128 * 1024 * 1024

#: Each kind's columns: (key, Chinese header, required). The Chinese header or the key names a column.
COLUMNS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "people": (("username", "用户名", True), ("display_name", "姓名", True), ("phone", "电话", False),
               ("role", "角色", False), ("community", "社区", False), ("grid", "网格编码", False),
               ("department", "部门编码", False), ("public_phone", "公示电话", False),
               ("duty_phone", "值班电话", False), ("password", "初始密码", False)),
    "buildings": (("community", "社区", False), ("grid", "网格编码", True), ("name", "楼院名称", True),
                  ("address", "地址", False), ("latitude", "纬度", False), ("longitude", "经度", False)),
    "households": (("community", "社区", False), ("grid", "网格编码", True), ("building", "楼院名称", True),
                   ("address_detail", "单元门牌", True), ("head_name", "户主姓名", True), ("phone", "电话", False),
                   ("care_group", "关怀类别", False), ("note", "备注", False)),
}
KINDS = tuple(COLUMNS)
#: Example rows for the downloadable templates' instructions sheet.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "people": ("wangfang", "王芳", "13812345678", "网格员", "和平社区", "G1", "", "是", "", ""),
    "buildings": ("和平社区", "G1", "1号楼院", "和平路1号", "36.0731", "115.2105"),
    "households": ("和平社区", "G1", "1号楼院", "2单元301", "李秀英", "13912345678", "独居老人", ""),
}
#: Role names a sheet may use (Chinese, or the code).
ROLE_NAMES = {"网格员": Role.GRID_MEMBER, "网格长": Role.GRID_LEADER, "职能部门": Role.DEPARTMENT_HANDLER,
              "部门办理人": Role.DEPARTMENT_HANDLER, "督查员": Role.AUDITOR, "街道办": Role.STREET_OFFICE,
              **{r.value: r for r in Role}}
CARE_NAMES = {"": CareGroup.NONE, "无": CareGroup.NONE, "独居老人": CareGroup.ELDERLY_ALONE,
              "留守儿童": CareGroup.LEFT_BEHIND_CHILD, "困难群众": CareGroup.HARDSHIP, "困难": CareGroup.HARDSHIP,
              "流动人口": CareGroup.MIGRANT, **{c.value: c for c in CareGroup if c.value}}
YES = {"是", "yes", "y", "true", "1", "公示"}
NO = {"", "否", "no", "n", "false", "0"}


class SheetRefused(DomainError):
    """The file as a whole cannot be read as a sheet of this kind."""


@dataclass(frozen=True)
class Problem:
    """One bad cell (or row): the sheet's row number as a spreadsheet shows it, the column's header."""

    row: int
    column: str
    template: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def localized(self) -> str:
        """Return the message in the current UI language."""
        from flask_babel import gettext
        return gettext(self.template, **self.params)


@dataclass
class Plan:
    """What importing a sheet would do; nothing is written while ``problems`` holds anything."""

    kind: str
    digest: str
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    # People only: new roles of existing people, (username, GrantRole).
    grants: list[tuple[str, GrantRole]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        """Whether the sheet may be imported."""
        return not self.problems


@dataclass(frozen=True)
class Result:
    """What an import wrote; temporary passwords of new people, shown once."""

    created: int
    changed: int
    unchanged: int
    roles: int
    passwords: list[tuple[str, str]]


# -- reading ----------------------------------------------------------------------------------------

def sheet_format(data: bytes) -> str:
    """Tell by content whether the bytes are an XLSX workbook or CSV text; refuse anything else."""
    if len(data) > MAX_BYTES:
        raise SheetRefused(N_("The file is larger than %(mb)s MB; split it."), mb=MAX_BYTES // (1024 * 1024))
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise SheetRefused(N_("This is an old Excel file (.xls); save it as .xlsx or CSV and upload that."))
    if b"\x00" in data[:4096] or not data.strip():
        raise SheetRefused(N_("The file is neither an Excel workbook (.xlsx) nor CSV text."))
    return "csv"


def read_rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Return the header and the rows of the sheet (every cell as stripped text)."""
    rows = _xlsx_rows(data) if sheet_format(data) == "xlsx" else _csv_rows(data)
    cells = [["" if v is None else _text(v) for v in row] for row in rows]
    if not cells:
        raise SheetRefused(N_("The sheet is empty: it needs a header row and one row per record."))
    header, body = cells[0], [r for r in cells[1:] if any(r)]
    if len(body) > MAX_ROWS:
        raise SheetRefused(N_("The sheet holds more than %(n)s rows; split it."), n=MAX_ROWS)
    return header, body


def _text(value: Any) -> str:
    """Return a cell as text: whole numbers without ".0" (Excel keeps phone numbers as numbers)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


def _xlsx_rows(data: bytes) -> list[tuple[Any, ...]]:
    """Read the first sheet of a workbook, refusing a file that is no workbook or unpacks too large."""
    import openpyxl
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
                raise SheetRefused(N_("The workbook unpacks to more than %(mb)s MB; it is refused."),
                                   mb=MAX_UNPACKED // (1024 * 1024))
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetRefused:
        raise
    except Exception:  # openpyxl raises many kinds on a damaged or foreign file
        raise SheetRefused(N_("The file is neither an Excel workbook (.xlsx) nor CSV text.")) from None
    try:
        rows: list[tuple[Any, ...]] = []
        for row in book.worksheets[0].iter_rows(values_only=True):
            rows.append(row)
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        book.close()


def _csv_rows(data: bytes) -> list[list[str]]:
    """Read CSV text in UTF-8 (with or without BOM) or GB18030 (Excel's CSV on Chinese Windows)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SheetRefused(N_("The file is neither an Excel workbook (.xlsx) nor CSV text."))
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error:
        raise SheetRefused(N_("The file is neither an Excel workbook (.xlsx) nor CSV text.")) from None


def _records(kind: str, header: list[str], body: list[list[str]]) -> tuple[list[dict[str, str]], list[Problem]]:
    """Map each row to the kind's column keys; refuse a sheet missing a required column."""
    names = {zh: key for key, zh, _req in COLUMNS[kind]} | {key: key for key, _zh, _req in COLUMNS[kind]}
    index = {names[h.strip()]: i for i, h in enumerate(header) if h.strip() in names}
    missing = [zh for key, zh, required in COLUMNS[kind] if required and key not in index]
    if missing:
        raise SheetRefused(N_("The sheet lacks the column %(column)s: start from the downloadable template."),
                           column="、".join(missing))
    records = [{key: (row[i] if i < len(row) else "") for key, i in index.items()} for row in body]
    return records, []


def header_of(kind: str, key: str) -> str:
    """Return the Chinese header of a column key."""
    return next((zh for k, zh, _r in COLUMNS[kind] if k == key), key)


# -- planning ----------------------------------------------------------------------------------------

def plan(session: Session, kind: str, data: bytes) -> Plan:
    """Read and check a sheet and plan its import; write nothing."""
    if kind not in COLUMNS:
        raise SheetRefused(N_("Unknown kind of sheet."))
    header, body = read_rows(data)
    records, problems = _records(kind, header, body)
    result = Plan(kind, hashlib.sha256(data).hexdigest(), len(records), problems)
    {"people": _plan_people, "buildings": _plan_buildings, "households": _plan_households}[kind](
        session, records, result)
    result.problems.sort(key=lambda p: p.row)
    return result


class _Grids:
    """Find grids by code, and by community name and code."""

    def __init__(self, session: Session):
        rows = session.execute(select(Grid.id, Grid.code, Community.name).join(Grid.community)).all()
        self.by_pair = {(name, code): gid for gid, code, name in rows}
        self.by_code: dict[str, list[int]] = {}
        for gid, code, _name in rows:
            self.by_code.setdefault(code, []).append(gid)
        self.communities = {name for _gid, _code, name in rows} | set(session.scalars(select(Community.name)))

    def find(self, kind: str, line: int, record: Mapping[str, str], problems: list[Problem]) -> int | None:
        """Return the record's grid id, or name the problem."""
        code, community = record.get("grid", ""), record.get("community", "")
        if community and community not in self.communities:
            problems.append(Problem(line, header_of(kind, "community"), N_("Unknown community %(name)s."),
                                    {"name": community}))
            return None
        if community:
            gid = self.by_pair.get((community, code))
        else:
            found = self.by_code.get(code, [])
            if len(found) > 1:
                problems.append(Problem(line, header_of(kind, "community"), N_(
                    "Grid code %(code)s exists in several communities: fill in the community."), {"code": code}))
                return None
            gid = found[0] if found else None
        if gid is None:
            problems.append(Problem(line, header_of(kind, "grid"), N_("Unknown grid %(code)s."), {"code": code}))
        return gid


def _command(kind: str, line: int, command: type, data: Mapping[str, Any], problems: list[Problem],
             columns: Mapping[str, str] | None = None, **kw: Any) -> Any:
    """Build a command from a row, naming each bad cell by its column header."""
    try:
        return build(command, data, **kw)
    except InvalidCommand as exc:
        for error in exc.errors:
            key = error.field.split(".")[0]
            key = (columns or {}).get(key, key)
            problems.append(Problem(line, header_of(kind, key), error.template, error.params))
        return None


def _duplicate(kind: str, seen: dict[Any, int], key: Any, line: int, column: str, problems: list[Problem]) -> bool:
    """Name a key seen on an earlier row of the sheet; remember it otherwise."""
    if key in seen:
        problems.append(Problem(line, header_of(kind, column), N_("Same as row %(row)s: each appears once."),
                                {"row": seen[key]}))
        return True
    seen[key] = line
    return False


def _plan_buildings(session: Session, records: list[dict[str, str]], result: Plan) -> None:
    """Plan buildings: new ones inserted, changed addresses and positions updated."""
    grids, problems = _Grids(session), result.problems
    seen: dict[Any, int] = {}
    existing = {(b.grid_id, b.name): b for b in session.scalars(select(Building))}
    for line, record in enumerate(records, start=2):
        gid = grids.find("buildings", line, record, problems)
        data = {"grid_id": gid or 1, "name": record.get("name", ""), "address": record.get("address", ""),
                "latitude": record.get("latitude") or None, "longitude": record.get("longitude") or None}
        command = _command("buildings", line, SaveBuilding, data, problems)
        if gid is None or command is None or _duplicate("buildings", seen, (gid, command.name), line, "name",
                                                        problems):
            continue
        values = command.model_dump(exclude={"open_cases"})
        row = existing.get((gid, command.name))
        if row is None:
            result.inserts.append(values)
        elif any(getattr(row, k) != v for k, v in values.items()):
            result.updates.append({"id": row.id, **values})
        else:
            result.unchanged += 1


def _plan_households(session: Session, records: list[dict[str, str]], result: Plan) -> None:
    """Plan households: matched by building and address detail."""
    grids, problems = _Grids(session), result.problems
    seen: dict[Any, int] = {}
    buildings = {(gid, name): bid for bid, gid, name in session.execute(
        select(Building.id, Building.grid_id, Building.name))}
    existing = {(h.building_id, h.address_detail): h for h in session.execute(
        select(Household.id, Household.building_id, Household.address_detail, Household.head_name,
               Household.phone, Household.care_group, Household.note))}
    grid_of = {bid: gid for (gid, _name), bid in buildings.items()}
    for line, record in enumerate(records, start=2):
        gid = grids.find("households", line, record, problems)
        bid = buildings.get((gid, record.get("building", ""))) if gid else None
        if gid is not None and bid is None:
            problems.append(Problem(line, header_of("households", "building"), N_(
                "Unknown building %(name)s in grid %(code)s: import or add the building first."),
                {"name": record.get("building", ""), "code": record.get("grid", "")}))
        care = CARE_NAMES.get(record.get("care_group", ""))
        if care is None:
            problems.append(Problem(line, header_of("households", "care_group"), N_(
                "Unknown care group %(name)s: write 独居老人, 留守儿童, 困难群众, 流动人口 or leave it empty."),
                {"name": record.get("care_group", "")}))
        data = {"building_id": bid or 1, "address_detail": record.get("address_detail", ""),
                "head_name": record.get("head_name", ""), "phone": record.get("phone", ""),
                "care_group": care or CareGroup.NONE, "note": record.get("note", "")}
        command = _command("households", line, RegisterHousehold, data, problems)
        if bid is None or care is None or command is None:
            continue
        if _duplicate("households", seen, (bid, command.address_detail), line, "address_detail", problems):
            continue
        values = {"grid_id": grid_of[bid], **command.model_dump()}
        row = existing.get((bid, command.address_detail))
        if row is None:
            result.inserts.append(values)
        elif (row.head_name, row.phone, row.care_group, row.note) != (
                command.head_name, command.phone, command.care_group, command.note):
            result.updates.append({"id": row.id, "head_name": command.head_name, "phone": command.phone,
                                   "care_group": command.care_group, "note": command.note})
        else:
            result.unchanged += 1


def _plan_people(session: Session, records: list[dict[str, str]], result: Plan) -> None:
    """Plan people: matched by username; roles are added, never taken away."""
    grids, problems = _Grids(session), result.problems
    users = {u.username: u for u in session.scalars(select(User))}
    phones = {u.phone: u.username for u in users.values() if u.phone}
    departments = dict(session.execute(select(Department.code, Department.id)).all())
    communities = dict(session.execute(select(Community.name, Community.id)).all())
    seen: dict[Any, int] = {}
    seen_phones: dict[str, int] = {}
    for line, record in enumerate(records, start=2):
        public = record.get("public_phone", "").lower()
        if public not in YES | NO:
            problems.append(Problem(line, header_of("people", "public_phone"), N_("Write 是 or 否.")))
        data = {"username": record.get("username", ""), "display_name": record.get("display_name", ""),
                "phone": record.get("phone", ""), "duty_phone": record.get("duty_phone", ""),
                "public_phone": public in YES}
        command = _command("people", line, SavePerson, data, problems)
        grant = _plan_role(line, record, grids, departments, communities, problems)
        if command is None or grant is False:
            continue
        if _duplicate("people", seen, command.username, line, "username", problems):
            continue
        if command.phone:
            owner = phones.get(command.phone)
            if command.phone in seen_phones:
                problems.append(Problem(line, header_of("people", "phone"), N_(
                    "Duplicate phone: row %(row)s has it too."), {"row": seen_phones[command.phone]}))
                continue
            if owner is not None and owner != command.username:
                problems.append(Problem(line, header_of("people", "phone"), N_(
                    "Duplicate phone: %(name)s has it already."), {"name": owner}))
                continue
            seen_phones[command.phone] = line
        password = record.get("password", "")
        if password and command.username not in users:
            try:
                accounts.check_password(command.username, password)
            except DomainError as exc:
                problems.append(Problem(line, header_of("people", "password"), exc.template, exc.params))
                continue
        user = users.get(command.username)
        grants = [grant] if isinstance(grant, GrantRole) else []
        if user is None:
            result.inserts.append({"command": command, "password": password, "grants": grants})
            continue
        if any(getattr(user, k) != v for k, v in command.model_dump(exclude={"is_admin"}).items()):
            result.updates.append({"id": user.id, "command": command.model_copy(update={"is_admin": user.is_admin})})
        else:
            result.unchanged += 1
        result.grants += [(command.username, g) for g in grants if not _holds(user, g)]


def _holds(user: User, grant: GrantRole) -> bool:
    """Whether the user holds the role in the same scope already."""
    return any(m.role == grant.role and m.grid_id == grant.grid_id and m.department_id == grant.department_id
               and m.community_id == grant.community_id for m in user.memberships)


def _plan_role(line: int, record: Mapping[str, str], grids: _Grids, departments: Mapping[str, int],
               communities: Mapping[str, int], problems: list[Problem]) -> GrantRole | bool | None:
    """Return the row's role (None: none given; False: a problem was named)."""
    name = record.get("role", "")
    if not name:
        return None
    role = ROLE_NAMES.get(name)
    if role is None:
        problems.append(Problem(line, header_of("people", "role"), N_(
            "Unknown role %(name)s: write 网格员, 网格长, 职能部门, 督查员 or 街道办."), {"name": name}))
        return False
    data: dict[str, Any] = {"role": role}
    if role in (Role.GRID_MEMBER, Role.GRID_LEADER):
        if (gid := grids.find("people", line, record, problems)) is None:
            return False
        data["grid_id"] = gid
    elif role == Role.DEPARTMENT_HANDLER:
        code = record.get("department", "")
        if code not in departments:
            problems.append(Problem(line, header_of("people", "department"), N_("Unknown department %(code)s."),
                                    {"code": code}))
            return False
        data["department_id"] = departments[code]
    elif record.get("community"):
        if record["community"] not in communities:
            problems.append(Problem(line, header_of("people", "community"), N_("Unknown community %(name)s."),
                                    {"name": record["community"]}))
            return False
        data["community_id"] = communities[record["community"]]
    command = _command("people", line, GrantRole, data, problems, columns={"community_id": "community"})
    return command if command is not None else False


# -- writing -----------------------------------------------------------------------------------------

def apply(session: Session, actor: User | None, sheet: Plan) -> Result:
    """Write a checked plan in the caller's transaction (all or nothing); put it on the admin trail."""
    if not sheet.ok:
        raise SheetRefused(N_("The sheet has %(n)s problems; fix them and import again."), n=len(sheet.problems))
    passwords: list[tuple[str, str]] = []
    roles = len(sheet.grants)
    if sheet.kind == "people":
        passwords, roles = _apply_people(session, actor, sheet)
    elif sheet.kind == "buildings":
        _bulk(session, Building, sheet.inserts, sheet.updates)
    else:
        _bulk(session, Household, sheet.inserts, sheet.updates)
    if sheet.inserts or sheet.updates or roles:
        admin.record(session, actor, f"import.{sheet.kind}", f"sheet:{sheet.digest[:16]}",
                     {"created": (None, len(sheet.inserts)), "changed": (None, len(sheet.updates)),
                      "roles": (None, roles), "sha256": (None, sheet.digest)})
    session.flush()
    return Result(len(sheet.inserts), len(sheet.updates), sheet.unchanged, roles, passwords)


def _bulk(session: Session, model: type, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
    """Insert and update rows in batches (one statement per thousand rows, not one per row)."""
    for chunk in _chunks(inserts, 1000):
        session.execute(insert(model), chunk)
    for chunk in _chunks(updates, 1000):
        session.execute(update(model), chunk)


def _chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    """Yield the list in slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _apply_people(session: Session, actor: User | None, sheet: Plan) -> tuple[list[tuple[str, str]], int]:
    """Create and update people through the admin service (each on the trail), then add their roles."""
    passwords, roles = [], 0
    for item in sheet.inserts:
        user, temporary = admin.save_person(session, actor, item["command"], password=item["password"] or None)
        if temporary:
            passwords.append((user.username, temporary))
        for grant in item["grants"]:
            admin.grant_role(session, actor, user.id, grant)
            roles += 1
    for item in sheet.updates:
        admin.save_person(session, actor, item["command"], user_id=item["id"])
    for username, grant in sheet.grants:
        user_id = session.scalar(select(User.id).where(User.username == username))
        admin.grant_role(session, actor, user_id or 0, grant)
        roles += 1
    return passwords, roles


# -- previewed sheets waiting for their confirmation -----------------------------------------------

#: How long a previewed sheet waits to be imported.
KEEP_UPLOAD = dt.timedelta(days=1)


def keep_upload(session: Session, actor: User, kind: str, digest: str, data: bytes) -> None:
    """Keep a previewed sheet until it is imported (or a day has passed), for whichever machine serves the
    confirmation; forget the ones nobody imported."""
    session.execute(delete(ImportUpload).where(ImportUpload.created_at < utcnow() - KEEP_UPLOAD))
    if session.get(ImportUpload, digest) is None:
        session.add(ImportUpload(digest=digest, kind=kind, data=data, uploaded_by_id=actor.id))
    session.flush()


def kept_upload(session: Session, kind: str, digest: str) -> bytes | None:
    """Return a previewed sheet of ``kind`` by its digest, or None when it is gone."""
    row = session.get(ImportUpload, digest)
    return row.data if row is not None and row.kind == kind else None


def forget_upload(session: Session, digest: str) -> None:
    """Drop an imported sheet."""
    session.execute(delete(ImportUpload).where(ImportUpload.digest == digest))


# -- templates ------------------------------------------------------------------------------------

def template(kind: str, fmt: str) -> bytes:
    """Return an empty sheet of the kind with its Chinese headers (XLSX: and an example on a second sheet)."""
    headers = [zh for _key, zh, _required in COLUMNS[kind]]
    if fmt == "csv":
        text = io.StringIO()
        csv.writer(text).writerow(headers)
        return ("\ufeff" + text.getvalue()).encode("utf-8")
    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = {"people": "人员", "buildings": "楼院", "households": "住户"}[kind]
    sheet.append(headers)
    example = book.create_sheet("示例与说明")
    example.append(headers)
    example.append(list(EXAMPLES[kind]))
    example.append([])
    example.append(["必填列：" + "、".join(zh for _k, zh, required in COLUMNS[kind] if required)])
    example.append(["只导入第一个工作表；按自然键匹配，重复导入同一文件不会产生变化。"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


__all__ = ["COLUMNS", "KINDS", "MAX_BYTES", "Plan", "Problem", "Result", "SheetRefused", "apply", "plan",
           "read_rows", "sheet_format", "template"]
