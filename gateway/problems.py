"""Every API error as `application/problem+json` (RFC 9457) with a stable machine `code`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway.errors import DentGateError
from gateway.request_context import current_request

PROBLEM_MEDIA_TYPE = "application/problem+json"
_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 403: "forbidden"}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem details response; the request id rides along so a user can quote it."""
    body: dict[str, Any] = {"type": f"urn:dentgate:problem:{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    request = current_request()
    if request is not None:
        body["request_id"] = request.request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DentGateError)
    return problem(error.status, error.code, error.title, error.detail, request.url.path, **error.problem_extra())


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # Field locations and messages only: the submitted input may hold a password.
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()
    ]
    return problem(
        422, "invalid-request", "Invalid request", "the request does not match the API", request.url.path, errors=errors
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, "http-error")
    title = code.replace("-", " ").capitalize()
    return problem(error.status_code, code, title, str(error.detail), request.url.path, headers=error.headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DentGateError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
