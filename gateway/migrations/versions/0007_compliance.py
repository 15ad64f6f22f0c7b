"""compliance: lab documents, training, attestations, roster, 歯科技工録, incidents

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lab_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("published_by", sa.Uuid(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_lab_documents_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["published_by"], ["accounts.id"], name=op.f("fk_lab_documents_published_by_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_documents")),
        sa.UniqueConstraint("lab_id", "kind", "version", name="uq_lab_documents_lab_kind_version"),
    )
    with op.batch_alter_table("lab_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lab_documents_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "roster_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exported_by", sa.Uuid(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["exported_by"], ["accounts.id"], name=op.f("fk_roster_exports_exported_by_accounts")),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_roster_exports_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_exports")),
    )
    with op.batch_alter_table("roster_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roster_exports_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "technician_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_reference", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("patient_reference", sa.String(length=32), nullable=False),
        sa.Column("patient_name_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("model_received_on", sa.Date(), nullable=True),
        sa.Column("form_received_on", sa.Date(), nullable=True),
        sa.Column("site_and_design", sa.String(length=500), nullable=True),
        sa.Column("method", sa.String(length=500), nullable=True),
        sa.Column("materials", sa.JSON(), nullable=False),
        sa.Column("process_record", sa.Text(), nullable=True),
        sa.Column("final_inspection_on", sa.Date(), nullable=True),
        sa.Column("delivered_on", sa.Date(), nullable=True),
        sa.Column("amendment_reason", sa.String(length=500), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finalized_by", sa.Uuid(), nullable=True),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["finalized_by"], ["accounts.id"], name=op.f("fk_technician_records_finalized_by_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_technician_records_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["accounts.id"], name=op.f("fk_technician_records_updated_by_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technician_records")),
        sa.UniqueConstraint("lab_id", "case_reference", "version", name="uq_technician_records_lab_case_version"),
    )
    with op.batch_alter_table("technician_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_technician_records_case_reference"), ["case_reference"], unique=False)
        batch_op.create_index(batch_op.f("ix_technician_records_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_training_sessions_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["accounts.id"], name=op.f("fk_training_sessions_recorded_by_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_sessions")),
    )
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_sessions_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_acknowledgements_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["lab_documents.id"],
            name=op.f("fk_acknowledgements_document_id_lab_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_acknowledgements_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acknowledgements")),
        sa.UniqueConstraint("account_id", "document_id", name="uq_acknowledgements_account_document"),
    )
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acknowledgements_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acknowledgements_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("attested_on", sa.Date(), nullable=False),
        sa.Column("statement", sa.String(length=1000), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_attestations_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_attestations_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["lab_id"], ["labs.id"], name=op.f("fk_attestations_lab_id_labs"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["recorded_by"], ["accounts.id"], name=op.f("fk_attestations_recorded_by_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attestations")),
    )
    with op.batch_alter_table("attestations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attestations_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attestations_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject_account_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("reported_by", sa.Uuid(), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_incidents_device_id_devices")),
        sa.ForeignKeyConstraint(["lab_id"], ["labs.id"], name=op.f("fk_incidents_lab_id_labs"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["reported_by"], ["accounts.id"], name=op.f("fk_incidents_reported_by_accounts")),
        sa.ForeignKeyConstraint(
            ["subject_account_id"], ["accounts.id"], name=op.f("fk_incidents_subject_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_lab_id"), ["lab_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_subject_account_id"), ["subject_account_id"], unique=False)

    op.create_table(
        "training_attendances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_training_attendances_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_training_attendances_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_training_attendances_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_attendances")),
        sa.UniqueConstraint("session_id", "account_id", name="uq_training_attendances_session_account"),
    )
    with op.batch_alter_table("training_attendances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_attendances_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_attendances_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["accounts.id"], name=op.f("fk_incident_events_actor_id_accounts")),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_events_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_incident_events_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_events")),
    )
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_events_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_events_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_notifications_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_notifications_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_lab_id"), ["lab_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_status"), ["status"], unique=False)

    op.create_table(
        "remote_processes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_reference", sa.String(length=64), nullable=False),
        sa.Column("design_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("process", sa.String(length=200), nullable=False),
        sa.Column("location_label", sa.String(length=100), nullable=False),
        sa.Column("location_address", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_remote_processes_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["design_id"], ["designs.id"], name=op.f("fk_remote_processes_design_id_designs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_remote_processes_device_id_devices")),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_remote_processes_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_processes")),
        sa.UniqueConstraint("design_id", name=op.f("uq_remote_processes_design_id")),
    )
    with op.batch_alter_table("remote_processes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_remote_processes_case_reference"), ["case_reference"], unique=False)
        batch_op.create_index(batch_op.f("ix_remote_processes_lab_id"), ["lab_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("remote_processes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remote_processes_lab_id"))
        batch_op.drop_index(batch_op.f("ix_remote_processes_case_reference"))

    op.drop_table("remote_processes")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_status"))
        batch_op.drop_index(batch_op.f("ix_notifications_lab_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_incident_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_events_lab_id"))
        batch_op.drop_index(batch_op.f("ix_incident_events_incident_id"))

    op.drop_table("incident_events")
    with op.batch_alter_table("training_attendances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_attendances_lab_id"))
        batch_op.drop_index(batch_op.f("ix_training_attendances_account_id"))

    op.drop_table("training_attendances")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_subject_account_id"))
        batch_op.drop_index(batch_op.f("ix_incidents_lab_id"))

    op.drop_table("incidents")
    with op.batch_alter_table("attestations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attestations_lab_id"))
        batch_op.drop_index(batch_op.f("ix_attestations_account_id"))

    op.drop_table("attestations")
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acknowledgements_lab_id"))
        batch_op.drop_index(batch_op.f("ix_acknowledgements_account_id"))

    op.drop_table("acknowledgements")
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_sessions_lab_id"))

    op.drop_table("training_sessions")
    with op.batch_alter_table("technician_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_technician_records_lab_id"))
        batch_op.drop_index(batch_op.f("ix_technician_records_case_reference"))

    op.drop_table("technician_records")
    with op.batch_alter_table("roster_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_exports_lab_id"))

    op.drop_table("roster_exports")
    with op.batch_alter_table("lab_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lab_documents_lab_id"))

    op.drop_table("lab_documents")
