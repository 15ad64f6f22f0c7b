"""No secret ever reaches the audit chain or a log line (G19 with G6): activation, passwords, TOTP, recovery
codes, bearer tokens and enrolment codes are used for real, then every audit row and every log line is scanned."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa
import structlog

from gateway.audit.models import AuditEvent
from gateway.identity.proofs import key_fingerprint
from gateway.logs import configure_logging
from tests.gateway_fixtures import STRONG_PASSWORD, Person

NEW_PASSWORD = "titanium abutment scan body 2027"
WRONG_PASSWORD = "porcelain veneer guess 1999"


@pytest.fixture
def log_output():
    """Everything the gateway logs (structlog and the standard library, debug and up), as JSON lines."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    yield stream
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()


def totp_codes(secret: str, around: datetime) -> set[str]:
    """Every code the secret gives near `around`: whichever step a login used, it is among them."""
    totp = pyotp.TOTP(secret)
    return {totp.at(around + timedelta(seconds=30 * step)) for step in range(-4, 8)}


def audit_rows(gateway) -> list[str]:
    """Every column of every audit event (all labs), as text; JSON details as stored."""
    columns = [attribute.key for attribute in sa.inspect(AuditEvent).column_attrs]
    with gateway.backends.sessions() as session:
        rows = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.lab_id, AuditEvent.seq)).all()
        return [
            json.dumps({column: getattr(row, column) for column in columns}, default=str, ensure_ascii=False)
            for row in rows
        ]


def found(secret: str, text: str) -> bool:
    """`secret` in `text`; a six-digit code only as a whole token (not inside a hash, uuid or timestamp)."""
    if secret.isdigit():
        return re.search(rf"(?<![0-9A-Za-z.]){secret}(?![0-9A-Za-z])", text) is not None
    return secret in text


def test_no_secret_reaches_an_audit_event_or_a_log_line(gateway, log_output):
    secrets: dict[str, str] = {}
    started = gateway.clock()

    manager_activation = gateway.init_lab("Kyoto Dental Lab", "manager")
    secrets["manager activation secret"] = manager_activation
    manager = Person(gateway, "Kyoto Dental Lab", "manager")
    manager.activate(manager_activation)
    secrets["password"] = STRONG_PASSWORD
    secrets["manager TOTP secret"] = manager.totp_secret
    secrets |= {f"manager recovery code {n}": code for n, code in enumerate(manager.recovery_codes)}

    assert manager.login(password=WRONG_PASSWORD, totp=manager.totp()).status_code == 401
    secrets["wrong password"] = WRONG_PASSWORD
    assert manager.login().status_code == 200  # password + TOTP
    secrets["manager token (TOTP login)"] = manager.token
    assert manager.login(recovery_code=manager.recovery_codes[0]).status_code == 200
    secrets["manager token (recovery login)"] = manager.token
    assert manager.call("GET", "/api/v1/me").status_code == 200
    change = {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    assert manager.call("POST", "/api/v1/me/password", change).status_code == 204
    secrets["new password"] = NEW_PASSWORD
    assert manager.login(password=NEW_PASSWORD).status_code == 200
    secrets["manager token (after the change)"] = manager.token

    created = manager.call("POST", "/api/v1/accounts", {"username": "tanaka", "role": "technician"}).json()
    technician = Person(gateway, manager.lab, "tanaka")
    technician.activate(created["activation_secret"])
    secrets["technician activation secret"] = created["activation_secret"]
    secrets["technician TOTP secret"] = technician.totp_secret
    secrets |= {f"technician recovery code {n}": code for n, code in enumerate(technician.recovery_codes)}
    assert technician.login(recovery_code=technician.recovery_codes[3]).status_code == 200
    secrets["technician token"] = technician.token
    assert technician.call("GET", "/api/v1/me").status_code == 200
    thief = Person(gateway, manager.lab, "thief")
    assert thief.call("GET", "/api/v1/me", token=technician.token).status_code == 401  # a stolen token, refused

    invite = {"name": "Mill 1", "maker": "Roland DGA", "model": "DWX-52D", "serial_number": "Z1", "location": "R2"}
    enrolment_code = manager.call("POST", "/api/v1/stations/invitations", invite).json()["enrolment_code"]
    secrets["station enrolment code"] = enrolment_code
    station = Person(gateway, manager.lab, "station")
    enrol = {"enrolment_code": enrolment_code, "age_recipient": "age1" + "q" * 58}
    enrolled = station.call("POST", "/api/v1/stations/enrol", enrol, token="")
    assert enrolled.status_code == 201, enrolled.text
    assert station.call("POST", "/api/v1/stations/enrol", enrol, token="").status_code >= 400  # used up
    fingerprint = key_fingerprint(station.key.public_key().public_bytes_raw())
    approve = f"/api/v1/stations/{enrolled.json()['id']}/approve"
    assert manager.call("POST", approve, {"fingerprint": fingerprint}).status_code == 200
    session = station.call("POST", "/api/v1/stations/session", token="")
    assert session.status_code == 200, session.text
    station.token = session.json()["token"]
    secrets["station token"] = station.token
    assert station.call("GET", "/api/v1/station/jobs/next?wait=0").status_code == 204

    codes = totp_codes(manager.totp_secret, started) | totp_codes(manager.totp_secret, gateway.clock())
    codes |= totp_codes(technician.totp_secret, started) | totp_codes(technician.totp_secret, gateway.clock())
    secrets |= {f"TOTP code {code}": code for code in codes}

    rows = audit_rows(gateway)
    assert len(rows) > 20
    assert any('"access"' in row for row in rows) and any("login" in row for row in rows)  # the scan saw both
    lines = log_output.getvalue().splitlines()
    assert any('"request"' in line for line in lines)
    station_id = enrolled.json()["id"]  # not a secret: the scan finds what is there
    assert any(found(station_id, row) for row in rows) and any(found(station_id, line) for line in lines)
    leaks = [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, texts in (("an audit event", rows), ("a log line", lines))
        if any(found(secret, text) for text in texts)
    ]
    assert leaks == []
