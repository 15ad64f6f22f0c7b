"""Identity tables. A lab is the tenant every other row belongs to."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, UTCDateTime, utcnow


class Lab(Base):
    """A dental laboratory (歯科技工所); its people, stations, designs and logs are invisible to others."""

    __tablename__ = "labs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
