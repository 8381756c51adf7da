"""The audit chain's rules, in the Python standard library only.

This module is the single definition of how an audit event is hashed and how a case's chain is
checked, which fields a chain covers, and what each file of a case bundle holds. The app uses it,
and a case bundle ships this very file as ``verify_bundle.py`` so an auditor can check an exported
bundle offline with nothing but Python.

An event is a mapping with: case_id, seq, at (ISO 8601 in UTC), actor_id, actor_name, action,
task_name, changes (the JSON text ``{"field": [old, new], ...}``), prev_hash, hash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
#: Values a field holds before any event sets it.
EMPTY = (None, "", 0)
#: Case columns whose changes the chain records, and which verification compares with the case as it
#: stands. The last three decide who may read a case (its grid and its recorder) and what it is called.
AUDITED = ("status", "resident_name", "resident_phone", "resident_email", "building_id", "address_detail",
           "latitude", "longitude", "media_url", "category",
           "description", "channel", "urgency", "green_channel", "reply", "dispatch_to", "handler_id",
           "department_id", "deadline_class", "due_at", "result", "outcome", "reopen_count",
           "callback_attempts", "extension_days", "archived_at", "signed_at", "number", "grid_id", "created_by_id",
           "intake")
#: Every field verification compares with the chain: the audited columns and the SHA-256 of the
#: process version the case runs on. A bundle's case.json lists exactly these.
FIELDS = (*AUDITED, "process_hash")
#: An event's keys, in order: events.json's objects and events.csv's header.
RECORD_KEYS = ("case_id", "seq", "at", "actor_id", "actor_name", "action", "task_name", "changes", "prev_hash",
               "hash")


def event_hash(case_id: int, seq: int, at: str, actor_id: int | None, actor_name: str, action: str,
               task_name: str | None, changes: str, prev_hash: str) -> str:
    """Return the SHA-256 over an event's content and the previous event's hash."""
    payload = json.dumps([case_id, seq, at, actor_id, actor_name, action, task_name, changes, prev_hash],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def utc_text(at: dt.datetime) -> str:
    """Return the text an event's time is hashed as: ISO 8601 in UTC."""
    return at.astimezone(dt.UTC).isoformat()


def jsonable(value: Any) -> Any:
    """Return a value as the audit trail records it (datetimes as ISO strings to the second)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    return json.loads(json.dumps(value, ensure_ascii=False))


@dataclass(frozen=True)
class Report:
    """The result of checking one case's chain; ``broken_seq`` names the first broken event."""

    case_id: int | None
    events: int
    ok: bool
    broken_seq: int | None = None
    problem: str = ""
    head: str = GENESIS
    #: What a reader should know that does not break the bundle (the bundle's verifier is another one).
    notes: tuple[str, ...] = ()


def check(case_id: int, events: Sequence[Mapping[str, Any]], recorded_count: int | None = None,
          fields: Mapping[str, Any] | None = None) -> Report:
    """Check a case's events in order: numbering, links, hashes, then the case's current fields.

    ``events`` are every event stored for the case; ``recorded_count`` is the number the case row
    says it has (catches a deleted last event, and one stored after the last); ``fields`` are the
    case's audited fields as they stand now, which must equal what the chain last recorded for each
    (catches a field changed behind the chain's back).
    """
    prev = GENESIS
    for expected_seq, ev in enumerate(events, start=1):
        if recorded_count is not None and expected_seq > recorded_count:
            return Report(case_id, len(events), False, expected_seq,
                          f"event {ev['seq']} is stored after the case's last event: the case records "
                          f"{recorded_count} events; it was added outside the audited services", prev)
        if ev["seq"] != expected_seq:
            problem = (f"event {expected_seq} is missing" if ev["seq"] > expected_seq
                       else f"event {ev['seq']} is stored again where event {expected_seq} belongs")
            return Report(case_id, len(events), False, expected_seq, problem, prev)
        if ev["prev_hash"] != prev:
            return Report(case_id, len(events), False, expected_seq,
                          f"event {expected_seq} does not link to event {expected_seq - 1}", prev)
        digest = event_hash(ev["case_id"], ev["seq"], ev["at"], ev["actor_id"], ev["actor_name"], ev["action"],
                            ev["task_name"], ev["changes"], ev["prev_hash"])
        if digest != ev["hash"] or ev["case_id"] != case_id:
            return Report(case_id, len(events), False, expected_seq,
                          f"event {expected_seq} was altered: its content does not match its hash", prev)
        prev = ev["hash"]
    if recorded_count is not None and recorded_count != len(events):
        return Report(case_id, len(events), False, len(events) + 1,
                      f"the case records {recorded_count} events but {len(events)} exist", prev)
    if fields is not None:
        mismatch = _field_mismatch(events, fields)
        if mismatch is not None:
            seq, problem = mismatch
            return Report(case_id, len(events), False, seq, problem, prev)
    return Report(case_id, len(events), True, head=prev)


