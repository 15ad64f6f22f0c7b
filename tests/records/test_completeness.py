"""`case_completeness` (G20), which the compliance report uses: drafts left too long, remote work after finalizing,
and remote processes without a registered location."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from gateway.db.scoping import bind_to_lab
from gateway.japan import JST
from gateway.policy import default_policy
from gateway.records.models import RemoteProcess
from gateway.records.service import NEEDS_ATTENTION, NOT_MET, case_completeness
from tests.records.cases import CASE, complete_items, record_path, upload_case


def findings(scene, days_later: int):
    gateway = scene["lab"].gateway
    today = gateway.clock().astimezone(JST).date() + timedelta(days=days_later)
    lab_id = uuid.UUID(scene["lab_id"])
    with gateway.backends.sessions() as session:
        bind_to_lab(session, lab_id)
        return case_completeness(session, lab_id, today, default_policy())


def test_a_draft_left_past_the_policys_days_needs_attention(scene):
    upload_case(scene)
    days = default_policy().records.completion_days
    assert findings(scene, days) == []
    [late] = findings(scene, days + 1)
    reference = scene["lab"].call("GET", record_path()).json()["patient_reference"]
    assert (late.case_reference, late.patient_reference, late.status) == (CASE, reference, NEEDS_ATTENTION)
    assert f"still a draft {days + 1} days after the last remote process" in late.reason
    assert "missing model received date" in late.reason


def test_a_finalized_record_is_in_order_until_more_remote_work_arrives(scene):
    upload_case(scene)
    manager = scene["lab"]
    manager.call("PATCH", record_path(), complete_items(manager.gateway))
    manager.call("POST", record_path(action="/finalize"))
    assert findings(scene, 365) == []
    manager.gateway.clock.advance(minutes=5)
    upload_case(scene, process="remake")
    [finding] = findings(scene, 0)
    assert finding.status == NEEDS_ATTENTION and "amend the record" in finding.reason


def test_a_remote_process_without_a_registered_location_is_not_met(scene):
    design_id = upload_case(scene)
    with scene["lab"].gateway.backends.engine.begin() as connection:
        connection.execute(sa.update(RemoteProcess.__table__).values(location_address=""))
    [finding] = findings(scene, 0)
    assert finding.status == NOT_MET
    assert finding.reason == f"the remote process of design {design_id} has no location address recorded"
