"""Report rows about people (G1, G3, G5, G6, G10, G16, G21), built on the upload gate's own rules so the report
and the gate never disagree about who may work remotely."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.models import AuditEvent
from gateway.compliance.documents import current_document
from gateway.compliance.gates import (
    ATTESTATION_REQUIREMENT,
    Failure,
    roster_failure,
    training_failures,
    training_status,
)
from gateway.compliance.models import RosterExport, TrainingSession
from gateway.compliance.report.facts import LabFacts
from gateway.compliance.report.model import (
    ATTENTION_DAYS,
    Count,
    Row,
    Subject,
    lab_subject,
    person_subject,
    row,
)
from gateway.compliance.training import training_due
from gateway.identity.models import IdentityVerification


def g1_licensed_workers(facts: LabFacts) -> Row:
    """G1: every remote worker has a licence, works for the lab and has a registered place of work in Japan."""
    subjects = [person_subject(w.person, f) for w in facts.workers for f in w.failures_for("G1")]
    places = [f"{w.person.label}: {w.person.profile.location_label} ({w.person.profile.prefecture})"
              for w in facts.workers if w.person.profile is not None]  # fmt: skip
    complete = sum(1 for w in facts.workers if not w.failures_for("G1"))
    evidence = {"remote_technicians": len(facts.workers), "profiles_complete": Count(complete, len(facts.workers)),
                "remote_locations": places}  # fmt: skip
    return row("G1", evidence, subjects)


def g3_roster(session: Session, facts: LabFacts) -> Row:
    """G3: each remote worker's current profile is the one the latest roster export for the prefecture carried.
    Checked even where the lab's policy lets an unfiled change through the upload gate."""
    unfiled = [(w.person, roster_failure(session, w.person.account)) for w in facts.workers]
    subjects = [person_subject(person, failure) for person, failure in unfiled if failure is not None]
    latest = session.scalar(sa.select(RosterExport).order_by(RosterExport.id.desc()).limit(1))
    filed = len(facts.workers) - len({s.id for s in subjects})
    evidence = {
        "last_roster_export": latest.exported_at if latest else None,
        "roster_entries": len(latest.entries) if latest else 0,
        "workers_filed": Count(filed, len(facts.workers)),
    }
    return row("G3", evidence, subjects)


def attestation_gaps(facts: LabFacts, requirement: str) -> tuple[list[Subject], Count, date | None]:
    """For the attestations serving `requirement`: the gate's failures (not met), those running out within
    ATTENTION_DAYS (attention), how many workers are in order, and the oldest attestation in force."""
    soon = facts.today + timedelta(days=ATTENTION_DAYS)
    subjects: list[Subject] = []
    oldest: date | None = None
    for worker in facts.workers:
        subjects += [person_subject(worker.person, f) for f in worker.failures_for(requirement)]
        for state in worker.attestations:
            if ATTESTATION_REQUIREMENT[state.kind] != requirement or state.attested_on is None:
                continue
            oldest = state.attested_on if oldest is None else min(oldest, state.attested_on)
            if state.current(facts.today) and state.valid_until is not None and state.valid_until <= soon:
                message = f"the {state.kind} attestation of {state.attested_on} runs out on {state.valid_until}"
                subjects.append(person_subject(worker.person, Failure("attestation-expiring", requirement, message),
                                               "attention"))  # fmt: skip
    in_order = sum(1 for w in facts.workers if not w.failures_for(requirement))
    return subjects, Count(in_order, len(facts.workers)), oldest


def g5_privacy_filter(facts: LabFacts) -> Row:
    """G5: privacy-filter and screen-lock attestations of every remote worker are current."""
    subjects, in_order, oldest = attestation_gaps(facts, "G5")
    return row("G5", {"attestations_current": in_order, "oldest_attestation": oldest}, subjects)


