"""audit query indexes: by design or case (target), actor, action and time, within a lab (G19)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_events_lab_target_seq": ["lab_id", "target", "seq"],
    "ix_audit_events_lab_actor_seq": ["lab_id", "actor_id", "seq"],
    "ix_audit_events_lab_action_seq": ["lab_id", "action", "seq"],
    "ix_audit_events_lab_occurred_at": ["lab_id", "occurred_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
