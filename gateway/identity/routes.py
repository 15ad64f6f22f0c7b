"""Identity HTTP API: activation, login, accounts, devices, stations. Routes only parse and delegate."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from gateway.compliance.documents import lab_policy
from gateway.db.engine import transaction
from gateway.deps import BackendsDep, SessionDep
from gateway.identity import accounts, devices, profiles, stations
from gateway.identity import schemas as s
from gateway.identity.auth import CurrentPrincipal, EnrollingTechnician, KeyProof, LabSession, Manager
from gateway.identity.errors import Forbidden
from gateway.identity.login import LoginAttempt, login
from gateway.identity.sessions import end_session, find_session, principal_event
from gateway.policy import default_policy
from gateway.routing import TransactionalRoute

router = APIRouter(prefix="/api/v1", tags=["identity"], route_class=TransactionalRoute)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/auth/activate", response_model=s.TotpEnrolmentOut)
def activate(body: s.ActivationStart, session: SessionDep, backends: BackendsDep) -> s.TotpEnrolmentOut:
    """Set the first password with the one-time activation secret; returns the TOTP secret to enrol."""
    account = accounts.find_pending(session, body.lab, body.username, body.activation_secret, backends.clock())
    enrolment = accounts.start_activation(session, account, body.password, backends.keys, default_policy().identity)
    return s.TotpEnrolmentOut(totp_secret=enrolment.secret, totp_uri=enrolment.uri)


@router.post("/auth/activate/confirm", response_model=s.RecoveryCodesOut)
def confirm_activation(body: s.ActivationConfirm, session: SessionDep, backends: BackendsDep) -> s.RecoveryCodesOut:
    """Confirm the authenticator with a first code; the account becomes active. Recovery codes are shown once."""
    now = backends.clock()
    account = accounts.find_pending(session, body.lab, body.username, body.activation_secret, now)
    codes = accounts.finish_activation(session, account, body.totp, backends.keys, default_policy().identity, now)
    return s.RecoveryCodesOut(recovery_codes=codes)


@router.post("/auth/login", response_model=s.SessionOut)
def log_in(body: s.LoginIn, proof: KeyProof, request: Request, backends: BackendsDep) -> s.SessionOut:
    """Password and TOTP (or a recovery code), from the key in the DPoP proof; the token is bound to that key."""
    attempt = LoginAttempt(
        lab=body.lab,
        username=body.username,
        password=body.password,
        proof=proof,
        client_address=_client(request),
        totp=body.totp,
        recovery_code=body.recovery_code,
        posture=body.posture,
    )
    result = login(backends.sessions, backends.keys, default_policy(), attempt, backends.clock())
    return s.SessionOut(
        token=result.token,
        scope=result.scope,
        role=result.role,
        expires_at=result.expires_at,
        device_id=result.device_id,
    )


@router.post("/auth/logout", status_code=204)
def log_out(principal: CurrentPrincipal, request: Request, backends: BackendsDep) -> Response:
    _, _, token = request.headers["authorization"].partition(" ")
    with transaction(backends.sessions) as session:
        row = find_session(session, token.strip())
        end_session(row, "logout", backends.clock())
        principal_event(session, principal, "logout")
    return Response(status_code=204)


@router.get("/me", response_model=s.PrincipalOut)
def me(principal: CurrentPrincipal) -> s.PrincipalOut:
    return s.PrincipalOut(
        lab_id=principal.lab_id,
        role=principal.role,
        scope=principal.scope,
        account_id=principal.account_id,
        station_id=principal.station_id,
        device_id=principal.device_id,
    )


@router.post("/me/password", status_code=204)
def change_my_password(body: s.PasswordChangeIn, principal: CurrentPrincipal, session: LabSession) -> Response:
    if principal.account_id is None:
        raise Forbidden("stations have no password")
    account = accounts.get_account(session, principal.account_id)
    policy = lab_policy(session, principal.lab_id).identity
    accounts.change_password(session, account, body.current_password, body.new_password, policy)
    return Response(status_code=204)


@router.post("/accounts", response_model=s.IssuedAccountOut, status_code=201)
def add_account(body: s.AccountIn, manager: Manager, session: LabSession) -> s.IssuedAccountOut:
    actor = accounts.get_account(session, manager.account_id)
    issued = accounts.add_account(session, actor, body.username, body.role, lab_policy(session, actor.lab_id).identity)
    return s.IssuedAccountOut(
        account=s.AccountOut.model_validate(issued.account), activation_secret=issued.activation_secret
    )


@router.get("/accounts", response_model=list[s.AccountOut])
def list_accounts(manager: Manager, session: LabSession) -> list[s.AccountOut]:
    return [s.AccountOut.model_validate(a) for a in accounts.list_accounts(session)]


@router.post("/accounts/{account_id}/identity-verification", response_model=s.AccountOut)
def verify_identity(
    account_id: uuid.UUID, body: s.IdentityVerificationIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.AccountOut:
    actor = accounts.get_account(session, manager.account_id)
    account = accounts.get_account(session, account_id)
    verified_on, now = body.verified_on, backends.clock()
    accounts.verify_identity(session, actor, account, body.method, body.document_type, verified_on, now)
    return s.AccountOut.model_validate(account)


@router.post("/accounts/{account_id}/reset", response_model=s.IssuedAccountOut)
def reset_account(account_id: uuid.UUID, manager: Manager, session: LabSession) -> s.IssuedAccountOut:
    actor = accounts.get_account(session, manager.account_id)
    policy = lab_policy(session, actor.lab_id).identity
    issued = accounts.reset_account(session, actor, accounts.get_account(session, account_id), policy)
    return s.IssuedAccountOut(
        account=s.AccountOut.model_validate(issued.account), activation_secret=issued.activation_secret
    )


@router.post("/accounts/{account_id}/disable", response_model=s.AccountOut)
def disable_account(account_id: uuid.UUID, manager: Manager, session: LabSession) -> s.AccountOut:
    actor = accounts.get_account(session, manager.account_id)
    account = accounts.get_account(session, account_id)
    accounts.disable_account(session, actor, account)
    return s.AccountOut.model_validate(account)


@router.put("/accounts/{account_id}/profile", response_model=s.ProfileOut)
def update_profile(account_id: uuid.UUID, body: s.ProfileIn, manager: Manager, session: LabSession) -> s.ProfileOut:
    """Record the technician's profile (G3); each change is kept as a new version."""
    actor = accounts.get_account(session, manager.account_id)
    version = profiles.update_profile(session, actor, accounts.get_account(session, account_id), body.model_dump())
    return s.ProfileOut.model_validate(version)


