"""design grants: per-design permissions with an expiry (G12)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "design_grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("design_id", sa.Uuid(), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("permission", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"], ["designs.id"], name=op.f("fk_design_grants_design_id_designs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["granted_by"], ["accounts.id"], name=op.f("fk_design_grants_granted_by_accounts")),
        sa.ForeignKeyConstraint(["revoked_by"], ["accounts.id"], name=op.f("fk_design_grants_revoked_by_accounts")),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["labs.id"], name=op.f("fk_design_grants_lab_id_labs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_grants")),
    )
    with op.batch_alter_table("design_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_design_grants_design_id"), ["design_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_design_grants_lab_id"), ["lab_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_design_grants_subject_id"), ["subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("design_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_design_grants_subject_id"))
        batch_op.drop_index(batch_op.f("ix_design_grants_lab_id"))
        batch_op.drop_index(batch_op.f("ix_design_grants_design_id"))
    op.drop_table("design_grants")