def last_recorded(events: Iterable[Mapping[str, Any]], names: Iterable[str]) -> dict[str, tuple[int, Any]]:
    """Return field -> (seq, value) of the last event that recorded each of ``names``.

    Raises BadChanges for an event whose changes are not a JSON object of field -> [old, new].
    """
    wanted = set(names)
    found: dict[str, tuple[int, Any]] = {}
    for ev in events:
        try:
            changes = json.loads(ev["changes"])
            pairs = {name: pair for name, pair in changes.items() if name in wanted}
            for name, (_old, new) in pairs.items():
                found[name] = (ev["seq"], new)
        except (ValueError, TypeError, AttributeError):
            raise BadChanges(ev["seq"]) from None
    return found


class BadChanges(ValueError):
    """An event's changes are not a JSON object of field -> [old, new]."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"event {seq}'s changes are not a JSON object of field: [old, new]")
        self.seq = seq


def _field_mismatch(events: Sequence[Mapping[str, Any]], fields: Mapping[str, Any]) -> tuple[int, str] | None:
    """Return (seq, problem) for the first field whose current value the chain did not record."""
    try:
        recorded = last_recorded(events, fields)
    except BadChanges as exc:
        return exc.seq, str(exc)
    for name in sorted(fields, key=lambda n: recorded.get(n, (0,))[0]):
        value = jsonable(fields[name])
        if name not in recorded:
            if value in EMPTY:
                continue
            return 1, (f"case field {name} is {value!r} but no event recorded it: "
                       f"it was set outside the audited services")
        seq, expected = recorded[name]
        if value == expected or (value in EMPTY and expected in EMPTY):
            continue
        return seq, (f"case field {name} is {value!r} but event {seq} recorded {expected!r}: "
                     f"it was changed outside the audited services")
    return None


# -- the case bundle: what it holds, and its offline verification ---------------------------------

#: The files of a case bundle; nothing else may be in it (but the photos of FILES_DIR the chain records).
BUNDLE_FILES = ("case.json", "events.json", "events.csv", "process.bpmn", "verify_bundle.py", "README.txt")
#: The folder of a bundle holding the case's photos and files, each named ``<sha256>.<ext>``.
FILES_DIR = "files/"
#: The key of an event's changes listing the files it attached: ``[null, [{"sha256", "type", ...}, ...]]``.
FILES_KEY = "files"
#: The extension a bundle names an attached file with, by its content type.
FILE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
#: case.json's entries: what the verifier checks, and a section it says it does not.
CASE_KEYS = ("id", "audit_seq", "audit_head", "fields", "not_verified")
#: A spreadsheet runs a cell starting with these as a formula (=HYPERLINK(...) leaking data, =cmd|...).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Record columns a spreadsheet shows as plain text; ``changes`` and the hashes stay byte-exact.
_TEXT_COLUMNS = ("actor_name", "action", "task_name")

README = """\
GridLoop 案件证据包 / case bundle: {number}

