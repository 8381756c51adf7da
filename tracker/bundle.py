"""A case bundle: the case, its audit events and its BPMN version in one zip an auditor can verify offline.

The bundle carries exactly what ``tracker.chain.verify_bundle`` reads, and ships ``tracker/chain.py``
itself as ``verify_bundle.py``: checking a bundle needs Python's standard library and nothing else.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import chain, clock
from .exports import csv_safe
from .models import AuditEvent, Case
from .services.audit import as_record, audited_fields

#: The keys of ``as_record``, in order: the CSV header (also of a case without events).
RECORD_KEYS = ("case_id", "seq", "at", "actor_id", "actor_name", "action", "task_name", "changes", "prev_hash",
               "hash")
#: Record columns a spreadsheet shows as plain text; ``changes`` and the hashes stay byte-exact.
_TEXT_COLUMNS = ("actor_name", "action", "task_name")
#: A spreadsheet runs a cell starting with these as a formula (as in the case list export).

README = """\
GridLoop 案件证据包 / case bundle: {number}

【中文】
本压缩包是 GridLoop 中一个案件的审计记录，可在离线环境下只用 Python 标准库核验。
文件说明：
  case.json        案件信息：编号、受审计字段的当前值、审计事件数（audit_seq）、链头（audit_head）、
                   所用流程版本（process，含 content_hash）、网格、楼院、类别、创建及导出时间、导出人。
  events.json      全部审计事件（按 seq 顺序），每条含上一条的哈希（prev_hash）与本条哈希（hash）。
  events.csv       同样的事件，可用 Excel 打开（UTF-8 带 BOM）；changes 列是原样的 JSON 文本。
                   以 = + - @ 开头的人名、动作、任务名前加了一个单引号，防止被表格当作公式执行。
  process.bpmn     案件运行所用的 BPMN 流程定义原文，其 SHA-256 等于 case.json 中的 content_hash。
  verify_bundle.py 核验程序（即 GridLoop 源码中的 tracker/chain.py，只用 Python 标准库）。
  README.txt       本说明。
核验步骤：
  1. 需要 Python 3.10 或更高版本，无需安装任何包，无需联网。
  2. 取出 verify_bundle.py（或把整个压缩包解压到一个新文件夹），然后运行：
       python3 verify_bundle.py {zip_name}
     压缩包无需解压即可核验；若已解压，也可在该文件夹中运行：python3 verify_bundle.py .
  3. 输出 “OK: case …, N events, chain head <哈希>” 且退出码为 0，表示各事件首尾相接、未被改动，
     案件字段与审计链一致，process.bpmn 就是案件所用的流程版本。
     输出 “BROKEN: …” 且退出码为 1，表示包内有内容被改动，并指出第一个出问题的事件序号或字段。
  4. 把输出中的链头（chain head）与 GridLoop 中该案件审计历史页面显示的链头比对
     （或请系统管理员运行 flask export-case {number}，其输出同样给出链头）。
     两者一致，才说明本证据包就是系统中该案件当前的完整记录：
     只核验包本身，无法发现有人截掉最后几条事件后重新打包。
  注意：包内的 verify_bundle.py 可能与包一起被替换。需要独立核验时，请使用您信任的副本
  （GridLoop 源码中的 tracker/chain.py，或以前保存的副本）运行，或先把它的 SHA-256
  与 flask export-case 输出的 verifier sha256 比对。

