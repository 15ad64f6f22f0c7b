"""CSV for spreadsheet software (Excel in a Japanese lab): UTF-8 with a byte order mark so Japanese reads right,
CRLF lines, and every cell plain text: a leading =, +, -, @ or control character would make the spreadsheet run
it as a formula (CSV injection), so such a cell is prefixed with `'`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}  # the formats documents are exported in
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain_cell(value: object) -> str:
    """`value` as text a spreadsheet shows and never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def spreadsheet_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The header and rows as CSV bytes for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([plain_cell(h) for h in header])
    writer.writerows([plain_cell(value) for value in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")
