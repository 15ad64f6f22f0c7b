"""The prefecture roster (G3): remote workers with their filing details, exported as PDF or CSV for the filing;
a change shows as unfiled until the next export."""

from __future__ import annotations

import csv
import hashlib
import io

from gateway.identity.profiles import PROFILE_FIELDS
from tests.compliance.people import audit_events
from tests.gateway_fixtures import Person
from tests.identity.test_devices_and_stations import verified_technician
from tests.pdf_text import pdf_text

JAPANESE_HEADINGS = ["氏名", "リモートワーク", "電話番号", "主たる勤務場所", "歯科技工士免許番号"]


def profile(manager: Person, technician: Person) -> dict:
    history = manager.call("GET", f"/api/v1/accounts/{technician.account_id}/profile/history").json()
    return {field: history[0][field] for field in PROFILE_FIELDS}


def change_profile(manager: Person, technician: Person, **changes: object) -> None:
    path = f"/api/v1/accounts/{technician.account_id}/profile"
    assert manager.call("PUT", path, {**profile(manager, technician), **changes}).status_code == 200


def export(manager: Person, fmt: str = "pdf", lang: str = "ja") -> bytes:
    response = manager.call("POST", "/api/v1/roster/exports", {"format": fmt, "lang": lang})
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == response.headers["X-DentGate-SHA256"]
    return response.content


def test_a_profile_change_is_flagged_until_the_next_export_carries_it(lab):
    tanaka = verified_technician(lab)
    before = lab.call("GET", "/api/v1/roster").json()
    assert before["lab"] == "Kyoto Dental Lab"
    assert [(r["username"], r["unfiled"]) for r in before["rows"]] == [("tanaka", False)]
    change_profile(lab, tanaka, phone="090-9999-0000")
    changed = lab.call("GET", "/api/v1/roster").json()
    assert (changed["rows"][0]["unfiled"], changed["rows"][0]["phone"], changed["unfiled_changes"]) == (
        True, "090-9999-0000", 1,
    )  # fmt: skip
    data = export(lab, "csv")
    after = lab.call("GET", "/api/v1/roster").json()
    assert after["rows"][0]["unfiled"] is False and after["unfiled_changes"] == 0
    assert after["last_export"]["format"] == "csv"
    assert after["last_export"]["sha256"] == hashlib.sha256(data).hexdigest()
    event = audit_events(lab, "roster.export")[-1]
    assert event["details"]["changes_filed"] == [tanaka.account_id] and event["details"]["workers"] == 1


def test_the_pdf_is_headed_by_the_lab_and_lists_each_worker_in_japanese(lab):
    verified_technician(lab, "tanaka")
    suzuki = verified_technician(lab, "suzuki")
    change_profile(lab, suzuki, location_label="サテライトオフィス", location_address="大阪市北区梅田1-1",
                   prefecture="大阪府")  # fmt: skip
    text = pdf_text(export(lab))
    assert "KyotoDentalLabリモートワーク従事者名簿" in text
    for heading in JAPANESE_HEADINGS:
        assert heading in text
    assert "技工tanaka" in text and "技工suzuki" in text
    assert "自宅" in text and "左京区" not in text  # a home address is not filed, only 自宅
    assert "サテライトオフィス（大阪府大阪市北区梅田1-1）" in text
    english = pdf_text(export(lab, lang="en"))
    assert "Dentaltechnicianlicencenumber" in english and "Mainremoteworklocation" in english
    assert "Home" in english and "技工tanaka" in english


def test_the_csv_opens_in_a_spreadsheet_with_the_japanese_headings(lab):
    tanaka = verified_technician(lab)
    data = export(lab, "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    filed = profile(lab, tanaka)
    assert rows == [JAPANESE_HEADINGS, [filed["full_name"], "有", filed["phone"], "自宅", filed["licence_number"]]]
    english = list(csv.reader(io.StringIO(export(lab, "csv", "en").decode("utf-8-sig"))))
    assert english[0][0] == "Name" and english[1][1:2] == ["Yes"]


def test_a_worker_who_left_is_named_until_the_next_export(lab):
    verified_technician(lab, "tanaka")
    suzuki = verified_technician(lab, "suzuki")
    assert lab.call("POST", f"/api/v1/accounts/{suzuki.account_id}/disable").status_code == 200
    roster = lab.call("GET", "/api/v1/roster").json()
    assert [r["username"] for r in roster["rows"]] == ["tanaka"]
    assert [p["username"] for p in roster["no_longer_listed"]] == ["suzuki"]
    export(lab)
    assert lab.call("GET", "/api/v1/roster").json()["no_longer_listed"] == []


def test_a_bad_format_or_language_is_refused_and_a_technician_cannot_export(lab):
    tanaka = verified_technician(lab)
    bad = lab.call("POST", "/api/v1/roster/exports", {"format": "xlsx"})
    assert bad.status_code == 422 and bad.json()["code"] == "roster-invalid" and "pdf, csv" in bad.json()["detail"]
    assert lab.call("POST", "/api/v1/roster/exports", {"format": "pdf", "lang": "fr"}).status_code == 422
    assert tanaka.login().status_code == 200
    assert tanaka.call("POST", "/api/v1/roster/exports", {"format": "pdf"}).status_code == 403
    assert tanaka.call("GET", "/api/v1/roster").status_code == 403