【中文】
本压缩包是 GridLoop 中一个案件的审计记录，可在离线环境下只用 Python 标准库核验。
文件说明：
  case.json        案件：id、审计事件数（audit_seq）、链头（audit_head）、受审计字段的当前值（fields，
                   含案件编号 number、网格 grid_id、登记人 created_by_id、所用流程版本的 SHA-256
                   process_hash），以及 not_verified 一节：导出时查得的网格、楼院、登记人姓名、流程名称、
                   创建及导出时间、导出人。not_verified 一节仅供阅读：它不在审计链上，核验程序不核验。
  events.json      全部审计事件（按 seq 顺序），每条含上一条的哈希（prev_hash）与本条哈希（hash）。
  events.csv       同样的事件，可用 Excel 打开（UTF-8 带 BOM）；changes 列是原样的 JSON 文本。
                   以 = + - @ 开头的人名、动作、任务名前加了一个单引号，防止被表格当作公式执行。
                   核验程序逐行逐列把它与 events.json 比对。
  process.bpmn     案件运行所用的 BPMN 流程定义原文，其 SHA-256 等于审计链记录的 process_hash。
  files/           案件的照片原件（保留拍摄位置等 EXIF 信息，作为证据），文件名是其 SHA-256；
                   核验程序逐个重新计算，并与登记该照片的审计事件所记录的哈希比对（若有）。
  verify_bundle.py 核验程序（即 GridLoop 源码中的 tracker/chain.py，只用 Python 标准库）。
  README.txt       本说明；核验程序按案件编号重新生成本说明并逐字比对。
核验步骤：
  1. 需要 Python 3.10 或更高版本，无需安装任何包，无需联网。
  2. 取出 verify_bundle.py（或把整个压缩包解压到一个新文件夹），然后运行：
       python3 verify_bundle.py {zip_name}
     压缩包无需解压即可核验；若已解压，也可在该文件夹中运行：python3 verify_bundle.py .
  3. 输出 “OK: case …, N events, chain head <哈希>” 且退出码为 0，表示各事件首尾相接、未被改动，
     案件字段与审计链一致，process.bpmn 就是案件所用的流程版本，events.csv 与 events.json 一致，
     README.txt 未被改动。下一行 “verifier sha256 …” 是所运行的核验程序本身的 SHA-256；
     若包内的 verify_bundle.py 不是所运行的这一份，另有一行 “note: …” 注明它未被运行、未被核验。
     输出 “BROKEN: …” 且退出码为 1，表示包内有内容被改动，并指出第一个出问题的事件序号、字段或文件。
     缺少或多出文件、压缩包中有两个同名条目、JSON 中有重复的键，都会被拒绝。
  4. 把输出中的链头（chain head）与 GridLoop 中该案件审计历史页面显示的链头比对
     （或请系统管理员运行 flask export-case {number}，其输出同样给出链头）。
     两者一致，才说明本证据包就是系统中该案件当前的完整记录：
     只核验包本身，无法发现有人截掉最后几条事件后重新打包。
  注意：包内的 verify_bundle.py 可能与包一起被替换。需要独立核验时，请使用您信任的副本
  （GridLoop 源码中的 tracker/chain.py，或以前保存的副本）运行，或先把它的 SHA-256
  与审计历史页面或 flask export-case 输出的 verifier sha256 比对。

