"""Incident notifications as an outbox (G18): the rows are written in the report's transaction, sent right after
it commits, and retried by housekeeping on any replica until sent or given up as `failed`.

A sender first claims a row with a conditional UPDATE that sets a lease (`next_attempt_at`), so two replicas never
send the same attempt; a sender that dies mid-way leaves the lease to run out and the row is tried again. Delivery
is therefore at least once: a crash between sending and recording `sent` sends the message again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.service import AuditEntry, record
from gateway.backends import Backends
from gateway.db.engine import transaction
from gateway.incidents.messages import WEBHOOK_EVENT, IncidentFacts, email_message, webhook_payload
from gateway.incidents.models import Incident, IncidentEvent, Notification
from gateway.incidents.plan import IncidentPlan
from gateway.settings import Settings
from gateway.storage.staging import StagingHandle

LEASE = timedelta(seconds=60)  # longer than a send can take (both timeouts below)
SEND_TIMEOUT_SECONDS = 10
BATCH = 100
SIGNATURE_HEADER = "X-DentGate-Signature-256"
UNCONFIGURED = "e-mail is not configured on this gateway (set DENTGATE_SMTP_HOST and DENTGATE_SMTP_FROM)"
log = structlog.get_logger("dentgate.incidents.outbox")


class SendFailed(Exception):
    """One attempt did not deliver; the message says why without a secret or the webhook's URL."""


def configured_channels(settings: Settings) -> tuple[str, ...]:
    return (("email",) if settings.smtp_host else ()) + (("webhook",) if settings.incident_webhook_url else ())


def queue_notifications(
    session: Session, incident: Incident, facts: IncidentFacts, plan: IncidentPlan, settings: Settings
) -> list[Notification]:
    """One row per plan contact to notify by e-mail, and one for the webhook, in the caller's transaction (G18).
    E-mail owed while SMTP is not configured is kept as `unconfigured`, visible on the incident."""
    subject, body = email_message(facts, plan)
    rows: list[Notification] = []
    addresses = dict.fromkeys(str(c.email) for c in plan.contacts if c.notify and c.email is not None)
    for address in addresses:
        ready = bool(settings.smtp_host)
        rows.append(Notification(lab_id=incident.lab_id, incident_id=incident.id, channel="email", recipient=address,
                                 subject=subject, body=body, status="pending" if ready else "unconfigured",
                                 attempts=0, last_error=None if ready else UNCONFIGURED))  # fmt: skip
    if settings.incident_webhook_url:
        payload = json.dumps(webhook_payload(facts, plan), ensure_ascii=False, sort_keys=True)
        rows.append(Notification(lab_id=incident.lab_id, incident_id=incident.id, channel="webhook",
                                 recipient="webhook", subject=WEBHOOK_EVENT, body=payload, status="pending",
                                 attempts=0))  # fmt: skip
    session.add_all(rows)
    session.flush()
    return rows


