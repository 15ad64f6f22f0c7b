"""Authentication as dependencies: the key proof of each request, the session behind it, and roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab
from gateway.deps import BackendsDep
from gateway.errors import DentGateError
from gateway.identity.errors import Forbidden, NotAuthenticated
from gateway.identity.proofs import VerifiedProof, verify_proof
from gateway.identity.sessions import Principal, check_session, claim_proof, find_session, principal_event
from gateway.policy import default_policy
from gateway.routing import REQUEST_TRANSACTION


def request_url(request: Request, public_url: str | None) -> str:
    """The URL a key proof must name: the configured public origin plus the path, never the caller's Host."""
    if public_url:
        return public_url.rstrip("/") + request.url.path
    return str(request.url.replace(query="", fragment=""))


def key_proof(request: Request, backends: BackendsDep) -> VerifiedProof:
    """The request's DPoP proof, not tied to a token (login, enrolment): RFC 9449 section 4."""
    proof = request.headers.get("dpop")
    if not proof:
        raise NotAuthenticated("this request needs a DPoP key proof header")
    return verify_proof(
        proof,
        request.method,
        request_url(request, backends.settings.public_url),
        now=backends.clock(),
        max_age_seconds=default_policy().identity.proof_max_age_seconds,
    )


KeyProof = Annotated[VerifiedProof, Depends(key_proof)]


def authenticate(request: Request, backends: BackendsDep) -> Principal:
    """`Authorization: DPoP <token>` plus a fresh proof from the session's own key; failures are audited."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    proof = request.headers.get("dpop")
    if scheme.lower() != "dpop" or not token:
        raise NotAuthenticated("send `Authorization: DPoP <token>` and a DPoP proof")
    policy = default_policy().identity
    now = backends.clock()
    refused: DentGateError | None = None
    with transaction(backends.sessions) as session:
        row = find_session(session, token.strip())
        try:
            if not proof:
                raise NotAuthenticated("the token is bound to a key: a DPoP proof is required")
            verified = verify_proof(
                proof,
                request.method,
                request_url(request, backends.settings.public_url),
                now=now,
                max_age_seconds=policy.proof_max_age_seconds,
                access_token=token.strip(),
                expected_thumbprint=row.key_thumbprint,
            )
            claim_proof(session, verified, policy)
            principal = check_session(session, row, policy, now)
        except DentGateError as error:
            refused = error
            record(
                session,
                AuditEntry(
                    lab_id=row.lab_id,
                    category="auth",
                    action="request.refused",
                    actor_type="session",
                    actor_id=str(row.account_id or row.station_id),
                    outcome="denied",
                    reason=f"{error.code}: {error.detail}",
                    target=f"session:{row.id}",
                    device_id=str(row.device_id) if row.device_id else None,
                    details={"method": request.method, "path": request.url.path},
                ),
            )
    if refused is not None:
        raise refused
    request.state.principal = principal
    request.state.proof = verified
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def lab_session(principal: CurrentPrincipal, backends: BackendsDep) -> Iterator[Session]:
    """The request's one transaction, scoped to the caller's lab; a sync endpoint commits it as soon as it returns
    (`gateway.routing.TransactionalRoute`), and it commits here otherwise.

    A refusal raised with audit entries (`DentGateError.audited`) rolls the transaction back and then
    records those entries in a transaction of their own, so a denial is on record and nothing else is.
    """
    try:
        with backends.sessions() as session, session.begin():
            bind_to_lab(session, principal.lab_id)
            session.info[REQUEST_TRANSACTION] = True  # a sync endpoint commits it in its own thread
            yield session
    except DentGateError as error:
        if error.audit_entries:
            with transaction(backends.sessions) as audit_session:
                bind_to_lab(audit_session, principal.lab_id)
                for entry in error.audit_entries:
                    record(audit_session, entry)
        raise


LabSession = Annotated[Session, Depends(lab_session, scope="function")]


def requires(*roles: str, scopes: tuple[str, ...] = ("full",)) -> Callable[..., Principal]:
    """A dependency admitting callers with one of `roles` whose session has one of `scopes`; refusals are audited."""

    def check(principal: CurrentPrincipal, request: Request, backends: BackendsDep) -> Principal:
        refusal = None
        if principal.role not in roles:
            refusal = Forbidden(f"this needs the {' or '.join(roles)} role")
        elif principal.scope not in scopes:
            refusal = Forbidden(
                "this session may only enrol a device; ask your manager to verify your identity and approve the device"
            )
        if refusal is None:
            return principal
        with transaction(backends.sessions) as session:
            principal_event(
                session, principal, "request.forbidden", outcome="denied", reason=refusal.detail,
                method=request.method, path=request.url.path,
            )  # fmt: skip
        raise refusal

    return check


Manager = Annotated[Principal, Depends(requires("manager"))]
Technician = Annotated[Principal, Depends(requires("technician"))]
EnrollingTechnician = Annotated[Principal, Depends(requires("technician", scopes=("full", "enrol")))]
Member = Annotated[Principal, Depends(requires("manager", "technician", "auditor"))]
StationCaller = Annotated[Principal, Depends(requires("station", scopes=("station",)))]
AuditReader = Annotated[Principal, Depends(requires("auditor", "manager"))]
