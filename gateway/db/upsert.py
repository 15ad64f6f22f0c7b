"""INSERT … ON CONFLICT DO UPDATE on both SQLite and PostgreSQL, for counters several replicas bump at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_or_update(
    session: Session, model: type, values: dict[str, Any], key: list[str], update: dict[str, Any]
) -> None:
    """Insert `values`, or apply `update` to the row whose `key` columns match, in one statement."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values)
    session.execute(
        statement.on_conflict_do_update(index_elements=key, set_=update),
        execution_options={"synchronize_session": False},
    )
