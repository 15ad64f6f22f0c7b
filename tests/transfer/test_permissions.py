"""The default authorization rules (G12), decision by decision, with the rule that decided each."""

from __future__ import annotations

import uuid

import pytest

from gateway.transfer.permissions import (
    DesignFacts,
    DesignNotFound,
    PermissionDenied,
    Subject,
    decide,
    require,
)

LAB, OTHER_LAB = uuid.uuid4(), uuid.uuid4()
OWNER = Subject("account", uuid.uuid4(), LAB, "technician")
COLLEAGUE = Subject("account", uuid.uuid4(), LAB, "technician")
MANAGER = Subject("account", uuid.uuid4(), LAB, "manager")
AUDITOR = Subject("account", uuid.uuid4(), LAB, "auditor")
TARGET = Subject("station", uuid.uuid4(), LAB)
OTHER_STATION = Subject("station", uuid.uuid4(), LAB)
FOREIGN_MANAGER = Subject("account", uuid.uuid4(), OTHER_LAB, "manager")
FOREIGN_STATION = Subject("station", TARGET.id, OTHER_LAB)


def design(cancellable: bool = True) -> DesignFacts:
    return DesignFacts(uuid.uuid4(), LAB, OWNER.id, frozenset({TARGET.id}), cancellable)


@pytest.mark.parametrize(
    ("subject", "action", "allowed", "rule"),
    [
        (OWNER, "read-metadata", True, "owner-reads-metadata-and-status"),
        (OWNER, "read-status", True, "owner-reads-metadata-and-status"),
        (OWNER, "cancel", True, "owner-cancels-before-delivery"),
        (OWNER, "download", False, None),
        (OWNER, "grant", False, None),
        (COLLEAGUE, "read-metadata", False, None),
        (TARGET, "download", True, "target-station-downloads"),
        (TARGET, "read-metadata", True, "target-station-downloads"),
        (TARGET, "cancel", False, None),
        (OTHER_STATION, "download", False, None),
        (MANAGER, "read-metadata", True, "manager-administers-designs"),
        (MANAGER, "grant", True, "manager-administers-designs"),
        (MANAGER, "revoke-grant", True, "manager-administers-designs"),
        (MANAGER, "cancel", True, "manager-administers-designs"),
        (MANAGER, "requeue", True, "manager-administers-designs"),
        (OWNER, "requeue", False, None),
        (MANAGER, "download", False, None),
        (AUDITOR, "read-metadata", True, "auditor-reads-metadata"),
        (AUDITOR, "download", False, "auditors-never-get-content"),
        (AUDITOR, "cancel", False, None),
    ],
)
def test_default_rules(subject, action, allowed, rule):
    decision = decide(subject, action, design())
    assert decision.allowed is allowed
    assert decision.rules == ((rule,) if rule else ())


def test_the_owner_cannot_cancel_after_delivery():
    assert decide(OWNER, "cancel", design(cancellable=False)).allowed is False
    assert decide(MANAGER, "cancel", design(cancellable=False)).allowed is True


def test_another_labs_design_is_not_found_not_forbidden():
    for subject in (FOREIGN_MANAGER, FOREIGN_STATION):
        decision = decide(subject, "read-metadata", design())
        assert (decision.allowed, decision.rules) == (False, ("other-lab-is-invisible",))
        with pytest.raises(DesignNotFound):
            require(subject, "read-metadata", design())


def test_a_grant_opens_only_what_it_names():
    assert decide(COLLEAGUE, "read-status", design(), granted={"read-status"}).rules == ("granted-read-status",)
    assert decide(COLLEAGUE, "read-metadata", design(), granted={"read-status"}).allowed is False
    assert decide(OTHER_STATION, "download", design(), granted={"download"}).allowed is True
    assert decide(MANAGER, "download", design(), granted={"download"}).rules == ("granted-download",)


def test_no_grant_gives_an_auditor_content():
    decision = decide(AUDITOR, "download", design(), granted={"download"})
    assert (decision.allowed, decision.rules) == (False, ("auditors-never-get-content",))


def test_no_grant_gives_an_auditor_content_or_crosses_labs():
    assert decide(AUDITOR, "download", design(), granted={"download"}).allowed is False
    assert decide(FOREIGN_STATION, "download", design(), granted={"download"}).allowed is False


def test_a_refusal_says_which_rule_or_that_none_permitted():
    with pytest.raises(PermissionDenied, match="auditors-never-get-content"):
        require(AUDITOR, "download", design())
    with pytest.raises(PermissionDenied, match="no rule permits it"):
        require(COLLEAGUE, "read-metadata", design())


def test_unknown_actions_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown design action"):
        decide(OWNER, "delete-everything", design())
