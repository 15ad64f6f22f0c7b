"""The one client library the CLI and scripts use: HTTP to the gateway with a DPoP proof on every call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.identity.proofs import make_proof


class ApiError(Exception):
    """The gateway answered with a problem (RFC 9457); `code` is its stable machine code."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{detail} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body or {}


@dataclass
class GatewayClient:
    """Calls the gateway at `base_url`, proving possession of `key`; `token` once logged in."""

    base_url: str
    key: Ed25519PrivateKey = field(repr=False)
    token: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    transport: httpx.BaseTransport | None = None
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    def _client(self) -> httpx.Client:
        """One HTTP client for this gateway client: connections are reused, and making a client (its TLS
        context) costs tens of milliseconds, more than a request on a LAN."""
        if self._http is None:
            self._http = httpx.Client(transport=self.transport)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def _headers(self, method: str, url: str, authenticated: bool) -> dict[str, str]:
        token = self.token if authenticated else None
        headers = {"DPoP": make_proof(self.key, method, url, access_token=token)}
        if token:
            headers["Authorization"] = f"DPoP {token}"
        return headers

    def request(self, method: str, path: str, json: Any = None, authenticated: bool = True) -> Any:
        url = self._url(path)
        headers = self._headers(method, url, authenticated)
        response = self._client().request(method, url, json=json, headers=headers, timeout=self.timeout)
        raise_for_problem(response)
        return response.json() if response.content else None

    @contextlib.contextmanager
    def stream(self, path: str, params: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        """GET a large body (an audit export) without holding it in memory; ApiError for a problem answer."""
        url = self._url(path)
        headers = self._headers("GET", url, True)
        with self._client().stream("GET", url, params=params, headers=headers, timeout=self.timeout) as response:
            if response.status_code >= 400:
                response.read()
            raise_for_problem(response)
            yield response

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, json: Any = None, authenticated: bool = True) -> Any:
        return self.request("POST", path, json, authenticated)

    def download(self, method: str, path: str, json: Any = None) -> tuple[bytes, dict[str, str]]:
        """A document the gateway makes (a PDF, a CSV): its bytes and the response headers; ApiError for a problem."""
        url = self._url(path)
        headers = self._headers(method, url, True)
        response = self._client().request(method, url, json=json, headers=headers, timeout=self.timeout)
        raise_for_problem(response)
        return response.content, dict(response.headers)


def raise_for_problem(response: httpx.Response) -> None:
    """ApiError for a problem answer (status ≥ 400), with the gateway's stable code and detail."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    raise ApiError(
        response.status_code,
        str(body.get("code", "http-error")),
        str(body.get("detail") or body.get("title") or response.reason_phrase),
        body,
    )
