"""transfer: uploads, designs, delivery jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "designs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_reference", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("signed_manifest", sa.JSON(), nullable=False),
        sa.Column("signed_receipt", sa.JSON(), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("ciphertext_size", sa.BigInteger(), nullable=False),
        sa.Column("ciphertext_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_designs_account_id_accounts")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_designs_device_id_devices")),
        sa.ForeignKeyConstraint(["lab_id"], ["labs.id"], name=op.f("fk_designs_lab_id_labs"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_designs")),
    )
    with op.batch_alter_table("designs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_designs_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_designs_case_reference"), ["case_reference"], unique=False)
        batch_op.create_index(batch_op.f("ix_designs_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("design_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("signed_manifest", sa.JSON(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("staging", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_uploads_account_id_accounts")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_uploads_device_id_devices")),
        sa.ForeignKeyConstraint(["lab_id"], ["labs.id"], name=op.f("fk_uploads_lab_id_labs"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("design_id", name=op.f("uq_uploads_design_id")),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_lab_id"), ["lab_id"], unique=False)

    op.create_table(
        "delivery_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("design_id", sa.Uuid(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("acknowledgement", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"], ["designs.id"], name=op.f("fk_delivery_jobs_design_id_designs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_delivery_jobs_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_delivery_jobs_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_jobs")),
        sa.UniqueConstraint("design_id", "station_id", name="uq_delivery_jobs_design_station"),
    )
    with op.batch_alter_table("delivery_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_jobs_design_id"), ["design_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_delivery_jobs_lab_id"), ["lab_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_delivery_jobs_station_id"), ["station_id"], unique=False)

    with op.batch_alter_table("labs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archive_recipient", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("labs", schema=None) as batch_op:
        batch_op.drop_column("archive_recipient")

    with op.batch_alter_table("delivery_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_jobs_station_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_jobs_lab_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_jobs_design_id"))

    op.drop_table("delivery_jobs")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_lab_id"))
        batch_op.drop_index(batch_op.f("ix_uploads_expires_at"))
        batch_op.drop_index(batch_op.f("ix_uploads_account_id"))

    op.drop_table("uploads")
    with op.batch_alter_table("designs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_designs_lab_id"))
        batch_op.drop_index(batch_op.f("ix_designs_case_reference"))
        batch_op.drop_index(batch_op.f("ix_designs_account_id"))

    op.drop_table("designs")
