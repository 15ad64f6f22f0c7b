"""Key-bound request proofs in the style of DPoP (RFC 9449) with Ed25519 keys (RFC 8037); pure, no replay tracking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.errors import DentGateError

PROOF_TYP = "dpop+jwt"
PROOF_ALG = "EdDSA"
MAX_JTI_LENGTH = 128
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ED25519_X = re.compile(r"[A-Za-z0-9_-]{43}")
# y-coordinates of the 8 small-order Edwards25519 points (libsodium's blocklist): OpenSSL verifies forged signatures
# for such keys, e.g. R = identity and S = 0 under the identity key, so nobody "possesses" them.
_P = 2**255 - 19
_Y8 = int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little")
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})


class InvalidProof(DentGateError):
    code = "invalid-proof"
    status = 401
    title = "Invalid proof of possession"


class MalformedProof(InvalidProof):
    code = "proof-malformed"
    title = "Malformed proof"


class ProofSignatureInvalid(InvalidProof):
    code = "proof-signature-invalid"
    title = "Proof signature does not verify"


class ProofKeyMismatch(InvalidProof):
    code = "proof-key-mismatch"
    title = "Proof signed by another key"


class ProofStale(InvalidProof):
    code = "proof-stale"
    title = "Proof outside its time window"


class ProofTargetMismatch(InvalidProof):
    code = "proof-target-mismatch"
    title = "Proof made for another request"


class ProofTokenMismatch(InvalidProof):
    code = "proof-token-mismatch"
    title = "Proof made for another access token"


@dataclass(frozen=True)
class VerifiedProof:
    jti: str
    thumbprint: str
    issued_at: datetime
    public_key: bytes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key_raw: bytes) -> dict[str, str]:
    """The OKP JWK of a raw 32-byte Ed25519 public key (RFC 8037 section 2)."""
    if len(public_key_raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public_key_raw)}


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an OKP JWK: SHA-256 over the sorted required members crv, kty, x (RFC 8037 A.3)."""
    if jwk.get("kty") != "OKP" or not isinstance(jwk.get("crv"), str) or not isinstance(jwk.get("x"), str):
        raise ValueError("only OKP keys with crv and x have a thumbprint here")
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def thumbprint_of_public_key(raw: bytes) -> str:
    """RFC 7638 thumbprint of a raw Ed25519 public key."""
    return jwk_thumbprint(public_jwk(raw))


def access_token_hash(token: str) -> str:
    """The ath claim: base64url SHA-256 of the ASCII access token (RFC 9449 section 4.2)."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def normalize_htu(url: str) -> str:
    """Scheme and host lower-cased, default port dropped, empty path as "/", no query or fragment (RFC 9449 4.3)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a proof target carries no credentials")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port  # raises ValueError when not a number in range
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def make_proof(
    private_key: Ed25519PrivateKey,
    method: str,
    url: str,
    access_token: str | None = None,
    now: datetime | None = None,
    jti: str | None = None,
) -> str:
    """A compact JWS proof binding one request (method, URL, optional token) to the key (RFC 9449 section 4.2)."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    claims: dict[str, Any] = {
        "jti": jti if jti is not None else secrets.token_urlsafe(16),
        "htm": method.upper(),
        "htu": _without_query(url),
        "iat": int((now or datetime.now(UTC)).timestamp()),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    headers = {"typ": PROOF_TYP, "jwk": public_jwk(raw)}
    return jwt.encode(claims, private_key, algorithm=PROOF_ALG, headers=headers)


def _header_key(proof: str) -> tuple[Ed25519PublicKey, bytes]:
    try:
        header = jwt.get_unverified_header(proof)
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise MalformedProof(f"proof is not a compact JWS: {error}") from None
    if header.get("typ") != PROOF_TYP:
        raise MalformedProof(f"proof typ must be {PROOF_TYP!r}")
    if header.get("alg") != PROOF_ALG:
        raise MalformedProof(f"proof alg must be {PROOF_ALG!r}, not {header.get('alg')!r}")
    if "crit" in header:
        raise MalformedProof("proof carries critical header extensions")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise MalformedProof("proof jwk must be an OKP Ed25519 public key")
    if "d" in jwk:
        raise MalformedProof("proof jwk contains a private key")
    x = jwk.get("x")
    raw = base64.urlsafe_b64decode(x + "=") if isinstance(x, str) and _ED25519_X.fullmatch(x) else b""
    if len(raw) != 32 or _b64url(raw) != x:
        raise MalformedProof("proof jwk x must be a canonical 32-byte base64url value")
    if (int.from_bytes(raw, "little") & ((1 << 255) - 1)) % _P in _SMALL_ORDER_Y:
        raise MalformedProof("proof jwk is a small-order point, for which anyone can forge signatures")
    return Ed25519PublicKey.from_public_bytes(raw), raw


def _claims(proof: str, key: Ed25519PublicKey) -> dict[str, Any]:
    try:
        payload = jwt.api_jws.decode_complete(proof, key, algorithms=[PROOF_ALG])["payload"]
    except jwt.InvalidSignatureError:
        raise ProofSignatureInvalid("proof signature does not verify with its jwk") from None
    except jwt.PyJWTError as error:
        raise MalformedProof(f"proof is not a valid JWS: {error}") from None
    try:
        claims = json.loads(payload)
    except ValueError:
        raise MalformedProof("proof payload is not JSON") from None
    if not isinstance(claims, dict):
        raise MalformedProof("proof payload is not a JSON object")
    return claims


def verify_proof(
    proof: str,
    method: str,
    url: str,
    *,
    now: datetime,
    max_age_seconds: int,
    access_token: str | None = None,
    expected_thumbprint: str | None = None,
) -> VerifiedProof:
    """Check a proof for this request per RFC 9449 section 4.3, or raise an InvalidProof subclass.

    Does NOT detect replay: the caller must remember the returned jti (with its key) for max_age_seconds.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    key, raw = _header_key(proof)
    claims = _claims(proof, key)
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise MalformedProof(f"proof jti must be a string of 1 to {MAX_JTI_LENGTH} characters")
    if not isinstance(htm, str) or not isinstance(htu, str):
        raise MalformedProof("proof htm and htu must be strings")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not abs(iat) < 2**53:  # also NaN and infinities
        raise MalformedProof("proof iat must be a number of seconds")
    if htm != method:
        raise ProofTargetMismatch(f"proof made for method {htm!r}, request is {method!r}")
    try:
        target_matches = normalize_htu(htu) == normalize_htu(url)
    except ValueError:
        target_matches = False
    if not target_matches:
        raise ProofTargetMismatch(f"proof made for {htu!r}, request is {_without_query(url)!r}")
    if abs(iat - now.timestamp()) > max_age_seconds:
        raise ProofStale(f"proof issued at {iat}, more than {max_age_seconds}s from now")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str):
            raise ProofTokenMismatch("proof carries no ath for the presented access token")
        if not access_token.isascii() or not _same(ath, access_token_hash(access_token)):
            raise ProofTokenMismatch("proof ath does not match the presented access token")
    thumbprint = thumbprint_of_public_key(raw)
    if expected_thumbprint is not None and not _same(thumbprint, expected_thumbprint):
        raise ProofKeyMismatch("proof signed by a key other than the one the token is bound to")
    return VerifiedProof(jti=jti, thumbprint=thumbprint, issued_at=datetime.fromtimestamp(iat, UTC), public_key=raw)


def key_fingerprint(public_key: bytes) -> str:
    """`SHA256:<base64>` of a raw public key, the form people read aloud to compare keys."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")