def send_email(notification: Notification, settings: Settings) -> None:
    message = EmailMessage()
    message["Subject"] = notification.subject
    message["From"] = settings.smtp_from
    message["To"] = notification.recipient
    message["X-DentGate-Incident"] = str(notification.incident_id)
    message.set_content(notification.body)
    try:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())  # verifies the server's certificate
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise SendFailed(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {type(error).__name__}: {error}") from None


def webhook_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact request body under the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(notification: Notification, settings: Settings) -> None:
    body = notification.body.encode()
    headers = {"Content-Type": "application/json", "X-DentGate-Event": notification.subject,
               "X-DentGate-Delivery": str(notification.id)}  # fmt: skip
    if settings.incident_webhook_secret is not None:
        headers[SIGNATURE_HEADER] = webhook_signature(settings.incident_webhook_secret.get_secret_value(), body)
    try:
        response = httpx.post(settings.incident_webhook_url or "", content=body, headers=headers,
                              timeout=SEND_TIMEOUT_SECONDS)  # fmt: skip
    except httpx.HTTPError as error:  # the message may hold the URL, which may hold a token: name the kind only
        raise SendFailed(f"webhook unreachable: {type(error).__name__}") from None
    if not response.is_success:
        raise SendFailed(f"webhook answered HTTP {response.status_code}")


SENDERS: dict[str, Callable[[Notification, Settings], None]] = {"email": send_email, "webhook": send_webhook}


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 … minutes after each failed attempt, at most an hour (housekeeping looks every few minutes)."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), timedelta(hours=1))


def _due(sessions: sessionmaker, settings: Settings, now: datetime, ids: tuple[int, ...] | None) -> list[int]:
    channels = configured_channels(settings)
    if not channels:
        return []
    query = sa.select(Notification.id).where(
        Notification.status == "pending",
        Notification.channel.in_(channels),
        sa.or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
    )
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    with sessions() as session:
        return list(session.scalars(query.order_by(Notification.id).limit(BATCH)))


def _claim(sessions: sessionmaker, notification_id: int, now: datetime) -> Notification | None:
    """Take the next attempt of a due notification, or None when another sender holds it."""
    with transaction(sessions) as session:
        claimed = session.execute(
            sa.update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.status == "pending",
                sa.or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
            )
            .values(attempts=Notification.attempts + 1, next_attempt_at=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            return None
        return session.get(Notification, notification_id)


def _outcome(session: Session, notification: Notification, kind: str, now: datetime, error: str | None) -> None:
    """The timeline event and the audit event of a delivery, or of giving up on one."""
    details = {"channel": notification.channel, "recipient": notification.recipient, "attempts": notification.attempts}
    session.add(IncidentEvent(lab_id=notification.lab_id, incident_id=notification.incident_id, kind=kind, at=now,
                              details=details if error is None else {**details, "error": error}))  # fmt: skip
    record(session, AuditEntry(
        lab_id=notification.lab_id, category="operation", action="incident.notify", actor_type="gateway",
        target=f"incident:{notification.incident_id}", outcome="success" if error is None else "failure",
        reason=error, details=details,
    ))  # fmt: skip


def _finish(
    sessions: sessionmaker, claimed: Notification, error: str | None, settings: Settings, now: datetime
) -> None:
    """Record the attempt: sent, retried later, or failed for good after the last allowed attempt."""
    with transaction(sessions) as session:
        row = session.get(Notification, claimed.id, with_for_update=True, populate_existing=True)
        if row is None or row.status != "pending" or row.attempts != claimed.attempts:
            return  # the lease ran out and another sender took over; its outcome stands
        row.last_error = error[:500] if error else None
        if error is None:
            row.status, row.sent_at, row.next_attempt_at = "sent", now, None
            _outcome(session, row, "notified", now, None)
        elif row.attempts >= settings.notification_max_attempts:
            row.status, row.next_attempt_at = "failed", None
            _outcome(session, row, "notify-failed", now, error)
            log.error("incident notification failed for good", incident=str(row.incident_id), channel=row.channel,
                      recipient=row.recipient, attempts=row.attempts, error=error)  # fmt: skip
        else:
            row.next_attempt_at = now + retry_delay(row.attempts)
            log.warning("incident notification not sent; retried later", incident=str(row.incident_id),
                        channel=row.channel, attempts=row.attempts, error=error)  # fmt: skip


def deliver(
    sessions: sessionmaker, settings: Settings, clock: Callable[[], datetime], ids: tuple[int, ...] | None = None
) -> int:
    """Send the due pending notifications of the channels configured here (only `ids` when given); returns how
    many were sent. Any replica may run it at once with the others."""
    sent = 0
    for notification_id in _due(sessions, settings, clock(), ids):
        claimed = _claim(sessions, notification_id, clock())
        if claimed is None:
            continue
        try:
            SENDERS[claimed.channel](claimed, settings)
        except SendFailed as failure:
            _finish(sessions, claimed, str(failure), settings, clock())
        else:
            _finish(sessions, claimed, None, settings, clock())
            sent += 1
    return sent


@dataclass(frozen=True)
class AfterCommit:
    """Work that must wait until the incident's transaction has committed: staged bytes of the uploads it aborted
    (deleting them earlier would lose them if the transaction rolled back) and the notifications it queued."""

    staged: tuple[dict, ...] = ()
    notifications: tuple[int, ...] = ()


def run_after_commit(backends: Backends, work: AfterCommit) -> None:
    """Delete the aborted uploads' staged bytes, then send the queued notifications. Runs after the response;
    a failure is logged (with the staging key, for the operator) and unsent notifications wait for housekeeping."""
    for handle in work.staged:
        try:
            backends.staging.abort(StagingHandle.from_dict(handle))
        except Exception:  # storage down: the upload is aborted all the same; its bytes are left for the operator
            log.exception("staged bytes of an upload aborted by an incident were not deleted", key=handle.get("key"))
    if work.notifications:
        try:
            deliver(backends.sessions, backends.settings, backends.clock, work.notifications)
        except Exception:  # a database error: the rows stay pending and housekeeping sends them
            log.exception("incident notifications not sent after commit; housekeeping retries them")


def retry_notifications(backends: Backends) -> int:
    """The housekeeping chore: send every pending notification that is due (G18)."""
    return deliver(backends.sessions, backends.settings, backends.clock)
