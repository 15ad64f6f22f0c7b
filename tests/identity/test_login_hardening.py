"""Login edge cases an attacker would try: locked accounts, oracles, races, spent codes, other hosts."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.audit.models import AuditEvent
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.identity.login import LoginAttempt, login
from gateway.identity.models import Account
from gateway.identity.proofs import make_proof, verify_proof
from gateway.policy import default_policy
from gateway.settings import Settings
from tests.gateway_fixtures import STRONG_PASSWORD, Person, add_technician
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician


def events(gateway, action: str) -> list[AuditEvent]:
    with gateway.backends.sessions() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def lock(person: Person) -> None:
    for _ in range(10):
        person.login(password="wrong password entirely", totp="000000")


def test_a_locked_account_answers_the_same_to_the_right_and_the_wrong_password(lab):
    lock(lab)
    right = lab.login()
    wrong = lab.login(password="another wrong password", totp=lab.totp())
    assert right.status_code == wrong.status_code == 429
    assert right.json()["detail"] == wrong.json()["detail"]
    with lab.gateway.backends.sessions() as session:
        assert session.scalar(sa.select(Account.failed_logins).where(Account.username == "manager")) == 10


def test_a_missing_or_malformed_code_does_not_reveal_the_password(lab):
    body = {"lab": lab.lab, "username": lab.username, "password": STRONG_PASSWORD}
    assert lab.call("POST", "/api/v1/auth/login", body, token="").status_code == 422
    right = lab.login(totp="abc")
    wrong = lab.login(password="not it at all, sorry", totp="abc")
    assert right.json()["code"] == wrong.json()["code"] == "invalid-credentials"
    assert right.json()["detail"] == wrong.json()["detail"]


def test_concurrent_wrong_passwords_are_all_counted_and_lock_once(gateway, lab):
    threads, errors = [], []

    def attempt_login() -> None:
        key = Ed25519PrivateKey.generate()
        url = "http://testserver/api/v1/auth/login"
        proof = verify_proof(make_proof(key, "POST", url, now=gateway.clock()), "POST", url, now=gateway.clock(),
                             max_age_seconds=60)  # fmt: skip
        try:
            attempt = LoginAttempt(lab.lab, "manager", "wrong password here", proof, None, totp="000000")
            login(gateway.backends.sessions, gateway.backends.keys, default_policy(), attempt, gateway.clock())
        except Exception as error:  # every attempt must fail; which error is asserted below
            errors.append(error)

    for _ in range(16):
        threads.append(threading.Thread(target=attempt_login))
        threads[-1].start()
    for thread in threads:
        thread.join()
    assert len(errors) == 16
    assert {type(e).__name__ for e in errors} <= {"WrongPassword", "LoginThrottled"}
    with gateway.backends.sessions() as session:
        assert session.scalar(sa.select(Account.failed_logins).where(Account.username == "manager")) >= 10
    assert len(events(gateway, "account.lockout")) == 1


def test_a_code_accepted_by_a_refused_login_stays_spent(lab):
    technician = verified_technician(lab)
    enrolled_device(lab, technician)
    lab.gateway.clock.advance(seconds=30)
    code = technician.totp()
    bad_posture = compliant_windows(lab.gateway.clock(), bluetooth_enabled=True)
    assert technician.login(posture=bad_posture, totp=code).status_code == 403
    again = technician.login(posture=compliant_windows(lab.gateway.clock()), totp=code)
    assert again.json()["code"] == "totp-replayed"
    recovery = technician.recovery_codes[0]
    assert technician.login(posture=bad_posture, recovery_code=recovery).status_code == 403
    assert technician.login(posture=compliant_windows(lab.gateway.clock()), recovery_code=recovery).status_code == 401
    assert len(events(lab.gateway, "recovery-code.use")) == 1


def test_a_reset_account_must_choose_a_new_password(lab):
    technician = add_technician(lab)
    reset = lab.call("POST", f"/api/v1/accounts/{technician.account_id}/reset").json()
    body = {"lab": lab.lab, "username": technician.username, "activation_secret": reset["activation_secret"]}
    reused = technician.call("POST", "/api/v1/auth/activate", {**body, "password": STRONG_PASSWORD})
    assert reused.json()["code"] == "reused-password"


def test_forbidden_requests_and_unknown_usernames_are_audited(lab):
    technician = add_technician(lab)
    technician.login()
    assert technician.call("GET", "/api/v1/accounts").status_code == 403
    assert [e.outcome for e in events(lab.gateway, "request.forbidden")] == ["denied"]
    Person(lab.gateway, lab.lab, "nobody").login(password="some password guess", totp="123456")
    unknown = [e for e in events(lab.gateway, "login") if e.details["username"] == "nobody"]
    assert [(e.actor_type, e.outcome) for e in unknown] == [("unknown", "failure")]


def test_throttled_attempts_do_not_lock_the_account(lab):
    for n in range(30):
        Person(lab.gateway, lab.lab, f"guess{n}").login(password="guessing a password", totp="111111")
    for _ in range(12):
        assert lab.login().status_code == 429
    with lab.gateway.backends.sessions() as session:
        assert session.scalar(sa.select(Account.locked_until).where(Account.username == "manager")) is None


def test_logging_in_again_from_a_pending_device_keeps_a_working_enrol_session(lab):
    technician = verified_technician(lab)
    technician.login()
    enrolled = technician.call(
        "POST", "/api/v1/devices", {"name": "PC", "posture": compliant_windows(lab.gateway.clock())}
    )
    assert enrolled.status_code == 201
    assert technician.login().json()["scope"] == "enrol"
    assert technician.call("GET", "/api/v1/me").status_code == 200


def test_proofs_must_name_the_configured_public_url(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", public_url="https://gateway.kyoto-lab.example")
    backends = open_backends(settings)
    migrate(backends.engine)
    with TestClient(create_app(settings, backends)) as client:
        key = Ed25519PrivateKey.generate()
        body = {"lab": "x", "username": "y", "password": "z", "totp": "123456"}
        cases = [
            ("http://evil.example/api/v1/auth/login", "proof-target-mismatch"),
            ("https://gateway.kyoto-lab.example/api/v1/auth/login", "invalid-credentials"),
        ]
        for url, expected in cases:
            response = client.post("/api/v1/auth/login", json=body, headers={"DPoP": make_proof(key, "POST", url)})
            assert response.json()["code"] == expected


def test_production_refuses_to_start_without_a_public_url(tmp_path):
    with pytest.raises(ValueError, match="DENTGATE_PUBLIC_URL"):
        Settings(environment="production", data_dir=tmp_path)
