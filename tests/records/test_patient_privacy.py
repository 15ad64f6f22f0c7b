"""The patient's name in the 歯科技工録 (G20): stored only sealed, never in lists or on the audit chain, shown to the
manager and the case's technician, never to an auditor."""

from __future__ import annotations

import json

import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from gateway.db.models import metadata
from tests.pdf_text import pdf_text
from tests.records.cases import CASE, PATIENT, record_path, upload_case
from tests.transfer.test_design_api import add_account


def _stored_values(gateway) -> list[object]:
    """Every value of every row of every table, as the database hands it back."""
    values: list[object] = []
    with gateway.backends.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                values.extend(row)
    return values


def test_the_patient_name_is_stored_only_sealed_and_kept_out_of_lists_and_the_audit_chain(scene):
    upload_case(scene)
    manager = scene["lab"]
    assert manager.call("PATCH", record_path(), {"patient_name": PATIENT, "method": "CAD/CAM 切削"}).status_code == 200

    encoded = PATIENT.encode("utf-8")
    for value in _stored_values(manager.gateway):
        if isinstance(value, bytes | memoryview):
            assert encoded not in bytes(value)
        else:
            assert PATIENT not in json.dumps(value, ensure_ascii=False, default=str)
    listed = manager.call("GET", "/api/v1/records")
    assert PATIENT not in listed.text and listed.json()[0]["patient_reference"].startswith("P-")
    with manager.gateway.backends.sessions() as session:
        events = session.scalars(sa.select(AuditEvent)).all()
    assert all(PATIENT not in json.dumps([e.details, e.reason], ensure_ascii=False) for e in events)
    [update] = [e for e in events if e.action == "record.update"]
    assert update.details["fields"] == ["patient_name", "method"]

    assert manager.call("GET", record_path()).json()["current"]["patient_name"] == PATIENT
    assert scene["technician"].call("GET", record_path()).json()["current"]["patient_name"] == PATIENT


def test_an_auditor_reads_and_exports_without_the_patient_name_and_cannot_edit(scene):
    upload_case(scene)
    manager = scene["lab"]
    manager.call("PATCH", record_path(), {"patient_name": PATIENT})
    auditor = add_account(manager, "inspector", "auditor")

    case = auditor.call("GET", record_path())
    assert case.status_code == 200
    current = case.json()["current"]
    assert (current["patient_name"], current["patient_name_recorded"]) == (None, True)
    assert PATIENT not in case.text
    assert auditor.call("PATCH", record_path(), {"method": "鋳造"}).status_code == 403
    assert auditor.call("POST", record_path(action="/finalize")).status_code == 403

    pdf = auditor.call("GET", f"/api/v1/records/export?case={CASE}")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "歯科技工録" in text and "技工tanaka" in text and PATIENT.replace(" ", "") not in text
    refused = auditor.call("GET", f"/api/v1/records/export?case={CASE}&format=csv&patient_names=true")
    assert refused.status_code == 403
    with manager.gateway.backends.sessions() as session:
        views = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "record.view")).all()
    assert [e.details["patient_name_shown"] for e in views] == [False]
