"""Activation, login with password + TOTP, replay, lockout, key-bound tokens, logout (G6, G10)."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from tests.gateway_fixtures import STRONG_PASSWORD, Person, add_technician


def audit_actions(gateway, **where) -> list[tuple[str, str]]:
    with gateway.backends.sessions() as session:
        query = sa.select(AuditEvent.action, AuditEvent.outcome).order_by(AuditEvent.lab_id, AuditEvent.seq)
        for column, value in where.items():
            query = query.where(getattr(AuditEvent, column) == value)
        return [tuple(row) for row in session.execute(query)]


def test_manager_activates_and_logs_in_with_password_and_totp(lab):
    me = lab.call("GET", "/api/v1/me")
    assert me.status_code == 200
    assert (me.json()["role"], me.json()["scope"]) == ("manager", "full")
    assert len(lab.recovery_codes) == 10
    actions = [a for a, _ in audit_actions(lab.gateway)]
    assert actions[:7] == [
        "lab.create", "account.create", "training.record", "security-policy.publish",  # the test lab's setup
        "account.activation-start", "account.activate", "login",
    ]  # fmt: skip


def test_the_same_totp_code_is_accepted_once(lab):
    code = lab.totp(steps_ahead=1)
    first = lab.login(totp=code)
    assert first.status_code == 200
    again = lab.login(totp=code)
    assert again.status_code == 401
    assert again.json()["code"] == "totp-replayed"


def test_an_earlier_step_is_refused_after_a_later_one_was_used(lab):
    assert lab.login(totp=lab.totp(steps_ahead=1)).status_code == 200
    assert lab.login(totp=lab.totp()).json()["code"] == "totp-replayed"


def test_a_code_from_a_far_off_clock_is_reported_as_out_of_sync(lab):
    response = lab.login(totp=lab.totp(steps_ahead=5))
    assert response.status_code == 401
    assert response.json()["code"] == "totp-out-of-sync"


def test_a_recovery_code_works_once(lab):
    code = lab.recovery_codes[0]
    assert lab.login(recovery_code=code).status_code == 200
    assert lab.login(recovery_code=code).status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_answer(lab):
    wrong = lab.login(password="not the password at all", totp=lab.totp())
    stranger = Person(lab.gateway, lab.lab, "nobody").login(password="whatever it is", totp="123456")
    assert wrong.status_code == stranger.status_code == 401
    assert wrong.json()["code"] == stranger.json()["code"] == "invalid-credentials"
    assert wrong.json()["detail"] == stranger.json()["detail"]


def test_ten_wrong_passwords_lock_the_account_and_the_lockout_is_audited(lab):
    for _ in range(10):
        assert lab.login(password="definitely wrong password", totp="000000").status_code == 401
    locked = lab.login()
    assert locked.status_code == 429
    assert locked.json()["code"] == "login-throttled"
    actions = audit_actions(lab.gateway)
    assert ("account.lockout", "success") in actions
    assert actions.count(("login", "failure")) >= 10
    lab.gateway.clock.advance(minutes=31)
    assert lab.login().status_code == 200


def test_failures_from_one_address_are_throttled_across_usernames(lab):
    for n in range(30):
        Person(lab.gateway, lab.lab, f"guess{n}").login(password="guessing a password", totp="111111")
    assert lab.login().json()["code"] == "login-throttled"


def test_a_token_without_its_key_proof_is_refused(lab):
    replayed = lab.call("GET", "/api/v1/me", proof=False)
    assert replayed.status_code == 401
    thief = Person(lab.gateway, lab.lab, "thief")
    stolen = thief.call("GET", "/api/v1/me", token=lab.token)
    assert stolen.status_code == 401
    assert stolen.json()["code"] == "proof-key-mismatch"
    assert ("request.refused", "denied") in audit_actions(lab.gateway)


def test_a_proof_is_accepted_once(lab):
    from gateway.identity.proofs import make_proof

    url = "http://testserver/api/v1/me"
    proof = make_proof(lab.key, "GET", url, access_token=lab.token, now=lab.gateway.clock())
    headers = {"Authorization": f"DPoP {lab.token}", "DPoP": proof}
    assert lab.gateway.client.get("/api/v1/me", headers=headers).status_code == 200
    again = lab.gateway.client.get("/api/v1/me", headers=headers)
    assert again.status_code == 401
    assert again.json()["code"] == "proof-replayed"


def test_logout_ends_the_session(lab):
    assert lab.call("POST", "/api/v1/auth/logout").status_code == 204
    after = lab.call("GET", "/api/v1/me")
    assert after.status_code == 401
    assert after.json()["code"] == "session-ended"


def test_an_idle_session_ends(lab):
    lab.gateway.clock.advance(minutes=31)
    assert lab.call("GET", "/api/v1/me").json()["code"] == "session-ended"


def test_activation_secret_works_once_and_expires(lab):
    created = lab.call("POST", "/api/v1/accounts", {"username": "sato", "role": "technician"}).json()
    late = Person(lab.gateway, lab.lab, "sato")
    lab.gateway.clock.advance(hours=73)
    body = {"lab": lab.lab, "username": "sato", "activation_secret": created["activation_secret"]}
    expired = late.call("POST", "/api/v1/auth/activate", {**body, "password": STRONG_PASSWORD})
    assert expired.status_code == 401
    assert expired.json()["code"] == "activation-invalid"


def test_weak_password_is_refused_at_activation(lab):
    created = lab.call("POST", "/api/v1/accounts", {"username": "ito", "role": "technician"}).json()
    body = {"lab": lab.lab, "username": "ito", "activation_secret": created["activation_secret"]}
    weak = Person(lab.gateway, lab.lab, "ito").call(
        "POST", "/api/v1/auth/activate", {**body, "password": "password1234"}
    )
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak-password"


def test_previous_password_cannot_be_reused(lab):
    change = {"current_password": STRONG_PASSWORD, "new_password": STRONG_PASSWORD}
    reused = lab.call("POST", "/api/v1/me/password", change)
    assert reused.status_code == 422
    assert reused.json()["code"] == "reused-password"
    fresh = {"current_password": STRONG_PASSWORD, "new_password": "titanium abutment scanbody 77"}
    assert lab.call("POST", "/api/v1/me/password", fresh).status_code == 204


def test_a_technician_cannot_create_accounts(lab):
    technician = add_technician(lab)
    assert technician.login().status_code == 200
    refused = technician.call("POST", "/api/v1/accounts", {"username": "x", "role": "manager"})
    assert refused.status_code == 403


def test_a_disabled_account_loses_its_session_at_once(lab):
    technician = add_technician(lab)
    assert technician.login().status_code == 200
    assert lab.call("POST", f"/api/v1/accounts/{technician.account_id}/disable").status_code == 200
    assert technician.call("GET", "/api/v1/me").json()["code"] == "session-ended"


def test_profile_changes_are_kept_as_history(lab):
    technician = add_technician(lab)
    profile = {
        "full_name": "田中 花子", "licence_number": "123456", "phone": "090-1234-5678", "location_label": "自宅",
        "location_address": "京都市左京区1-2-3", "prefecture": "京都府", "employed_by_lab": True,
    }  # fmt: skip
    path = f"/api/v1/accounts/{technician.account_id}/profile"
    assert lab.call("PUT", path, profile).status_code == 200
    assert lab.call("PUT", path, {**profile, "phone": "075-000-0000"}).status_code == 200
    history = lab.call("GET", f"{path}/history").json()
    assert [v["phone"] for v in history] == ["075-000-0000", "090-1234-5678"]
    refused = lab.call("PUT", path, {**profile, "prefecture": "Kyoto"})
    assert refused.status_code == 409


def test_reset_ends_sessions_and_forces_a_new_activation(lab):
    technician = add_technician(lab)
    assert technician.login().status_code == 200
    reset = lab.call("POST", f"/api/v1/accounts/{technician.account_id}/reset")
    assert reset.status_code == 200
    assert technician.call("GET", "/api/v1/me").status_code == 401
    assert technician.login().status_code == 401
    technician.activate(reset.json()["activation_secret"], password="porcelain veneer glaze firing 88")
    assert technician.login(password="porcelain veneer glaze firing 88").status_code == 200
