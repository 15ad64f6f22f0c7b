"""The prefecture roster of remote workers (G3): the list the lab files with the prefecture, exported as the
filing's attachment (Japanese PDF, English PDF, CSV), each export remembered so a later change shows as unfiled.

A profile whose `location_label` is 自宅 or "home" (any case) says the main remote location is the worker's home:
the roster then shows only 自宅 / Home, never the home address. Any other label is shown with its address."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.compliance.gates import unfiled_roster_change
from gateway.compliance.models import RosterExport
from gateway.errors import DentGateError
from gateway.identity.models import Account, Lab, TechnicianProfile
from gateway.identity.profiles import current_profile
from gateway.japan import japan_time
from gateway.pdf import PdfDocument, Section, Table, render_pdf
from gateway.spreadsheet import spreadsheet_csv

Language = Literal["ja", "en"]
FORMATS = ("pdf", "csv")
LANGUAGES = ("ja", "en")
HOME_LABELS = ("自宅", "home")
COLUMNS = {
    "ja": ("氏名", "リモートワーク", "電話番号", "主たる勤務場所", "歯科技工士免許番号"),
    "en": ("Name", "Remote work", "Phone", "Main remote work location", "Dental technician licence number"),
}
TEXTS = {
    "ja": {"title": "{lab} リモートワーク従事者名簿", "made": "作成日時", "lab": "歯科技工所", "name": "名称",
           "count": "人数", "workers": "従事者", "yes": "有", "no": "無", "home": "自宅",
           "note": "主たる勤務場所が自宅の場合は「自宅」とのみ記載しています。"},
    "en": {"title": "{lab}: roster of remote dental technicians", "made": "Made", "lab": "Dental laboratory",
           "name": "Name", "count": "Workers", "workers": "Remote workers", "yes": "Yes", "no": "No", "home": "Home",
           "note": "Where the main remote work location is the worker's home, only \"Home\" is shown."},
}  # fmt: skip


class RosterInvalid(DentGateError):
    code = "roster-invalid"
    status = 422
    title = "The roster export request is not valid"


@dataclass(frozen=True)
class RosterRow:
    """A remote worker as the roster carries them: the account and its current profile version."""

    account: Account
    profile: TechnicianProfile
    unfiled: bool  # the current profile is not the one the latest export carried (G3)

    @property
    def remote_work(self) -> bool:
        """The form's リモートワーク column: a technician with a registered remote location is a remote worker."""
        return bool(self.profile.location_label.strip())


@dataclass(frozen=True)
class RosterView:
    lab_name: str
    rows: list[RosterRow]
    last_export: RosterExport | None
    no_longer_listed: list[Account]  # on the latest export, not on the roster now (left, disabled)


def is_home(profile: TechnicianProfile) -> bool:
    return profile.location_label.strip().casefold() in HOME_LABELS


def location_text(profile: TechnicianProfile, lang: Language) -> str:
    """The main remote work location as filed: 自宅 / Home for the home, else the label with its address."""
    if is_home(profile):
        return TEXTS[lang]["home"]
    address = profile.location_address.strip()
    if not address.startswith(profile.prefecture):
        address = f"{profile.prefecture}{address}"
    return f"{profile.location_label.strip()}（{address}）" if lang == "ja" else f"{profile.location_label} ({address})"


def roster_rows(session: Session, lab_id: uuid.UUID) -> list[RosterRow]:
    """Every active technician of the lab with a profile, by username (G3)."""
    technicians = session.scalars(
        sa.select(Account)
        .where(Account.lab_id == lab_id, Account.role == "technician", Account.status == "active")
        .order_by(Account.username)
    ).all()
    rows = []
    for account in technicians:
        profile = current_profile(session, account)
        if profile is not None:
            rows.append(RosterRow(account, profile, unfiled_roster_change(session, account)))
    return rows


