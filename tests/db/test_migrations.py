"""Migrations run unchanged on SQLite and PostgreSQL and produce exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.db.migrate import current_revision, head_revision, migrate
from gateway.db.models import metadata


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_migrating_again_changes_nothing(engine):
    assert migrate(engine) == head_revision()
    assert migrate(engine) == head_revision()
