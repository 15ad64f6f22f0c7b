"""The domain error hierarchy; one handler maps it to problem+json (RFC 9457)."""

from __future__ import annotations


class DentGateError(Exception):
    """Base of every error the gateway reports to a caller with a stable machine code."""

    code: str = "internal-error"
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class CrossLabAccess(DentGateError):
    """A lab-scoped session was asked to write another lab's row."""

    code = "cross-lab-access"
    status = 403
    title = "Another lab's data"