def latest_export(session: Session, lab_id: uuid.UUID) -> RosterExport | None:
    return session.scalar(
        sa.select(RosterExport).where(RosterExport.lab_id == lab_id).order_by(RosterExport.id.desc()).limit(1)
    )


def roster_view(session: Session, lab_id: uuid.UUID) -> RosterView:
    """The roster as it stands, each worker flagged when their change is not filed yet, and who left since (G3)."""
    rows = roster_rows(session, lab_id)
    last = latest_export(session, lab_id)
    listed = {str(row.account.id) for row in rows}
    gone_ids = [uuid.UUID(e["account_id"]) for e in (last.entries if last else []) if e["account_id"] not in listed]
    gone = [a for a in (session.get(Account, i) for i in gone_ids) if a is not None]
    lab_name = session.scalar(sa.select(Lab.name).where(Lab.id == lab_id)) or ""
    return RosterView(lab_name, rows, last, gone)


def _cells(row: RosterRow, lang: Language) -> tuple[str, str, str, str, str]:
    profile = row.profile
    remote = TEXTS[lang]["yes"] if row.remote_work else TEXTS[lang]["no"]
    return (profile.full_name, remote, profile.phone, location_text(profile, lang), profile.licence_number)


def render_csv(rows: list[RosterRow], lang: Language) -> bytes:
    """The roster as CSV for a spreadsheet (gateway.spreadsheet)."""
    return spreadsheet_csv(COLUMNS[lang], (_cells(row, lang) for row in rows))


def render_roster_pdf(lab_name: str, rows: list[RosterRow], lang: Language, now: datetime) -> bytes:
    """The roster as an A4 landscape PDF headed by the lab's name (G3)."""
    text = TEXTS[lang]
    lab = Section(text["lab"], fields=[(text["name"], lab_name), (text["made"], japan_time(now)),
                                       (text["count"], len(rows))])  # fmt: skip
    table = Table(COLUMNS[lang], [_cells(row, lang) for row in rows], col_widths=(18, 10, 15, 40, 17))
    workers = Section(text["workers"], tables=[table], paragraphs=[text["note"]])
    title = text["title"].format(lab=lab_name)
    return render_pdf(PdfDocument(title, f"{text['made']} {japan_time(now)}", [lab, workers], landscape=True))


def export_roster(session: Session, actor: Account, fmt: str, lang: str, now: datetime) -> tuple[bytes, RosterExport]:
    """Make the filing attachment (PDF or CSV, Japanese or English) and remember which profile version of each
    worker it carried, so later changes show as unfiled until the next export. Audited (G3)."""
    if fmt not in FORMATS:
        raise RosterInvalid(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if lang not in LANGUAGES:
        raise RosterInvalid(f"unknown language {lang!r}; use one of {', '.join(LANGUAGES)}")
    view = roster_view(session, actor.lab_id)
    language: Language = "ja" if lang == "ja" else "en"
    data = (
        render_csv(view.rows, language) if fmt == "csv" else render_roster_pdf(view.lab_name, view.rows, language, now)
    )
    sha256 = hashlib.sha256(data).hexdigest()
    entries = [{"account_id": str(row.account.id), "profile_id": row.profile.id} for row in view.rows]
    export = RosterExport(lab_id=actor.lab_id, exported_by=actor.id, exported_at=now, format=fmt, entries=entries,
                          sha256=sha256)  # fmt: skip
    session.add(export)
    session.flush()
    record(session, AuditEntry(
        lab_id=actor.lab_id, category="operation", action="roster.export", actor_type=actor.role,
        actor_id=str(actor.id), target=f"roster-export:{export.id}",
        details={"format": fmt, "lang": lang, "workers": len(entries), "sha256": sha256,
                 "changes_filed": [e["account_id"] for e, row in zip(entries, view.rows, strict=True) if row.unfiled],
                 "no_longer_listed": [str(a.id) for a in view.no_longer_listed]},
    ))  # fmt: skip
    return data, export
