"""Transfer tests run the app on each database and on each object store (local directory, S3 over moto)."""

import pytest

from gateway.settings import Settings
from tests.gateway_fixtures import lab, running_app  # noqa: F401 (fixtures are registered by import)
from tests.transfer.scene import scene  # noqa: F401


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def gateway(request, tmp_path, database_url):
    settings = {"data_dir": tmp_path / "data", "database_url": database_url}
    if request.param == "s3":
        bucket, endpoint = request.getfixturevalue("s3_bucket"), request.getfixturevalue("moto_endpoint")
        settings |= {
            "storage_url": f"s3://{bucket}/designs",
            "s3_endpoint_url": endpoint,
            "s3_region": "ap-northeast-1",
        }
    yield from running_app(Settings(**settings))
