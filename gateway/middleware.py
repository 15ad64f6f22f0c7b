"""Per-request context: a request id on every request and response, one log line, one access event, no raw 500s."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit.access import record_access
from gateway.problems import problem
from gateway.request_context import RequestContext, enter_request, leave_request

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
log = structlog.get_logger("dentgate.http")


class RequestContextMiddleware:
    """Adopt a well-formed caller `X-Request-ID` or mint one; answer unhandled errors as problem+json.

    Once the response is sent, a request made by an authenticated principal (`request.state.principal`)
    becomes one access event on the audit chain (`gateway.audit.access`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = offered if _ACCEPTABLE_ID.fullmatch(offered) else uuid.uuid4().hex
        client = scope.get("client")
        token = enter_request(RequestContext(request_id, client[0] if client else None))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})  # where authentication leaves the principal (`request.state`)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", path=scope.get("path"))
            if response_started:
                raise
            await problem(500, "internal-error", "Internal error", f"quote request id {request_id}")(
                scope, receive, send_with_id
            )
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                client=client[0] if client else None,
            )
            await record_access(scope, status, started)
            structlog.contextvars.unbind_contextvars("request_id")
            leave_request(token)


class JsonBodyLimitMiddleware:
    """Refuse JSON bodies over `limit` bytes (413) without holding more than the limit; streams are not JSON."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"]) if scope["type"] == "http" else {}
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"JSON bodies are limited to {self.limit} bytes"
        await problem(413, "body-too-large", "Request body too large", detail)(scope, receive, send)
