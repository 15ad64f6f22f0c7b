"""Documents for Japanese authorities as PDF: headings, key-value blocks and tables set in Noto Sans JP,
embedded (subset) so the file reads the same on any machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pylopdf_fonts_jp
from fpdf import FPDF
from fpdf.fonts import FontFace

FONT = "NotoSansJP"


@dataclass(frozen=True)
class Table:
    """A table with a heading row; cells are plain text (None prints as an empty cell)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[object]]
    col_widths: Sequence[float] | None = None


@dataclass(frozen=True)
class Section:
    heading: str
    fields: Sequence[tuple[str, object]] = ()
    tables: Sequence[Table] = ()
    paragraphs: Sequence[str] = ()


@dataclass(frozen=True)
class PdfDocument:
    title: str
    subtitle: str = ""
    sections: Sequence[Section] = field(default_factory=tuple)
    landscape: bool = False


def _text(value: object) -> str:
    return "" if value is None else str(value)


def render_pdf(document: PdfDocument) -> bytes:
    """Lay out `document` on A4 pages and return the PDF bytes."""
    pdf = FPDF(orientation="L" if document.landscape else "P", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FONT, fname=str(pylopdf_fonts_jp.sans_path()))
    pdf.set_title(document.title)
    pdf.set_creator("DentGate")
    pdf.add_page()
    pdf.set_font(FONT, size=16)
    pdf.multi_cell(0, 9, document.title, new_x="LMARGIN", new_y="NEXT")
    if document.subtitle:
        pdf.set_font(FONT, size=9)
        pdf.multi_cell(0, 5, document.subtitle, new_x="LMARGIN", new_y="NEXT")
    for section in document.sections:
        _section(pdf, section)
    return bytes(pdf.output())


def _section(pdf: FPDF, section: Section) -> None:
    pdf.ln(4)
    pdf.set_font(FONT, size=12)
    pdf.multi_cell(0, 7, section.heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9)
    for label, value in section.fields:
        pdf.multi_cell(0, 5, f"{label}: {_text(value)}", new_x="LMARGIN", new_y="NEXT")
    for paragraph in section.paragraphs:
        pdf.multi_cell(0, 5, paragraph, new_x="LMARGIN", new_y="NEXT")
    for table in section.tables:
        pdf.ln(1)
        heading_style = FontFace(emphasis=None, fill_color=(225, 228, 235))
        with pdf.table(
            headings_style=heading_style, col_widths=table.col_widths, line_height=5, text_align="LEFT"
        ) as out:
            for row in (table.headers, *table.rows):
                cells = out.row()
                for value in row:
                    cells.cell(_text(value))
