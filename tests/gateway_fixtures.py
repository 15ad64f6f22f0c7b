"""Fixtures and helpers for tests that drive the app: a controllable clock, a lab, people calling with their keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.backends import open_backends
from gateway.db.engine import transaction
from gateway.db.migrate import migrate
from gateway.identity import accounts
from gateway.identity.proofs import make_proof
from gateway.policy import default_policy
from gateway.settings import Settings
from tests.compliance_setup import prepare_lab

STRONG_PASSWORD = "cobalt chrome zirconia milling 2026"


class Clock:
    """The gateway's time in tests: real time plus whatever the test advanced it by."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Gateway:
    client: TestClient
    backends: Any
    clock: Clock

    def init_lab(self, lab: str, manager: str = "manager", ready: bool = True) -> str:
        """Create a lab and its first manager; `ready`: the manager is trained and the lab's policy published."""
        with transaction(self.backends.sessions) as session:
            issued = accounts.init_lab(session, lab, manager, default_policy().identity)
            lab_id, manager_id = issued.account.lab_id, issued.account.id
        if ready:
            prepare_lab(self.backends.sessions, lab_id, manager_id, self.clock().date())
        return issued.activation_secret


@dataclass
class Person:
    """Someone (or a station) calling the gateway with their own key; `token` once logged in."""

    gateway: Gateway
    lab: str
    username: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    token: str | None = None
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, json: Any = None, token: str | None = None, proof: bool = True):
        url = f"http://testserver{path}"
        token = token if token is not None else self.token
        headers = {}
        if proof:
            headers["DPoP"] = make_proof(self.key, method, url, access_token=token, now=self.gateway.clock())
        if token:
            headers["Authorization"] = f"DPoP {token}"
        return self.gateway.client.request(method, path, json=json, headers=headers)

    def totp(self, steps_ahead: int = 0) -> str:
        return pyotp.TOTP(self.totp_secret).at(self.gateway.clock() + timedelta(seconds=30 * steps_ahead))

    def activate(self, secret: str, password: str = STRONG_PASSWORD) -> None:
        body = {"lab": self.lab, "username": self.username, "activation_secret": secret}
        started = self.call("POST", "/api/v1/auth/activate", {**body, "password": password})
        assert started.status_code == 200, started.text
        self.totp_secret = started.json()["totp_secret"]
        confirmed = self.call("POST", "/api/v1/auth/activate/confirm", {**body, "totp": self.totp()})
        assert confirmed.status_code == 200, confirmed.text
        self.recovery_codes = confirmed.json()["recovery_codes"]

    def login(self, password: str = STRONG_PASSWORD, posture: dict | None = None, **second_factor: str):
        """Log in with a fresh TOTP step (the clock moves on a step first) unless a factor is given."""
        if not second_factor:
            self.gateway.clock.advance(seconds=30)
            second_factor = {"totp": self.totp()}
        body = {"lab": self.lab, "username": self.username, "password": password, **second_factor}
        if posture is not None:
            body["posture"] = posture
        response = self.call("POST", "/api/v1/auth/login", body, token="")
        if response.status_code == 200:
            self.token = response.json()["token"]
        return response


@pytest.fixture
def gateway(tmp_path, database_url):
    yield from running_app(Settings(data_dir=tmp_path / "data", database_url=database_url))


STORES = ["local", pytest.param("s3", marks=pytest.mark.s3)]


def app_settings(request: pytest.FixtureRequest, store: str, tmp_path, database_url: str) -> Settings:
    """Settings for a test app on `database_url` with designs on a local directory or on S3 (moto, via boto3)."""
    settings = {"data_dir": tmp_path / "data", "database_url": database_url}
    if store == "s3":
        bucket, endpoint = request.getfixturevalue("s3_bucket"), request.getfixturevalue("moto_endpoint")
        settings |= {"storage_url": f"s3://{bucket}/designs", "s3_endpoint_url": endpoint}
        settings |= {"s3_region": "ap-northeast-1"}
    return Settings(**settings)


def running_app(settings: Settings):
    """The app on `settings`, migrated, with a test clock, driven through a TestClient."""
    backends = open_backends(settings)
    migrate(backends.engine)
    clock = Clock()
    backends.clock = clock
    with TestClient(create_app(settings, backends)) as client:
        yield Gateway(client, backends, clock)


@pytest.fixture
def lab(gateway):
    """Lab "Kyoto Dental Lab" with an active manager."""
    manager = Person(gateway, "Kyoto Dental Lab", "manager")
    manager.activate(gateway.init_lab("Kyoto Dental Lab", "manager"))
    assert manager.login().status_code == 200
    return manager


def add_technician(manager: Person, username: str = "tanaka") -> Person:
    created = manager.call("POST", "/api/v1/accounts", {"username": username, "role": "technician"})
    assert created.status_code == 201, created.text
    technician = Person(manager.gateway, manager.lab, username)
    technician.account_id = created.json()["account"]["id"]  # type: ignore[attr-defined]
    technician.activate(created.json()["activation_secret"])
    return technician
