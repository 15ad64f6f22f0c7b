"""Audit tests that drive the app: `gateway`, `lab` and `scene` (a lab ready for transfers), registered by import."""

from tests.gateway_fixtures import gateway, lab  # noqa: F401 (fixtures are registered by import)
from tests.transfer.scene import scene  # noqa: F401
