"""The incident response plan (G17): contacts with phone numbers and the procedure per incident type."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, EmailStr, Field

INCIDENT_TYPES = ("lost-device", "malware", "suspicious", "other")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    name: str = Field(min_length=1, max_length=100)
    role: str = Field(min_length=1, max_length=100)
    phone: str = Field(pattern=r"^\+?[0-9][0-9()\- ]{5,20}$")
    email: EmailStr | None = None
    notify: bool = False


class Procedure(_Strict):
    title_ja: str
    title_en: str
    steps_ja: tuple[str, ...] = Field(min_length=1)
    steps_en: tuple[str, ...] = Field(min_length=1)


class IncidentPlan(_Strict):
    version: str = Field(min_length=1, max_length=32)
    title_ja: str
    title_en: str
    contacts: tuple[Contact, ...] = Field(min_length=1)
    procedures: dict[str, Procedure]

    def model_post_init(self, context: object) -> None:
        missing = [t for t in INCIDENT_TYPES if t not in self.procedures]
        unknown = [t for t in self.procedures if t not in INCIDENT_TYPES]
        if missing or unknown:
            raise ValueError(f"procedures must cover exactly {', '.join(INCIDENT_TYPES)}")


def parse_plan(text: str) -> IncidentPlan:
    """Validate a plan document (TOML); raises pydantic's ValidationError naming each bad entry."""
    return IncidentPlan.model_validate(tomllib.loads(text))


@cache
def plan_template() -> str:
    """The template shipped in `policies/incident_plan.toml`, for a lab to fill in and publish."""
    return resources.files("policies").joinpath("incident_plan.toml").read_text(encoding="utf-8")