@router.get("/accounts/{account_id}/profile/history", response_model=list[s.ProfileOut])
def profile_history(account_id: uuid.UUID, manager: Manager, session: LabSession) -> list[s.ProfileOut]:
    """Every version of the profile, newest first, with who changed it and when."""
    history = profiles.profile_history(session, accounts.get_account(session, account_id))
    return [s.ProfileOut.model_validate(v) for v in history]


@router.post("/devices", response_model=s.DeviceEnrolledOut, status_code=201)
def enrol_device(
    body: s.DeviceEnrolIn, technician: EnrollingTechnician, request: Request, session: LabSession, backends: BackendsDep
) -> s.DeviceEnrolledOut:
    """Enrol the key that signs this request (it must be the session's key) as a pending device."""
    proof = request.state.proof
    device, failures = devices.enrol_device(
        session,
        technician,
        proof,
        body.name,
        body.posture,
        lab_policy(session, technician.lab_id).posture,
        backends.clock(),
    )
    return s.DeviceEnrolledOut(device=s.DeviceOut.model_validate(device), posture_failures=failures)


@router.post("/devices/posture", response_model=s.PostureResultOut)
def report_posture(
    body: s.PostureIn, technician: EnrollingTechnician, session: LabSession, backends: BackendsDep
) -> s.PostureResultOut:
    """Record a posture report of the calling device in its ledger and say what the policy thinks of it."""
    device = devices.device_of_key(session, technician)
    policy = lab_policy(session, technician.lab_id).posture
    failures = devices.record_posture(session, device, body.posture, policy, backends.clock())
    return s.PostureResultOut(compliant=not failures, failures=failures)


