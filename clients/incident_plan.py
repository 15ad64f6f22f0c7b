"""The incident plan on the technician's own machine (G17): fetched from the gateway when it can be, cached in the
client's home, and shown from the cache when the gateway or the session is gone. Phone numbers come first:
when a device is lost or infected, the phone is what still works."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import httpx

from clients.api import ApiError
from clients.keystore import KeyStoreError
from clients.profile import load_login

PLAN_PATH = "/api/v1/incident-plan"
FETCH_TIMEOUT_SECONDS = 5.0
TYPE_ORDER = ("lost-device", "malware", "suspicious", "other")


@dataclass(frozen=True)
class PlanCopy:
    """The plan as the gateway answered it, when it was fetched, and why it is the cached copy (if it is)."""

    answer: dict[str, Any]
    fetched_at: datetime
    gateway: str
    lab: str
    offline_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"source": "cache" if self.offline_reason else "gateway", "fetched_at": self.fetched_at.isoformat(),
                "gateway": self.gateway, "lab": self.lab, "offline_reason": self.offline_reason,
                **self.answer}  # fmt: skip


class NoPlanAvailable(Exception):
    """Neither the gateway nor a cached copy could give the plan."""


def cache_file(home: Path) -> Path:
    return home / "incident-plan.json"


def save_copy(home: Path, copy: PlanCopy) -> None:
    """Replace the cached copy atomically (owner-only, like the rest of the client home)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = home / ".incident-plan.json.tmp"
    record = {"answer": copy.answer, "fetched_at": copy.fetched_at.isoformat(), "gateway": copy.gateway,
              "lab": copy.lab}  # fmt: skip
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(record, file, ensure_ascii=False)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, cache_file(home))


def load_copy(home: Path, reason: str) -> PlanCopy | None:
    path = cache_file(home)
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return PlanCopy(record["answer"], datetime.fromisoformat(record["fetched_at"]), record["gateway"], record["lab"],
                    offline_reason=reason)  # fmt: skip


def _fetch(home: Path) -> tuple[PlanCopy | None, str]:
    """The plan from the gateway and caches it; or None and why it could not be fetched."""
    login = load_login(home)
    if login is None:
        return None, "not logged in"
    try:
        client = login.client(home)
        client.timeout = FETCH_TIMEOUT_SECONDS
        answer = client.get(PLAN_PATH)
    except httpx.TransportError as error:
        return None, f"the gateway {login.gateway} cannot be reached ({type(error).__name__})"
    except ApiError as error:
        if error.status not in (401, 403):
            raise
        return None, f"the session is gone: {error.detail} [{error.code}]"
    except KeyStoreError as error:
        return None, f"this login's key is not available: {error}"
    copy = PlanCopy(answer, datetime.now(UTC), login.gateway, login.lab)
    save_copy(home, copy)
    return copy, ""


def current_plan(home: Path) -> PlanCopy:
    """The plan from the gateway (refreshing the cache), else the cached copy saying why; NoPlanAvailable."""
    fetched, reason = _fetch(home)
    if fetched is not None:
        return fetched
    cached = load_copy(home, reason)
    if cached is None:
        raise NoPlanAvailable(f"{reason}, and no copy of the incident plan is cached on this machine yet")
    return cached


def render(copy: PlanCopy) -> str:
    """The plan for a terminal: where it comes from, the contacts' phone numbers, then each procedure."""
    answer, plan = copy.answer, copy.answer["plan"]
    origin = "ひな形 / TEMPLATE: the lab has not published its own plan" if answer["template"] else "the lab's plan"
    lines = [f"{plan['title_ja']} / {plan['title_en']}  (version {answer['version']}, {origin})"]
    if copy.offline_reason:
        lines.append(f"!! Cached copy fetched {copy.fetched_at.astimezone():%Y-%m-%d %H:%M %Z} from {copy.gateway}"
                     f" ({copy.offline_reason})")  # fmt: skip
    lines += ["", "連絡先 / Contacts:"]
    for contact in plan["contacts"]:
        email = f"  {contact['email']}" if contact.get("email") else ""
        lines.append(f"  TEL {contact['phone']:<16} {contact['name']} — {contact['role']}{email}")
    for kind in (t for t in TYPE_ORDER if t in plan["procedures"]):
        procedure = plan["procedures"][kind]
        lines += ["", f"[{kind}] {procedure['title_ja']} / {procedure['title_en']}"]
        steps = zip_longest(procedure["steps_ja"], procedure["steps_en"], fillvalue="")
        for number, (ja, en) in enumerate(steps, start=1):
            lines += [f"  {number}. {ja}", f"     {en}"]
    return "\n".join(lines)
