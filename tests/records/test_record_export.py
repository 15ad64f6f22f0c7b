"""Exporting the 歯科技工録 (G20): one case or a period, as PDF (Japanese or English) or CSV for Excel; audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from gateway.japan import JST
from tests.pdf_text import pdf_text
from tests.records.cases import CASE, PATIENT, audit_actions, complete_items, record_path, upload_case


def _today(gateway) -> str:
    return gateway.clock().astimezone(JST).date().isoformat()


def test_a_case_exports_as_a_japanese_pdf_with_the_record_and_the_technicians_full_name(scene):
    design_id = upload_case(scene)
    manager = scene["lab"]
    manager.call("PATCH", record_path(), complete_items(manager.gateway))
    manager.call("POST", record_path(action="/finalize"))

    response = manager.call("GET", f"/api/v1/records/export?case={CASE}&format=pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert f"dentgate-record-{CASE}.pdf" in response.headers["content-disposition"]
    text = pdf_text(response.content)
    for expected in ("歯科技工録", "指示書番号", CASE, "模型・指示書の受領日", "患者", PATIENT.replace(" ", ""),
                     "部位及び設計", "11全部被覆冠", "作製方法", "主な材料（製品名・ロット）", "KatanaHT", "ZR-2611",
                     "工程の記録", "最終検査日", "納品日", "遠隔工程", "歯科技工士", "技工tanaka", "自宅", "端末",
                     "開始", "終了", "設計ID", design_id[:8], "確定"):  # fmt: skip
        assert expected in text, expected
    [export] = audit_actions(manager.gateway, "record.export")
    assert export.details == {"case": CASE, "format": "pdf", "lang": "ja", "cases": 1, "patient_names": True}

    english = manager.call("GET", f"/api/v1/records/export?case={CASE}&lang=en")
    text = pdf_text(english.content)
    assert "Dentaltechnicianrecord" in text and "Finalinspection" in text and "技工tanaka" in text


def test_a_period_exports_the_cases_with_remote_work_in_it(scene):
    upload_case(scene)
    upload_case(scene, case="2026-1125-002")
    manager = scene["lab"]
    manager.call("PATCH", record_path(), {"patient_name": PATIENT})
    today = _today(manager.gateway)

    pdf = manager.call("GET", f"/api/v1/records/export?from={today}&to={today}")
    text = pdf_text(pdf.content)
    assert "歯科技工録" in text and CASE in text and "2026-1125-002" in text and text.count("技工tanaka") == 2
    long_ago = (manager.gateway.clock().astimezone(JST).date() - timedelta(days=30)).isoformat()
    empty = pdf_text(manager.call("GET", f"/api/v1/records/export?from={long_ago}&to={long_ago}").content)
    assert CASE not in empty and "なし" in empty
    backwards = manager.call("GET", f"/api/v1/records/export?from={today}&to={long_ago}")
    assert (backwards.status_code, backwards.json()["code"]) == (422, "export-scope-invalid")


def test_a_csv_export_has_a_row_per_remote_process_and_names_only_when_asked(scene):
    first = upload_case(scene)
    second = upload_case(scene, process="design-revision")
    manager = scene["lab"]
    manager.call("PATCH", record_path(), complete_items(manager.gateway))
    today = _today(manager.gateway)

    response = manager.call("GET", f"/api/v1/records/export?from={today}&to={today}&format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, *lines = rows
    assert header[:4] == ["指示書番号", "版", "状態", "患者参照番号"] and "患者" not in header
    assert [line[header.index("設計ID")] for line in lines] == [first, second]
    assert {line[header.index("歯科技工士")] for line in lines} == {"技工 tanaka"}
    assert lines[0][header.index("主な材料（製品名・ロット）")] == "ジルコニア（製品名: Katana HT, ロット: ZR-2611）"
    assert PATIENT not in response.content.decode("utf-8-sig")

    named = manager.call("GET", f"/api/v1/records/export?case={CASE}&format=csv&patient_names=true&lang=en")
    header, *lines = list(csv.reader(io.StringIO(named.content.decode("utf-8-sig"))))
    assert lines[0][header.index("Patient")] == PATIENT


def test_a_spreadsheet_formula_in_a_record_is_exported_as_text(scene):
    upload_case(scene)
    manager = scene["lab"]
    manager.call("PATCH", record_path(), {"method": '=HYPERLINK("http://x")'})
    content = manager.call("GET", f"/api/v1/records/export?case={CASE}&format=csv").content.decode("utf-8-sig")
    header, line = list(csv.reader(io.StringIO(content)))
    assert line[header.index("作製方法")] == '\'=HYPERLINK("http://x")'


def test_technicians_do_not_export(scene):
    upload_case(scene)
    assert scene["technician"].call("GET", f"/api/v1/records/export?case={CASE}").status_code == 403
