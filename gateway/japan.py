"""Japan's calendar and clock, the one home of Japan time: dates people write down (a training, an attestation, a
filing, a 歯科技工録 item) are dates in Japan whatever the server's time zone, so a training held this morning in
Kyoto is never "in the future"; documents handed to people show Japan time (G5, G20, G21)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from gateway.db.base import utcnow

JST = timezone(timedelta(hours=9), "JST")  # Japan keeps no daylight saving time


def japan_today(now: datetime | None = None) -> date:
    """Today's date in Japan at `now` (default: the current time)."""
    return (now or utcnow()).astimezone(JST).date()


def japan_time(moment: datetime) -> str:
    """`moment` as Japan's local time, to the minute, for documents handed to people."""
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")
