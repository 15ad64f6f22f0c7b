"""Imports every domain's tables so the metadata (and Alembic) sees the whole schema."""

from gateway.audit import models as audit_models
from gateway.compliance import models as compliance_models
from gateway.db.base import Base
from gateway.identity import models as identity_models
from gateway.incidents import models as incident_models
from gateway.records import models as record_models
from gateway.transfer import models as transfer_models

metadata = Base.metadata

__all__ = [
    "audit_models",
    "compliance_models",
    "identity_models",
    "incident_models",
    "metadata",
    "record_models",
    "transfer_models",
]