[English]
This archive is the audit record of one GridLoop case; it can be verified offline with the Python
standard library alone.
Files:
  case.json        the case: id, event count (audit_seq), chain head (audit_head), the current values
                   of the audited fields (fields, among them the case number, grid_id, the recorder's
                   created_by_id and process_hash, the SHA-256 of the process version it runs on), and
                   a not_verified section: grid, building, recorder's name, process name, created and
                   exported time and who exported it, looked up at export. The not_verified section is
                   for reading only: it is not on the audit chain and the verifier does not check it.
  events.json      every audit event in seq order, each holding the previous event's hash
                   (prev_hash) and its own (hash).
  events.csv       the same events for Excel (UTF-8 with BOM); the changes column is the exact JSON
                   text. Names, actions and task names starting with = + - @ get a leading
                   apostrophe so a spreadsheet does not run them as formulas. The verifier compares
                   every row and column with events.json.
  process.bpmn     the BPMN source the case runs on; its SHA-256 is the process_hash on the chain.
  files/           the case's photos as received (EXIF and location kept as evidence), each named
                   by its SHA-256; the verifier recomputes each and compares it with the hash the
                   event that attached it recorded (when the case has any).
  verify_bundle.py the verifier (tracker/chain.py from GridLoop's source, standard library only).
  README.txt       this file; the verifier writes it again from the case number and compares.
Procedure:
  1. You need Python 3.10 or later; nothing to install, no network.
  2. Take verify_bundle.py out of the archive (or unzip it all into a new folder) and run:
       python3 verify_bundle.py {zip_name}
     The zip is checked as it is, no need to unzip it; an unzipped folder works too, from inside
     it: python3 verify_bundle.py .
  3. "OK: case ..., N events, chain head <hash>" with exit status 0 means every event links to the
     one before and is unaltered, the case's fields agree with the chain, process.bpmn is the
     version the case ran on, events.csv agrees with events.json and README.txt is unaltered. The
     next line, "verifier sha256 ...", is the SHA-256 of the verifier that ran; if the bundle's
     verify_bundle.py is not that one, a "note: ..." line says it was not run and is not verified.
     "BROKEN: ..." with exit status 1 means something in the bundle was changed, and names the
     first event, field or file that no longer holds. A missing or extra file, two zip entries of
     one name and a JSON key given twice are refused.
  4. Compare the chain head printed with the chain head shown on the case's audit history page in
     GridLoop (or ask an administrator to run flask export-case {number}, which prints it too).
     Only when they are equal is this bundle the system's current, complete record of the case:
     the bundle alone cannot show that its last events were cut off before it was re-packed.
  Note: whoever could alter the bundle could also replace the verify_bundle.py inside it. For an
  independent check, run a copy you trust (tracker/chain.py from GridLoop's source, or a copy you
  kept earlier), or first compare its SHA-256 with the "verifier sha256" on the case's history page
  or printed by flask export-case.
"""
#: What case.json's not_verified section says of itself.
NOT_VERIFIED_NOTE = ("导出时查得，仅供阅读：不在审计链上，核验程序不核验。 / Looked up at export, for reading only: "
                     "not on the audit chain, not checked by the verifier.")


def bundle_name(number: str) -> str:
    """Return a bundle's file name, e.g. case-20261123-000001-bundle.zip."""
    return f"case-{number}-bundle.zip"


def readme(number: str) -> bytes:
    """Return README.txt of the bundle of case ``number``."""
    return README.format(number=number, zip_name=bundle_name(number)).encode("utf-8")


def bundle_json(value: Any) -> bytes:
    """Encode a bundle's JSON file: readable UTF-8 (Chinese kept as is), indented."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def csv_safe(text: str) -> str:
    """Neutralise text a spreadsheet would run as a formula (a leading apostrophe)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def events_csv(events: Iterable[Mapping[str, Any]]) -> bytes:
    """Return events.csv for Excel: BOM, a header of the record keys, one row per event."""
    import csv
    import io
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RECORD_KEYS)
    for event in events:
        writer.writerow([_cell(key, event[key]) for key in RECORD_KEYS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _cell(key: str, value: Any) -> Any:
    """Render a CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if key in _TEXT_COLUMNS and isinstance(value, str):
        return csv_safe(value)
    return value


def file_name_in_bundle(sha256: str, content_type: str) -> str:
    """Return where a bundle keeps an attached file, e.g. files/3f0c….jpg."""
    return f"{FILES_DIR}{sha256}.{FILE_EXTENSIONS.get(content_type, 'bin')}"


def recorded_files(events: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, str]]:
    """Return bundle name -> (seq, sha256) of every file the events attached (the first event naming it).

    Raises BadChanges for an event whose file list is not a list of {"sha256": hex, "type": ...}.
    """
    found: dict[str, tuple[int, str]] = {}
    for ev in events:
        try:
            changes = json.loads(ev["changes"])
            if not isinstance(changes, dict) or FILES_KEY not in changes:
                continue
            _old, files = changes[FILES_KEY]
            for entry in files:
                sha256, content_type = entry["sha256"], entry["type"]
                if not (isinstance(sha256, str) and len(sha256) == 64
                        and all(c in "0123456789abcdef" for c in sha256) and isinstance(content_type, str)):
                    raise TypeError(sha256)
                found.setdefault(file_name_in_bundle(sha256, content_type), (ev["seq"], sha256))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise BadChanges(ev["seq"]) from None
    return found


class Refused(Exception):
    """A bundle that cannot be verified as it stands; the message says what is wrong."""

    def __init__(self, problem: str, case_id: int | None = None, seq: int | None = None) -> None:
        super().__init__(problem)
        self.case_id, self.seq = case_id, seq


def verify_bundle(path: str) -> Report:
    """Verify a case bundle (a .zip file or its unpacked folder) with the standard library only.

    Every file is checked: the events' chain, case.json's fields against it (all of them), the
    process version's hash, events.csv against events.json column by column, README.txt against
    the text GridLoop writes, and the exact JSON bytes. Missing or extra files, duplicate zip
    entries and duplicate JSON keys are refused.
    """
    try:
        return _verify_files(_read_bundle(path))
    except Refused as refused:
        return Report(refused.case_id, 0, False, refused.seq, str(refused))


#: The largest file a bundle may unpack to (a case of thousands of events is a few megabytes).
MAX_BUNDLE_FILE = 64 * 1024 * 1024


def _read_bundle(path: str) -> dict[str, bytes]:
    """Return the bundle's files by name; refuse duplicates, comments, extra and missing files."""
    import pathlib
    import zipfile
    folder = pathlib.Path(path)
    if folder.is_dir():
        # Hidden files (a file manager's .DS_Store) and a byte-code cache are not part of what is read.
        names = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__pycache__")
        attached = folder / FILES_DIR.rstrip("/")
        if attached.is_dir():
            names.remove(attached.name)
            names += sorted(FILES_DIR + p.name for p in attached.iterdir() if not p.name.startswith("."))
        _refuse_unexpected(n for n in names if not _expected(n) or not (folder / n).is_file())
        files = {name: (folder / name).read_bytes() for name in names}
    else:
        try:
            with zipfile.ZipFile(folder) as archive:
                infos = archive.infolist()
                seen: set[str] = set()
                for info in infos:
                    if info.filename in seen:
                        raise Refused(f"the zip holds two entries named {info.filename}: refused, since an unzip "
                                      f"tool may show either one")
                    seen.add(info.filename)
                _refuse_unexpected(info.filename for info in infos if not _expected(info.filename))
                if archive.comment or any(info.comment for info in infos):
                    raise Refused("the zip carries a comment, which unzip tools show and nothing verifies; "
                                  "GridLoop writes none")
                for info in infos:  # read at most the declared size: a crafted entry cannot exhaust memory
                    if info.file_size > MAX_BUNDLE_FILE:
                        raise Refused(f"{info.filename} would unpack to {info.file_size:,} bytes, more than any "
                                      f"GridLoop bundle file ({MAX_BUNDLE_FILE:,}): refused")
                files = {info.filename: archive.read(info) for info in infos}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise Refused(f"{path} is not a zip file that can be read, nor a folder ({exc})") from None
    for name in BUNDLE_FILES:
        if name not in files:
            raise Refused(f"the bundle lacks {name}")
    return files


def _expected(name: str) -> bool:
    """Tell whether a bundle may hold a file of this name: one of its files, or an attached file."""
    if name in BUNDLE_FILES or name == FILES_DIR:  # re-zipped by hand: an entry for the folder itself
        return True
    stem, _, extension = name.removeprefix(FILES_DIR).partition(".")
    return (name.startswith(FILES_DIR) and len(stem) == 64 and all(c in "0123456789abcdef" for c in stem)
            and extension in FILE_EXTENSIONS.values())


def _refuse_unexpected(names: Iterable[str]) -> None:
    """Refuse the first name that is not one of the bundle's files."""
    for name in names:
        raise Refused(f"the bundle holds an unexpected file {name!r}: it is not part of a GridLoop case bundle "
                      f"and nothing verifies it")


def _verify_files(files: Mapping[str, bytes]) -> Report:
    """Check the files of a bundle, each against what the chain or GridLoop's own rules determine."""
    case = _case_record(_load_json(files, "case.json"))
    case_id, fields = case["id"], case["fields"]
    events = _event_records(_load_json(files, "events.json", case_id), case_id)
    report = check(case_id, events, case["audit_seq"], fields)
    if not report.ok:
        return report
    if case["audit_head"] != report.head:
        return Report(case_id, len(events), False, len(events) or None,
                      "case.json names a different chain head than its last event", report.head)
    process_hash = hashlib.sha256(files["process.bpmn"]).hexdigest()
    if process_hash != fields["process_hash"]:
        raise Refused(f"process.bpmn is not the version the case ran on: its SHA-256 is {process_hash}, "
                      f"the chain recorded {fields['process_hash']}", case_id)
    _check_csv(files["events.csv"], events, case_id)
    broken = _check_attached(files, events, case_id)
    if broken is not None:
        return dataclasses.replace(report, ok=False, broken_seq=broken[0], problem=broken[1])
    if not isinstance(fields["number"], str) or files["README.txt"] != readme(fields["number"]):
        raise Refused("README.txt is not the text GridLoop writes for this case: it was changed", case_id)
    for name, value in (("case.json", case), ("events.json", events)):
        if files[name] != bundle_json(value):
            raise Refused(f"{name} holds what the chain verifies, but not in the bytes GridLoop writes "
                          f"(it was edited: spacing, escapes or order differ)", case_id)
    if hashlib.sha256(files["verify_bundle.py"]).hexdigest() != verifier_sha256():
        # Another GridLoop version writes another verifier: not a break, but that copy was not what ran.
        return dataclasses.replace(report, notes=(
            f"verify_bundle.py in the bundle is not this verifier (its sha256 is "
            f"{hashlib.sha256(files['verify_bundle.py']).hexdigest()}): it was not run and is not verified",))
    return report


def _check_attached(files: Mapping[str, bytes], events: Sequence[Mapping[str, Any]],
                    case_id: int) -> tuple[int, str] | None:
    """Check the attached files against the chain: each one recorded is there, unchanged; no other is.

    A replaced photo is a break at the event that recorded its hash, as an altered event is.
    """
    try:
        recorded = recorded_files(events)
    except BadChanges as exc:
        return exc.seq, str(exc)
    for name, (seq, sha256) in recorded.items():
        if name not in files:
            raise Refused(f"the bundle lacks {name}, which event {seq} attached", case_id, seq)
        actual = hashlib.sha256(files[name]).hexdigest()
        if actual != sha256:
            return seq, (f"{name} was replaced: its SHA-256 is {actual}, but event {seq} recorded {sha256} "
                         f"when it was attached")
    for name in files:
        if name.startswith(FILES_DIR) and name != FILES_DIR and name not in recorded:
            raise Refused(f"the bundle holds {name}, which no event attached: nothing verifies it", case_id)
    return None


def _load_json(files: Mapping[str, bytes], name: str, case_id: int | None = None) -> Any:
    """Parse a JSON file of the bundle, refusing anything but UTF-8 and any key given twice."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise Refused(f"{name} gives the key {key!r} twice in one object: refused, since readers may "
                              f"show either value", case_id)
            result[key] = value
        return result
    try:
        return json.loads(files[name].decode("utf-8"), object_pairs_hook=pairs)
    except UnicodeDecodeError:
        raise Refused(f"{name} is not UTF-8 text", case_id) from None
    except json.JSONDecodeError as exc:
        raise Refused(f"{name} is not valid JSON: {exc}", case_id) from None


def _case_record(case: Any) -> dict[str, Any]:
    """Return case.json's object once it holds exactly the expected entries and fields."""
    if not isinstance(case, dict):
        raise Refused("case.json is not a JSON object")
    case_id = case.get("id") if _is_int(case.get("id")) else None
    for key in CASE_KEYS:
        if key not in case:
            raise Refused(f"case.json is missing its entry {key!r}", case_id)
    for key in case:
        if key not in CASE_KEYS:
            raise Refused(f"case.json has an unexpected entry {key!r}: nothing verifies it (a bundle keeps "
                          f"what it does not verify under not_verified)", case_id)
    if case_id is None or not _is_int(case["audit_seq"]) or not isinstance(case["audit_head"], (str, type(None))):
        raise Refused("case.json's id and audit_seq must be whole numbers and audit_head a hash", case_id)
    if not isinstance(case["fields"], dict) or not isinstance(case["not_verified"], dict):
        raise Refused("case.json's fields and not_verified must be JSON objects", case_id)
    for name in FIELDS:
        if name not in case["fields"]:
            raise Refused(f"case.json's fields are missing {name}: a bundle lists every audited field, "
                          f"so a missing one cannot be checked", case_id)
    for name in case["fields"]:
        if name not in FIELDS:
            raise Refused(f"case.json's fields hold {name!r}, which is not an audited field: nothing "
                          f"verifies it", case_id)
    return case


#: The JSON types each key of an event may hold.
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "case_id": (int,), "seq": (int,), "at": (str,), "actor_id": (int, type(None)), "actor_name": (str,),
    "action": (str,), "task_name": (str, type(None)), "changes": (str,), "prev_hash": (str,), "hash": (str,)}


def _event_records(events: Any, case_id: int) -> list[dict[str, Any]]:
    """Return events.json's list once each event holds exactly the record keys, of the right types."""
    if not isinstance(events, list):
        raise Refused("events.json is not a JSON list of events", case_id)
    for position, event in enumerate(events, start=1):
        where = f"events.json's event number {position} in the file"
        if not isinstance(event, dict):
            raise Refused(f"{where} is not a JSON object", case_id)
        if list(event) != list(RECORD_KEYS):
            extra = [k for k in event if k not in RECORD_KEYS]
            missing = [k for k in RECORD_KEYS if k not in event]
            raise Refused(f"{where} " + (f"has the unexpected key {extra[0]!r}" if extra else
                                         f"lacks the key {missing[0]!r}" if missing else "has its keys out of order"),
                          case_id)
        for key, types in _RECORD_TYPES.items():
            value = event[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise Refused(f"{where} holds {value!r} as its {key}, which is not a valid {key}", case_id)
    return events


def _is_int(value: Any) -> bool:
    """Tell whether a JSON value is a whole number (true and false are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_csv(data: bytes, events: Sequence[Mapping[str, Any]], case_id: int) -> None:
    """Refuse events.csv unless it is exactly the CSV of events.json; name the first cell that differs."""
    import csv
    import io
    expected = events_csv(events)
    if data == expected:
        return
    want = list(csv.reader(io.StringIO(expected.decode("utf-8")[1:])))
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8").removeprefix("\ufeff"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise Refused(f"events.csv cannot be read as UTF-8 CSV ({exc})", case_id) from None
    if rows[:1] != want[:1]:
        raise Refused(f"events.csv's header is {rows[0] if rows else []} instead of {want[0]}", case_id)
    for row, good, event in zip(rows[1:], want[1:], events):
        for index, key in enumerate(RECORD_KEYS):
            cell = row[index] if index < len(row) else None
            if cell != good[index]:
                raise Refused(f"events.csv differs from events.json at event {event['seq']}, column {key}: "
                              f"{cell!r} where it should read {good[index]!r}", case_id, event["seq"])
        if len(row) != len(good):
            raise Refused(f"events.csv has cells beyond its columns at event {event['seq']}", case_id, event["seq"])
    if len(rows) != len(want):
        raise Refused(f"events.csv holds {len(rows) - 1} events but events.json holds {len(want) - 1}", case_id)
    raise Refused("events.csv holds the events of events.json but not in the bytes GridLoop writes "
                  "(its encoding, quoting or line ends were changed)", case_id)


def verifier_sha256() -> str:
    """Return the SHA-256 of this verifier's own source."""
    import pathlib
    return hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    """``python verify_bundle.py BUNDLE.zip``: print the result; exit 0 if the bundle verifies."""
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python verify_bundle.py BUNDLE.zip (or the unpacked folder)", file=sys.stderr)
        return 2
    report = verify_bundle(args[0])
    if report.ok:
        print(f"OK: case {report.case_id}, {report.events} events, chain head {report.head}")
        print(f"verifier sha256 {verifier_sha256()}")
        for note in report.notes:
            print(f"note: {note}")
        return 0
    case = f"case {report.case_id}: " if report.case_id is not None else ""
    where = f"event {report.broken_seq}: " if report.broken_seq else ""
    print(f"BROKEN: {case}{where}{report.problem}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
