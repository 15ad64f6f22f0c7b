"""One transaction per request: an operation and its audit event land together or not at all."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.audit.models import AuditEvent
from gateway.audit.service import AuditEntry, record
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.deps import SessionDep
from gateway.errors import DentGateError
from gateway.identity.models import Lab
from gateway.identity.service import create_lab
from gateway.settings import Settings


class RefusedAfterRecording(DentGateError):
    code = "refused-after-recording"
    status = 409
    title = "Refused after the event was recorded"


@pytest.fixture
def app_and_backends(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    backends = open_backends(settings)
    migrate(backends.engine)
    app = create_app(settings, backends)

    @app.post("/labs/{name}")
    def make_lab(name: str, session: SessionDep) -> dict[str, str]:
        return {"id": str(create_lab(session, name).id)}

    @app.post("/labs/{name}/failing")
    def make_lab_then_fail(name: str, session: SessionDep) -> None:
        lab = create_lab(session, name)
        record(session, AuditEntry(lab_id=lab.id, category="operation", action="lab.rename", actor_type="operator"))
        raise RefusedAfterRecording("the operation failed after its events were recorded")

    return app, backends


def count(backends, model) -> int:
    with backends.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_successful_request_commits_the_operation_and_its_event(app_and_backends):
    app, backends = app_and_backends
    with TestClient(app) as client:
        response = client.post("/labs/Kobe")
    assert response.status_code == 200
    with backends.sessions() as session:
        event = session.scalars(sa.select(AuditEvent)).one()
        assert (event.action, event.request_id) == ("lab.create", response.headers["x-request-id"])
        assert event.client_address == "testclient"


def test_a_failing_request_leaves_neither_the_operation_nor_its_events(app_and_backends):
    app, backends = app_and_backends
    with TestClient(app) as client:
        response = client.post("/labs/Nara/failing")
    assert response.status_code == 409
    assert response.json()["code"] == "refused-after-recording"
    assert count(backends, Lab) == 0
    assert count(backends, AuditEvent) == 0
