"""Transfer tests run the app on each database and on each object store (local directory, S3 over moto)."""

import pytest

from tests.gateway_fixtures import STORES, app_settings, lab, running_app  # noqa: F401 (fixtures register by import)
from tests.transfer.scene import scene  # noqa: F401


@pytest.fixture(params=STORES)
def gateway(request, tmp_path, database_url):
    yield from running_app(app_settings(request, request.param, tmp_path, database_url))