def g6_identity_and_mfa(session: Session, facts: LabFacts) -> Row:
    """G6: every active account has a confirmed second factor; every remote worker's identity check is on record."""
    active = facts.active()
    subjects = [
        person_subject(p, Failure("mfa-missing", "G6", "the account has no confirmed authenticator (TOTP)"))
        for p in active
        if not p.account.totp_confirmed
    ]
    verifications = session.scalars(sa.select(IdentityVerification).order_by(IdentityVerification.id))
    checks = {v.account_id: v for v in verifications}
    missing = Failure("identity-verification-missing", "G6", "marked verified but no identity verification is recorded")
    subjects += [person_subject(w.person, missing) for w in facts.workers if w.person.account.id not in checks]
    waiting = Failure("identity-not-verified", "G6", "awaits the manager's identity verification; may only enrol")
    subjects += [person_subject(p, waiting, "attention") for p in facts.onboarding]
    records = [f"{w.person.label}: {c.method} / {c.document_type} / {c.verified_on}"
               for w in facts.workers if (c := checks.get(w.person.account.id)) is not None]  # fmt: skip
    evidence = {
        "accounts_with_mfa": Count(sum(1 for p in active if p.account.totp_confirmed), len(active)),
        "identity_verified": Count(len(records), len(facts.workers)),
        "identity_verifications": records,
    }
    return row("G6", evidence, subjects)


def _count_actions(session: Session, action: str) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def g10_passwords(session: Session, facts: LabFacts) -> Row:
    """G10: the password rules in force forbid reuse; accounts told to change their password (reset) are followed."""
    identity = facts.policy.identity
    subjects = []
    if identity.password_history < 1:
        message = "the policy in force keeps no password history, so a password may be reused"
        subjects.append(lab_subject("policy", facts.policy.version, facts.policy.version, "password-reuse", message))
    pending = [p for p in facts.people.values() if p.account.must_change_password and p.account.status != "disabled"]
    change = Failure("password-change-pending", "G10", "told to set a new password; not done yet")
    subjects += [person_subject(p, change, "attention") for p in pending]
    evidence = {
        "password_min_length": identity.password_min_length,
        "password_min_zxcvbn_score": identity.password_min_zxcvbn_score,
        "password_history": identity.password_history,
        "lockout_threshold": identity.lockout_threshold,
        "forced_resets": _count_actions(session, "account.reset"),
        "password_changes": _count_actions(session, "account.password-change"),
    }
    return row("G10", evidence, subjects)


def g16_security_policy(session: Session, facts: LabFacts) -> Row:
    """G16: the lab has published its security policy and every remote worker acknowledged the version in force."""
    document = current_document(session, facts.lab.id, "security-policy")
    subjects = [person_subject(w.person, f) for w in facts.workers for f in w.failures_for("G16")]
    if document is None:
        subjects.append(lab_subject("lab", str(facts.lab.id), facts.lab.name, "policy-not-published",
                                    "the lab has published no security policy"))  # fmt: skip
    acknowledged = sum(1 for w in facts.workers if not w.failures_for("G16"))
    evidence = {
        "policy_version": document.version if document else None,
        "policy_published_at": document.published_at if document else None,
        "policy_acknowledged": Count(acknowledged, len(facts.workers)),
    }
    return row("G16", evidence, subjects)


def g21_training(session: Session, facts: LabFacts) -> Row:
    """G21: every active manager and remote worker has current training on each topic their role needs; the
    training module's "due soon" (within 30 days) is attention."""
    due = {d.account.id: d for d in training_due(session, facts.lab.id, facts.policy, facts.today)}
    people = [*facts.managers, *(w.person for w in facts.workers)]
    subjects: list[Subject] = []
    for person in people:
        state = due[person.account.id]
        if state.status in ("never", "overdue"):
            status = training_status(session, person.account, facts.policy, facts.today)
            subjects += [person_subject(person, f) for f in training_failures(status, facts.policy)]
        elif state.status == "due-soon":
            message = f"the {person.account.role}'s training runs out on {state.due_on}"
            subjects.append(person_subject(person, Failure("training-due", "G21", message), "attention"))
    last = session.scalar(sa.select(sa.func.max(TrainingSession.held_on)))
    current = sum(1 for p in people if due[p.account.id].status in ("current", "due-soon"))
    evidence = {
        "people_trained": Count(current, len(people)),
        "last_training": last,
        "training_valid_until": [f"{p.label}: {due[p.account.id].due_on or '—'}" for p in people],
    }
    return row("G21", evidence, subjects)
