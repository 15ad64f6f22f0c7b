"""A sync endpoint's request transaction commits in the endpoint's own thread, before its response is validated on
another thread of the server's pool: a request never holds its connection and locks while it waits for a thread
(the load benchmark's stall with 96 technicians, bench/README.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_serializer
from sqlalchemy.orm import Session, sessionmaker

from gateway.routing import REQUEST_TRANSACTION, TransactionalRoute, commits_in_its_thread


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'route.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE notes (text TEXT)"))
    yield sessionmaker(engine)
    engine.dispose()


def committed_notes(factory: sessionmaker) -> list[str]:
    with factory() as other:  # another connection sees only what was committed
        return list(other.scalars(sa.text("SELECT text FROM notes")))


def request_transaction(factory: sessionmaker) -> Session:
    session = factory()
    session.begin()
    session.info[REQUEST_TRANSACTION] = True
    return session


def test_the_request_transaction_is_committed_when_the_endpoint_returns(factory):
    def endpoint(session: Session) -> str:
        session.execute(sa.text("INSERT INTO notes VALUES ('crown sent')"))
        return "done"

    session = request_transaction(factory)
    assert commits_in_its_thread(endpoint)(session=session) == "done"
    assert not session.in_transaction()
    assert committed_notes(factory) == ["crown sent"]
    session.close()


def test_an_endpoint_that_fails_leaves_its_transaction_to_be_rolled_back(factory):
    def endpoint(session: Session) -> str:
        session.execute(sa.text("INSERT INTO notes VALUES ('half done')"))
        raise RuntimeError("refused after writing")

    session = request_transaction(factory)
    with pytest.raises(RuntimeError):
        commits_in_its_thread(endpoint)(session=session)
    assert session.in_transaction()
    session.rollback()
    session.close()
    assert committed_notes(factory) == []


def test_a_session_that_is_not_the_request_transaction_is_left_alone(factory):
    def endpoint(session: Session) -> None:
        session.execute(sa.text("INSERT INTO notes VALUES ('own transaction')"))

    session = factory()
    session.begin()
    commits_in_its_thread(endpoint)(session=session)
    assert session.in_transaction()
    session.rollback()
    session.close()


def test_through_the_app_the_response_is_validated_after_the_commit(factory):
    seen_at_validation: list[list[str]] = []

    class Answer(BaseModel):
        text: str

        @field_serializer("text")
        def serialise(self, text: str) -> str:
            seen_at_validation.append(committed_notes(factory))
            return text

    def lab_like_session() -> Iterator[Session]:
        with factory() as session, session.begin():
            session.info[REQUEST_TRANSACTION] = True
            yield session

    router = APIRouter(route_class=TransactionalRoute)

    @router.post("/notes", response_model=Answer)
    def add_note(session: Session = Depends(lab_like_session, scope="function")) -> Answer:  # noqa: B008
        session.execute(sa.text("INSERT INTO notes VALUES ('milled')"))
        return Answer(text="milled")

    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.post("/notes").json() == {"text": "milled"}
    assert seen_at_validation == [["milled"]], "the note was committed before the response was validated"
    assert committed_notes(factory) == ["milled"]
