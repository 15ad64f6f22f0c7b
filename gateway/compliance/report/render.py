"""The compliance report (G1–G21) as JSON for machines, HTML for the screen and print (autoescaped), and PDF for
the prefecture or an inspector (Noto Sans JP embedded); Japanese by default, English on request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import jinja2

from gateway.compliance.report.model import ComplianceReport, Count, Evidence, Row, Subject
from gateway.compliance.report.requirements import BY_ID, GUIDELINE, Lang
from gateway.compliance.report.text import (
    EVIDENCE_LABELS,
    HEADINGS,
    STATUS_LABELS,
    TERM_KEYS,
    TERMS,
    reason,
    text,
)
from gateway.japan import japan_time
from gateway.pdf import PdfDocument, Section, Table, render_pdf

MEDIA_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}
OVERVIEW_SUBJECTS = 5  # subjects named in the PDF overview table; the details section lists them all


def _json_value(value: Evidence | object) -> Any:
    if isinstance(value, Count):
        return {"count": value.n, "of": value.of}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


def _subject_json(subject: Subject, lang: Lang) -> dict[str, Any]:
    return {"kind": subject.kind, "id": subject.id, "label": subject.label, "status": subject.status,
            "rule": subject.rule, "message": subject.message, "reason": reason(subject.rule, subject.message, lang),
            **subject.names}  # fmt: skip


def report_json(report: ComplianceReport, lang: Lang) -> dict[str, Any]:
    """Machine-readable: statuses and rule ids are stable; titles and reasons are in `lang`."""
    return {
        "generated_at": report.generated_at.isoformat(),
        "report_date": report.report_date.isoformat(),
        "lab": {"id": str(report.lab_id), "name": report.lab_name},
        "policy_version": report.policy_version,
        "guideline": GUIDELINE[lang],
        "lang": lang,
        "summary": report.summary(),
        "rows": [
            {
                "id": row.id,
                "section": BY_ID[row.id].section,
                "title": BY_ID[row.id].title(lang),
                "status": row.status,
                "evidence": {key: _json_value(value) for key, value in row.evidence.items()},
                "subjects": [_subject_json(subject, lang) for subject in row.subjects],
            }
            for row in report.rows
        ],
    }


def _shown(key: str, value: object, lang: Lang) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return ("はい" if value else "いいえ") if lang == "ja" else ("yes" if value else "no")
    if isinstance(value, datetime):
        return japan_time(value)
    if isinstance(value, dict):
        return ", ".join(f"{text(EVIDENCE_LABELS, k, lang)}: {_shown(k, v, lang)}" for k, v in value.items())
    if key in TERM_KEYS and isinstance(value, str):
        return text(TERMS, value, lang)
    return str(value)


@dataclass(frozen=True)
class EvidenceView:
    label: str
    values: list[str]  # one line each; a scalar is one line, an empty list is "none"


@dataclass(frozen=True)
class SubjectView:
    label: str
    status: str
    status_label: str
    reason: str


@dataclass(frozen=True)
class RowView:
    id: str
    section: str
    title: str
    status: str
    status_label: str
    evidence: list[EvidenceView]
    subjects: list[SubjectView]
    attention_means: str


def _evidence(row: Row, lang: Lang) -> list[EvidenceView]:
    views = []
    for key, value in row.evidence.items():
        values = [_shown(key, item, lang) for item in value] if isinstance(value, list) else [_shown(key, value, lang)]
        views.append(EvidenceView(text(EVIDENCE_LABELS, key, lang), values or [text(HEADINGS, "none", lang)]))
    return views


def row_view(row: Row, lang: Lang) -> RowView:
    requirement = BY_ID[row.id]
    subjects = [SubjectView(s.label, s.status, text(STATUS_LABELS, s.status, lang), reason(s.rule, s.message, lang))
                for s in row.subjects]  # fmt: skip
    return RowView(row.id, requirement.section or "—", requirement.title(lang), row.status,
                   text(STATUS_LABELS, row.status, lang), _evidence(row, lang), subjects,
                   requirement.attention(lang))  # fmt: skip


def _header(report: ComplianceReport, lang: Lang) -> list[tuple[str, str]]:
    summary = ", ".join(f"{text(STATUS_LABELS, status, lang)} {n}" for status, n in report.summary().items())
    return [
        (text(HEADINGS, "lab", lang), report.lab_name),
        (text(HEADINGS, "report_date", lang), report.report_date.isoformat()),
        (text(HEADINGS, "generated_at", lang), japan_time(report.generated_at)),
        (text(HEADINGS, "policy_version", lang), report.policy_version),
        (text(HEADINGS, "guideline", lang), GUIDELINE[lang]),
        (text(HEADINGS, "summary", lang), summary),
    ]


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.compliance.report", "templates"),
    autoescape=True,  # every name, message and label is data: escaped, always
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def report_html(report: ComplianceReport, lang: Lang) -> str:
    """A self-contained, printable page (A4 landscape), status coloured."""
    return _templates.get_template("compliance_report.html.j2").render(
        lang=lang,
        h={key: text(HEADINGS, key, lang) for key in HEADINGS},
        header=_header(report, lang),
        rows=[row_view(row, lang) for row in report.rows],
    )


def _overview_cells(view: RowView, lang: Lang) -> list[str]:
    scalars = [f"{e.label}: {e.values[0]}" for e in view.evidence if len(e.values) == 1]
    named = [s.label for s in view.subjects[:OVERVIEW_SUBJECTS]]
    if len(view.subjects) > OVERVIEW_SUBJECTS:
        named.append(text(HEADINGS, "more", lang).format(n=len(view.subjects) - OVERVIEW_SUBJECTS))
    return [f"{view.id} {view.title}", view.status_label, "\n".join(scalars), "\n".join(named) or "—"]


def _details(view: RowView, lang: Lang) -> Section:
    lines = [f"{e.label}: {value}" for e in view.evidence if len(e.values) > 1 for value in e.values]
    tables = []
    if view.subjects:
        headers = [text(HEADINGS, key, lang) for key in ("subjects", "status", "reason")]
        tables.append(Table(headers, [[s.label, s.status_label, s.reason] for s in view.subjects], (60, 20, 180)))
    return Section(f"{view.id} {view.title}（{view.status_label}）", paragraphs=lines, tables=tables)


def report_pdf(report: ComplianceReport, lang: Lang) -> bytes:
    """An overview table (要件, 状況, 根拠, 対象), then the full evidence and subjects of every row that has them."""
    views = [row_view(row, lang) for row in report.rows]
    headers = [text(HEADINGS, key, lang) for key in ("requirement", "status", "evidence", "subjects")]
    overview = Table(headers, [_overview_cells(v, lang) for v in views], (75, 22, 100, 70))
    sections = [
        Section(text(HEADINGS, "summary", lang), fields=_header(report, lang)),
        Section(text(HEADINGS, "overview", lang), tables=[overview]),
    ]
    sections += [_details(v, lang) for v in views if v.subjects or any(len(e.values) > 1 for e in v.evidence)]
    title = text(HEADINGS, "title", lang)
    return render_pdf(PdfDocument(title, f"{report.lab_name} — {report.report_date.isoformat()}", sections, True))


def render(report: ComplianceReport, file_format: str, lang: Lang) -> bytes:
    if file_format == "pdf":
        return report_pdf(report, lang)
    if file_format == "html":
        return report_html(report, lang).encode("utf-8")
    return json.dumps(report_json(report, lang), ensure_ascii=False, indent=2).encode("utf-8")