[English]
This archive is the audit record of one GridLoop case; it can be verified offline with the Python
standard library alone.
Files:
  case.json        the case: number, current values of the audited fields, event count (audit_seq),
                   chain head (audit_head), process version it runs on (process, with content_hash),
                   grid, building, category, created and exported time, who exported it.
  events.json      every audit event in seq order, each holding the previous event's hash
                   (prev_hash) and its own (hash).
  events.csv       the same events for Excel (UTF-8 with BOM); the changes column is the exact JSON
                   text. Names, actions and task names starting with = + - @ get a leading
                   apostrophe so a spreadsheet does not run them as formulas.
  process.bpmn     the BPMN source the case runs on; its SHA-256 is case.json's content_hash.
  verify_bundle.py the verifier (tracker/chain.py from GridLoop's source, standard library only).
  README.txt       this file.
Procedure:
  1. You need Python 3.10 or later; nothing to install, no network.
  2. Take verify_bundle.py out of the archive (or unzip it all into a new folder) and run:
       python3 verify_bundle.py {zip_name}
     The zip is checked as it is, no need to unzip it; an unzipped folder works too, from inside
     it: python3 verify_bundle.py .
  3. "OK: case ..., N events, chain head <hash>" with exit status 0 means every event links to the
     one before and is unaltered, the case's fields agree with the chain, and process.bpmn is the
     version the case ran on. "BROKEN: ..." with exit status 1 means something in the bundle was
     changed, and names the first event or field that no longer holds.
  4. Compare the chain head printed with the chain head shown on the case's audit history page in
     GridLoop (or ask an administrator to run flask export-case {number}, which prints it too).
     Only when they are equal is this bundle the system's current, complete record of the case:
     the bundle alone cannot show that its last events were cut off before it was re-packed.
  Note: whoever could alter the bundle could also replace the verify_bundle.py inside it. For an
  independent check, run a copy you trust (tracker/chain.py from GridLoop's source, or a copy you
  kept earlier), or first compare its SHA-256 with the "verifier sha256" flask export-case prints.
"""


def build_bundle(session: Session, case: Case, exported_by: str = "") -> bytes:
    """Return the case's bundle as the bytes of a deflated zip."""
    # Re-read the row under a share lock (PostgreSQL; SQLite reads one snapshot anyway) so no event
    # can commit between reading the case and reading its events: the pair always agrees.
    case = session.get(Case, case.id, with_for_update={"read": True}, populate_existing=True)
    events = [as_record(e) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq))]
    definition = case.definition
    files = {
        "case.json": _json(_case_record(case, exported_by)),
        "events.json": _json(events),
        "events.csv": _csv(events),
        "process.bpmn": definition.source.encode("utf-8"),
        "verify_bundle.py": Path(chain.__file__).read_bytes(),
        "README.txt": README.format(number=case.number, zip_name=file_name(case)).encode("utf-8"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        stamp = clock.now().timetuple()[:6]
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.external_attr = 0o644 << 16  # readable once unpacked (the default is owner-only)
            archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def file_name(case: Case) -> str:
    """Return the bundle's file name, e.g. case-20261123-000001-bundle.zip."""
    return f"case-{case.number}-bundle.zip"


def _case_record(case: Case, exported_by: str) -> dict[str, Any]:
    """Return case.json: what the verifier checks, then readable extras."""
    definition = case.definition
    return {
        "id": case.id,
        "number": case.number,
        "audit_seq": case.audit_seq,
        "audit_head": case.audit_head,
        "fields": {name: chain.jsonable(value) for name, value in audited_fields(case).items()},
        "process": {"process_id": definition.process_id, "name": definition.name,
                    "file_name": definition.file_name, "content_hash": definition.content_hash},
        "grid_code": case.grid.code,
        "grid_name": case.grid.name,
        "building_name": case.building.name,
        "category": case.category,
        "created_at": chain.jsonable(case.created_at),
        "exported_at": chain.jsonable(clock.now()),
        "exported_by": exported_by,
    }


def _json(value: Any) -> bytes:
    """Encode a value as readable UTF-8 JSON (Chinese kept as is)."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _csv(events: list[dict[str, Any]]) -> bytes:
    """Return the events as CSV for Excel: BOM, header of the record keys, one row per event."""
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


def verifier_sha256() -> str:
    """Return the SHA-256 of the verifier bundles carry (tracker/chain.py), to check a bundle's copy by."""
    return hashlib.sha256(Path(chain.__file__).read_bytes()).hexdigest()


__all__ = ["build_bundle", "file_name", "verifier_sha256"]

