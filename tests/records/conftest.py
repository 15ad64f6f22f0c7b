"""Record tests drive the app on each database: `gateway`, `lab`, and `scene` (a lab ready for transfers)."""

from tests.gateway_fixtures import gateway, lab  # noqa: F401 (fixtures register by import)
from tests.transfer.scene import scene  # noqa: F401
