"""With PostgreSQL gone, /readyz says so with a reason; once it is back, ready again without a restart."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from gateway.app import create_app
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.settings import Settings
from tests.tcp_proxy import TcpProxy


@pytest.mark.postgres
def test_readyz_follows_postgresql_going_away_and_coming_back(tmp_path, postgres_url):
    real = make_url(postgres_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    proxy.start()
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(data_dir=tmp_path / "data", database_url=through_proxy, database_connect_timeout=2)
    backends = open_backends(settings)
    migrate(backends.engine)
    try:
        with TestClient(create_app(settings, backends)) as client:
            assert client.get("/readyz").status_code == 200

            proxy.stop()
            down = client.get("/readyz")
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            assert down.json()["code"] == "not-ready"
            assert down.json()["detail"].startswith("database unreachable")
            assert urlsplit(through_proxy).password is None or urlsplit(through_proxy).password not in down.text

            proxy.start()
            assert client.get("/readyz").status_code == 200
    finally:
        proxy.stop()
