"""Reading back what a generated PDF says, for tests of the Japanese documents (roster, 歯科技工録, report)."""

from __future__ import annotations

import io

import pypdf


def pdf_text(data: bytes) -> str:
    """The PDF's text with all whitespace removed. pypdf interleaves NULs with this font's two-byte codes; they
    are dropped."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "".join("".join(page.extract_text() for page in reader.pages).replace("\x00", "").split())
