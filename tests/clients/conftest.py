"""The app-driving fixtures for client tests: `gateway`, `lab`, and `scene` (a lab ready for transfers)."""

from tests.gateway_fixtures import gateway, lab  # noqa: F401 (fixtures are registered by import)
from tests.transfer.scene import scene  # noqa: F401
