"""Download the case list, with the list's filters and the user's scope, as CSV or Excel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import clock, exports, queries
from ..db import get_session, read_while_streaming
from . import due_window

bp = Blueprint("exports", __name__, url_prefix="/cases")
#: Bytes sent per piece of an XLSX download.
CHUNK = 64 * 1024


def _zone() -> ZoneInfo:
    """Return the configured local time zone."""
    return ZoneInfo(current_app.config["GRIDLOOP"]["app"].get("timezone", "Asia/Shanghai"))


def _download(body: Iterator, mimetype: str, extension: str) -> Response:
    """Wrap a streamed body as an attachment named by today's local date, e.g. cases-20261123.csv."""
    name = f"cases-{clock.now().astimezone(_zone()):%Y%m%d}.{extension}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})


def _rows():
    """Return the user's filtered cases as export rows, read lazily in batches."""
    batches = queries.export_batches(get_session(), current_user, queries.case_filters(request.args), due_window(),
                                     exports.BATCH, _zone())
    return exports.rows(batches, _zone())


def _file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    """Send a file in pieces and close it (an anonymous temporary file is then gone)."""
    with file:
        while chunk := file.read(CHUNK):
            yield chunk


@bp.route("/export.csv")
@login_required
def cases_csv():
    """Stream the filtered case list as CSV while it is read."""
    def body() -> Iterator[str]:
        # The session is opened while streaming: the request's own one is closed by then.
        yield from exports.csv_chunks(_rows())

    return _download(stream_with_context(read_while_streaming(body())), exports.CSV_MIME, "csv")


@bp.route("/export.xlsx")
@login_required
def cases_xlsx():
    """Write the filtered case list to a temporary XLSX file, then stream the file out."""
    file = exports.write_xlsx(_rows(), title=_("Cases"))
    return _download(_file_chunks(file), exports.XLSX_MIME, "xlsx")
