"""Bring a test lab's people into line with the guideline, as a lab does before remote work starts: the manager
is trained and the lab adopts its security policy; a technician has a profile, current training and
attestations, has acknowledged the policy, and is on the filed roster (G1, G3, G5, G15, G16, G21)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from importlib import resources

import sqlalchemy as sa

from gateway.compliance import documents
from gateway.compliance.attestations import record_attestation
from gateway.compliance.roster import export_roster
from gateway.compliance.training import record_training
from gateway.db.engine import transaction
from gateway.identity.models import Account
from gateway.policy import default_policy

TECHNICIAN_TOPICS = default_policy().training.required_topics("technician")
MANAGER_TOPICS = default_policy().training.required_topics("manager")


def profile_for(username: str) -> dict:
    return {
        "full_name": f"技工 {username}",
        "licence_number": f"第{sum(map(ord, username)) * 37 % 100000:05d}号",
        "phone": "075-123-4567",
        "location_label": "自宅",
        "location_address": "京都府京都市左京区1-2-3",
        "prefecture": "京都府",
        "employed_by_lab": True,
    }


def _train(session, manager: Account, attendee: Account, topics: tuple[str, ...], held_on: date, today: date) -> None:
    record_training(session, manager, held_on, "遠隔歯科技工の研修", "京都府歯科技工士会", list(topics), 90,
                    [attendee.id], default_policy(), today=today)  # fmt: skip


def prepare_lab(sessions, lab_id: uuid.UUID, manager_id: uuid.UUID, today: date) -> None:
    """The first manager records their own training and the lab publishes the shipped policy as its own."""
    with transaction(sessions) as session:
        manager = session.get(Account, manager_id)
        _train(session, manager, manager, MANAGER_TOPICS, today - timedelta(days=1), today)
        text = resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")
        documents.publish(session, manager, "security-policy", text)


def make_compliant(
    manager, technician, trained_on: date | None = None, attested_on: dict[str, date] | None = None
) -> None:
    """Give `technician` (a tests.gateway_fixtures.Person) everything remote work needs; `manager` records and
    files it. `trained_on` and `attested_on` (per kind) backdate the training and attestations."""
    gateway = manager.gateway
    now = gateway.clock()
    yesterday = now.date() - timedelta(days=1)
    path = f"/api/v1/accounts/{technician.account_id}/profile"
    stored = manager.call("PUT", path, profile_for(technician.username))
    assert stored.status_code == 200, stored.text
    with transaction(gateway.backends.sessions) as session:
        account = session.get(Account, uuid.UUID(technician.account_id))
        boss = session.scalar(
            sa.select(Account).where(Account.lab_id == account.lab_id, Account.username == manager.username)
        )
        _train(session, boss, account, TECHNICIAN_TOPICS, trained_on or yesterday, now.date())
        for kind in default_policy().attestation.required:
            on = (attested_on or {}).get(kind, yesterday)
            record_attestation(session, boss, account, kind, on, None, None, now.date())
        policy = documents.current_document(session, account.lab_id, "security-policy")
        documents.acknowledge(session, account, "security-policy", policy.version)
        export_roster(session, boss, "csv", "ja", now)
