"""Technician profiles (G3) with their full history: who changed what, and when."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.identity.accounts import operation
from gateway.identity.errors import Conflict
from gateway.identity.models import Account, TechnicianProfile

PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip
PROFILE_FIELDS = (
    "full_name", "licence_number", "phone", "location_label", "location_address", "prefecture", "employed_by_lab",
)  # fmt: skip


def current_profile(session: Session, account: Account) -> TechnicianProfile | None:
    return session.scalar(
        sa.select(TechnicianProfile)
        .where(TechnicianProfile.account_id == account.id)
        .order_by(TechnicianProfile.id.desc())
        .limit(1)
    )


def profile_history(session: Session, account: Account) -> list[TechnicianProfile]:
    return list(
        session.scalars(
            sa.select(TechnicianProfile)
            .where(TechnicianProfile.account_id == account.id)
            .order_by(TechnicianProfile.id.desc())
        )
    )


def update_profile(session: Session, actor: Account, account: Account, values: dict[str, object]) -> TechnicianProfile:
    """Store a new version of the profile; earlier versions stay as history (G3)."""
    if account.role != "technician":
        raise Conflict("profiles are kept for technicians")
    if values["prefecture"] not in PREFECTURES:
        raise Conflict(f"{values['prefecture']!r} is not one of Japan's 47 prefectures (write it as 東京都, 大阪府 …)")
    before = current_profile(session, account)
    changed = [f for f in PROFILE_FIELDS if before is None or getattr(before, f) != values[f]]
    if not changed:
        assert before is not None
        return before
    version = TechnicianProfile(
        lab_id=account.lab_id, account_id=account.id, changed_by=actor.id, **{f: values[f] for f in PROFILE_FIELDS}
    )
    session.add(version)
    session.flush()
    operation(session, account, "profile.update", actor, fields=changed)
    return version
