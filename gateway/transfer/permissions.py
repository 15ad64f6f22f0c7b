"""Per-design authorization (G12): the Cedar rules in `policies/authorization.cedar`, evaluated by one engine.

Callers pass plain facts about the subject and the design; the decision names the rules that made it,
so every allow and deny can be audited with its reason. A design of another lab is "not found".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import cedarpy

from gateway.errors import DentGateError

Action = Literal["read-metadata", "read-status", "download", "cancel", "grant", "revoke-grant", "requeue"]
ACTIONS: tuple[str, ...] = ("read-metadata", "read-status", "download", "cancel", "grant", "revoke-grant", "requeue")
GRANTABLE: tuple[str, ...] = ("read-metadata", "read-status", "download")


class DesignNotFound(DentGateError):
    code = "design-not-found"
    status = 404
    title = "No such design"


class PermissionDenied(DentGateError):
    code = "permission-denied"
    status = 403
    title = "Not allowed on this design"


class PolicyInvalid(DentGateError):
    code = "policy-invalid"
    status = 500
    title = "The authorization rules do not validate"


@dataclass(frozen=True)
class Subject:
    """Who asks: an account (with its role) or a station, in a lab."""

    kind: Literal["account", "station"]
    id: uuid.UUID
    lab_id: uuid.UUID
    role: str = "station"


@dataclass(frozen=True)
class DesignFacts:
    """What the rules need to know of a design."""

    id: uuid.UUID
    lab_id: uuid.UUID
    owner_id: uuid.UUID
    target_station_ids: frozenset[uuid.UUID]
    cancellable: bool


@dataclass(frozen=True)
class Decision:
    action: str
    allowed: bool
    rules: tuple[str, ...]  # the @id of each rule that decided; empty when nothing permitted

    @property
    def reason(self) -> str:
        return ", ".join(self.rules) or "no rule permits it"


@dataclass(frozen=True)
class _Rules:
    policies: cedarpy.PolicySet
    ids: dict[str, str]  # the engine's policy id -> the rule's @id


@cache
def _rules() -> _Rules:
    """Load and validate the shipped rules once; each rule must carry a unique @id."""
    folder = resources.files("policies")
    text = folder.joinpath("authorization.cedar").read_text(encoding="utf-8")
    schema = folder.joinpath("authorization.cedarschema").read_text(encoding="utf-8")
    validation = cedarpy.validate_policies(text, schema)
    if not validation.validation_passed:
        raise PolicyInvalid("; ".join(str(error) for error in validation.errors))
    parsed = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
    ids = {policy_id: policy.get("annotations", {}).get("id", "") for policy_id, policy in parsed.items()}
    if "" in ids.values() or len(set(ids.values())) != len(ids):
        raise PolicyInvalid("every authorization rule needs its own @id annotation")
    return _Rules(cedarpy.PolicySet.from_str(text), ids)


def _entities(subject: Subject, design: DesignFacts) -> list[dict]:
    principal = {"type": "Account" if subject.kind == "account" else "Station", "id": str(subject.id)}
    principal_attrs = {"lab": str(subject.lab_id)} | ({"role": subject.role} if subject.kind == "account" else {})
    entities = [
        {"uid": principal, "attrs": principal_attrs, "parents": []},
        {
            "uid": {"type": "Design", "id": str(design.id)},
            "attrs": {
                "lab": str(design.lab_id),
                "owner": {"__entity": {"type": "Account", "id": str(design.owner_id)}},
                "targets": [{"__entity": {"type": "Station", "id": str(s)}} for s in sorted(design.target_station_ids)],
                "cancellable": design.cancellable,
            },
            "parents": [],
        },
    ]
    if subject.kind == "station" or subject.id != design.owner_id:
        owner = {"type": "Account", "id": str(design.owner_id)}
        entities.append({"uid": owner, "attrs": {"lab": str(design.lab_id), "role": "technician"}, "parents": []})
    return entities


def decide(subject: Subject, action: str, design: DesignFacts, granted: Iterable[str] = ()) -> Decision:
    """Evaluate the rules for `subject` doing `action` to `design`; `granted` are its unexpired grants on it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown design action {action!r}")
    rules = _rules()
    principal_type = "Account" if subject.kind == "account" else "Station"
    result = cedarpy.is_authorized(
        {
            "principal": {"type": principal_type, "id": str(subject.id)},
            "action": {"type": "Action", "id": action},
            "resource": {"type": "Design", "id": str(design.id)},
            "context": {"granted": sorted(set(granted))},
        },
        rules.policies,
        _entities(subject, design),
    )
    if result.diagnostics.errors:
        raise PolicyInvalid("; ".join(str(error) for error in result.diagnostics.errors))
    decided_by = tuple(sorted(rules.ids[reason] for reason in result.diagnostics.reasons))
    return Decision(action, result.decision == cedarpy.Decision.Allow, decided_by)


def require(subject: Subject, action: str, design: DesignFacts, granted: Iterable[str] = ()) -> Decision:
    """The decision when allowed; DesignNotFound for another lab's design, PermissionDenied otherwise."""
    decision = decide(subject, action, design, granted)
    if decision.allowed:
        return decision
    if "other-lab-is-invisible" in decision.rules:
        raise DesignNotFound(f"no design {design.id}")
    raise PermissionDenied(f"{action} is not allowed on this design ({decision.reason})")
