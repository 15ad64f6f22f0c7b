"""The one client library the CLI and scripts use: HTTP to the gateway with a DPoP proof on every call."""

from __future__ import annotations

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

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def request(self, method: str, path: str, json: Any = None, authenticated: bool = True) -> Any:
        url = self._url(path)
        token = self.token if authenticated else None
        headers = {"DPoP": make_proof(self.key, method, url, access_token=token)}
        if token:
            headers["Authorization"] = f"DPoP {token}"
        with httpx.Client(timeout=self.timeout, transport=self.transport) as http:
            response = http.request(method, url, json=json, headers=headers)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise ApiError(
                response.status_code,
                str(body.get("code", "http-error")),
                str(body.get("detail") or body.get("title") or response.reason_phrase),
                body,
            )
        return response.json() if response.content else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, json: Any = None, authenticated: bool = True) -> Any:
        return self.request("POST", path, json, authenticated)
