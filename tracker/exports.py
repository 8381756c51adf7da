"""Case list exports: one column list, written row by row as CSV or XLSX so memory stays flat."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask_babel import LazyString, lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

from . import labels

# One formula guard: the case bundle's verifier (stdlib-only tracker/chain.py) checks events.csv by it.
from .chain import csv_safe
from .models import Case
from .services.residents import local_phone

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

#: Rows read from the database per round trip (queries.export_batches) and written per CSV chunk.
BATCH = 500
CSV_MIME = "text/csv"  # Flask adds "; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_TIME_FORMAT = "yyyy-mm-dd hh:mm"

Value = str | dt.datetime | None


def _handler_or_department(case: Case) -> str:
    """Name who handles the case: a grid member, else the department it was referred to."""
    if case.handler is not None:
        return case.handler.display_name
    return case.department.name if case.department is not None else ""


#: (header, getter) for every exported column, in order; times are UTC here and local in the file.
COLUMNS: list[tuple[LazyString, Callable[[Case], Value]]] = [
    (_l("Number"), lambda c: c.number),
    (_l("Recorded"), lambda c: c.created_at),
    (_l("Grid"), lambda c: c.grid.code),
    (_l("Building"), lambda c: c.building.name),
    (_l("Address detail"), lambda c: c.address_detail),
    (_l("Category"), lambda c: labels.category_label(c.category)),
    (_l("Channel"), lambda c: labels.label(labels.CHANNELS, c.channel)),
    (_l("Urgency"), lambda c: labels.label(labels.URGENCIES, c.urgency)),
    (_l("Status"), lambda c: labels.label(labels.STATUSES, c.status)),
    (_l("Resident name"), lambda c: c.resident_name),
    (_l("Resident phone"), lambda c: local_phone(c.resident_phone)),
    (_l("Description"), lambda c: c.description),
    (_l("Handler or department"), _handler_or_department),
    (_l("Due"), lambda c: c.due_at),
    (_l("Callback outcome"), lambda c: labels.label(labels.OUTCOMES, c.outcome)),
    (_l("Archived at"), lambda c: c.archived_at),
]


def headers() -> list[str]:
    """Return the column headers in the current language."""
    return [str(header) for header, _getter in COLUMNS]


def rows(cases: Iterable[Sequence[Case]], zone: ZoneInfo) -> Iterator[list[Value]]:
    """Yield one list of values per case, times as naive local datetimes."""
    for batch in cases:
        for case in batch:
            values = (getter(case) for _header, getter in COLUMNS)
            yield [v.astimezone(zone).replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in values]


#: A phone number as people write one (a digit or one leading +, then digits, spaces, dashes, brackets): it
#: calls no function and refers to no cell, so it is left as written (an apostrophe would show in the file).
PHONE = re.compile(r"(?:\+|\d)[\d \-()]{4,39}")


def _csv_cell(value: Value) -> str:
    """Render a value for CSV, neutralising text a spreadsheet would run as a formula (never a phone number)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return value if PHONE.fullmatch(value) else csv_safe(value)


def csv_chunks(values: Iterable[list[Value]]) -> Iterator[str]:
    """Yield a CSV file in pieces: a BOM (so Excel reads UTF-8 Chinese), the headers, then rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers())
    yield "\ufeff" + _drain(buffer)
    for count, row in enumerate(values, 1):
        writer.writerow([_csv_cell(v) for v in row])
        if count % BATCH == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    """Return what a buffer holds and empty it."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Value):
    """Wrap a value as a cell when openpyxl would guess its type wrong: text stays text, never a formula."""
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = XLSX_TIME_FORMAT
        return cell
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters are not allowed in XML
        if value.startswith("=") or value in ERROR_CODES:
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"
            return cell
    return value


def write_xlsx(values: Iterable[list[Value]], title: str) -> IO[bytes]:
    """Write rows into an anonymous temporary XLSX file (gone once closed) and return it rewound."""
    workbook = Workbook(write_only=True)  # rows go to disk as appended, not kept in memory
    sheet = workbook.create_sheet(title=title)
    sheet.freeze_panes = "A2"
    file = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - returned open; the caller closes it
    try:
        sheet.append(headers())
        for row in values:
            sheet.append([_xlsx_cell(sheet, v) for v in row])
    except BaseException:
        workbook.save(file)  # openpyxl deletes its own temporary sheet file only when saving
        file.close()
        raise
    workbook.save(file)
    file.seek(0)
    return file
