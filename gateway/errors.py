"""The domain error hierarchy; one handler maps it to problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any, Self


class DentGateError(Exception):
    """Base of every error the gateway reports to a caller with a stable machine code."""

    code: str = "internal-error"
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.audit_entries: list[Any] = []

    def problem_extra(self) -> dict[str, Any]:
        """Members added to the problem document beside `detail` (e.g. each failed rule)."""
        failures = getattr(self, "failures", None)
        return {"failures": failures} if failures is not None else {}

    def audited(self, *entries: Any) -> Self:
        """Attach audit entries (`gateway.audit.service.AuditEntry`) that must be recorded although the
        request's transaction rolls back: the refusal itself is on record (G12, G19)."""
        self.audit_entries.extend(entries)
        return self


class CrossLabAccess(DentGateError):
    """A lab-scoped session was asked to write another lab's row."""

    code = "cross-lab-access"
    status = 403
    title = "Another lab's data"