@router.get("/devices", response_model=list[s.DeviceOut])
def list_devices(principal: CurrentPrincipal, session: LabSession) -> list[s.DeviceOut]:
    """Managers see the lab's devices; a technician sees their own."""
    if principal.role == "manager":
        found = devices.list_devices(session)
    elif principal.role == "technician":
        found = devices.list_devices(session, principal.account_id)
    else:
        raise Forbidden("only managers and technicians list devices")
    return [s.DeviceOut.model_validate(d) for d in found]


@router.post("/devices/{device_id}/approve", response_model=s.DeviceOut)
def approve_device(
    device_id: uuid.UUID, body: s.DeviceApproveIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.DeviceOut:
    device = devices.get_device(session, device_id)
    devices.approve_device(session, manager, device, body.ownership, body.manager_can_administer, backends.clock())
    return s.DeviceOut.model_validate(device)


@router.post("/devices/{device_id}/revoke", response_model=s.DeviceOut)
def revoke_device(
    device_id: uuid.UUID, body: s.RevokeIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.DeviceOut:
    device = devices.get_device(session, device_id)
    devices.revoke_device(session, manager, device, body.reason, backends.clock())
    return s.DeviceOut.model_validate(device)


def _station_out(station) -> s.StationOut:  # type: ignore[no-untyped-def]
    out = s.StationOut.model_validate(station)
    if station.public_key is not None:
        out.fingerprint = stations.key_fingerprint(station.public_key)
    return out


@router.post("/stations/invitations", response_model=s.StationInvitedOut, status_code=201)
def invite_station(
    body: s.StationInviteIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.StationInvitedOut:
    station, code = stations.invite_station(
        session, manager, body.model_dump(), lab_policy(session, manager.lab_id).identity, backends.clock()
    )
    return s.StationInvitedOut(station=_station_out(station), enrolment_code=code)


@router.post("/stations/enrol", response_model=s.StationOut, status_code=201)
def enrol_station(body: s.StationEnrolIn, proof: KeyProof, session: SessionDep, backends: BackendsDep) -> s.StationOut:
    """The station agent enrols with the manager's code, its signing key (the proof) and its age recipient."""
    station = stations.enrol_station(
        session, body.enrolment_code, proof, body.age_recipient, default_policy().identity, backends.clock()
    )
    return _station_out(station)


@router.post("/stations/session", response_model=s.SessionOut)
def station_session(proof: KeyProof, session: SessionDep, backends: BackendsDep) -> s.SessionOut:
    token, row = stations.station_session(session, proof, default_policy().identity, backends.clock())
    return s.SessionOut(token=token, scope=row.scope, role="station", expires_at=row.expires_at)


@router.get("/stations", response_model=list[s.StationOut])
def list_stations(manager: Manager, session: LabSession) -> list[s.StationOut]:
    return [_station_out(station) for station in stations.list_stations(session)]


@router.post("/stations/{station_id}/approve", response_model=s.StationOut)
def approve_station(
    station_id: uuid.UUID, body: s.StationApproveIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.StationOut:
    station = stations.get_station(session, station_id)
    stations.approve_station(session, manager, station, body.fingerprint, backends.clock())
    return _station_out(station)


@router.post("/stations/{station_id}/revoke", response_model=s.StationOut)
def revoke_station(
    station_id: uuid.UUID, body: s.RevokeIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.StationOut:
    station = stations.get_station(session, station_id)
    stations.revoke_station(session, manager, station, body.reason, backends.clock())
    return _station_out(station)
