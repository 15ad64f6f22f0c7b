"""Incident tests run the app on each database with a real SMTP sink and a real webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from gateway.settings import Settings
from tests.conftest import free_port
from tests.gateway_fixtures import lab, running_app  # noqa: F401 (fixtures register by import)
from tests.transfer.scene import scene  # noqa: F401

WEBHOOK_SECRET = "incident-webhook-test-secret"


@dataclass
class SmtpSink:
    """A real SMTP server on loopback that keeps every message it accepts."""

    port: int
    messages: list = field(default_factory=list)
    controller: Controller | None = None
    delay: float = 0.0

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(self.delay)
        self.messages.append(envelope)
        return "250 Message accepted"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def start_smtp_sink(port: int | None = None) -> SmtpSink:
    sink = SmtpSink(port or free_port())
    sink.start()
    return sink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = start_smtp_sink()
    yield sink
    sink.stop()


@dataclass
class WebhookSink:
    url: str
    requests: list[tuple[dict[str, str], bytes]]


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    """A real HTTP server on loopback that records each POST (headers and exact body) and answers 204."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/hooks/dentgate", received)
    server.shutdown()
    server.server_close()


@pytest.fixture
def notify_settings(smtp_sink: SmtpSink, webhook_sink: WebhookSink) -> dict:
    """E-mail through the SMTP sink (no STARTTLS on loopback) and the signed webhook; a test may override it."""
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_sink.port,
        "smtp_from": "dentgate@kyoto-lab.example",
        "smtp_starttls": False,
        "incident_webhook_url": webhook_sink.url,
        "incident_webhook_secret": WEBHOOK_SECRET,
    }


@pytest.fixture
def gateway(tmp_path, database_url, notify_settings):
    yield from running_app(Settings(data_dir=tmp_path / "data", database_url=database_url, **notify_settings))
