"""Audit tests: `keys` (a local gateway key), and the app fixtures `gateway`, `lab` and `scene` (a lab ready for
transfers), registered by import."""

import pytest

from tests.gateway_fixtures import gateway, lab  # noqa: F401 (fixtures are registered by import)
from tests.transfer.scene import scene  # noqa: F401


@pytest.fixture
def keys(tmp_path):
    """The gateway's signing key in a local key file, as the embedded default keeps it."""
    from gateway.keys.local import LocalKeyProvider

    return LocalKeyProvider.open(tmp_path / "keys" / "gateway-key.json")
