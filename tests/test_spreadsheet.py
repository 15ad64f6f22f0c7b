"""CSV exports (roster, 歯科技工録) open in a spreadsheet as plain text: Japanese intact, no formula ever runs."""

from __future__ import annotations

import csv
import io

from gateway.spreadsheet import spreadsheet_csv


def test_a_cell_that_would_run_as_a_formula_is_kept_as_text():
    data = spreadsheet_csv(["氏名", "電話番号"], [['=HYPERLINK("http://evil.example","山田")', "+81-75-000-0000"],
                                              ["@SUM(A1)", "075-000-0000"]])  # fmt: skip
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [
        ["氏名", "電話番号"],
        ['\'=HYPERLINK("http://evil.example","山田")', "'+81-75-000-0000"],
        ["'@SUM(A1)", "075-000-0000"],
    ]


def test_the_file_starts_with_a_byte_order_mark_and_uses_crlf():
    data = spreadsheet_csv(["歯科技工録"], [["C-1"], [None]])
    assert data.startswith("\ufeff".encode())
    assert data.decode("utf-8-sig") == '歯科技工録\r\nC-1\r\n""\r\n'  # an empty row stays a row
