"""Log lines are JSON on stdout and never carry a secret."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from gateway.logs import REDACTED, configure_logging, redact


def test_secret_fields_and_url_passwords_are_redacted():
    event = {
        "password": "hunter2hunter2",
        "totp_code": "123456",
        "headers": {"Authorization": "DPoP abc.def", "accept": "application/json"},
        "database": "postgresql+psycopg://gw:s3cr3t@db/dentgate",
        "items": [{"refresh_token": "r-1"}],
        "user": "tanaka",
    }
    clean = redact(event)
    flat = json.dumps(clean)
    for secret in ("hunter2hunter2", "123456", "abc.def", "s3cr3t", "r-1"):
        assert secret not in flat
    assert clean["user"] == "tanaka"
    assert clean["headers"]["accept"] == "application/json"
    assert clean["database"] == f"postgresql+psycopg://gw:{REDACTED}@db/dentgate"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()


def test_log_lines_are_json_with_the_bound_request_id(capsys, restore_logging):
    configure_logging("info")
    structlog.contextvars.bind_contextvars(request_id="req-12345678")
    try:
        structlog.get_logger("dentgate.test").info("login failed", password="hunter2hunter2", user="sato")
    finally:
        structlog.contextvars.clear_contextvars()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "login failed"
    assert line["request_id"] == "req-12345678"
    assert line["password"] == REDACTED
    assert line["level"] == "info" and line["timestamp"].endswith("Z")
