"""Key-bound request proofs (RFC 9449 style, Ed25519): what verifies and what is refused."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.errors import DentGateError
from gateway.identity.proofs import (
    InvalidProof,
    MalformedProof,
    ProofKeyMismatch,
    ProofSignatureInvalid,
    ProofStale,
    ProofTargetMismatch,
    ProofTokenMismatch,
    VerifiedProof,
    access_token_hash,
    jwk_thumbprint,
    make_proof,
    public_jwk,
    thumbprint_of_public_key,
    verify_proof,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
URL = "https://gw.example.com/v1/files"
MAX_AGE = 60

# RFC 8037 appendix A.1-A.3 (the RFC 8032 test 1 key).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def claims_for(method: str = "GET", url: str = URL, **extra: object) -> dict[str, object]:
    return {"jti": "jti-1", "htm": method, "htu": url, "iat": int(NOW.timestamp()), **extra}


def signed(key: Ed25519PrivateKey, claims: dict[str, object], **header: object) -> str:
    """A proof signed by key with arbitrary claims; header members override the usual ones."""
    headers = {"typ": "dpop+jwt", "jwk": public_jwk(raw_public(key)), **header}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


def verify(proof: str, method: str = "GET", url: str = URL, **kwargs: object) -> VerifiedProof:
    return verify_proof(proof, method, url, now=NOW, max_age_seconds=MAX_AGE, **kwargs)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


# --- thumbprints and hashes ---------------------------------------------------------------------------------------


def test_thumbprint_matches_rfc8037_known_answer() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert jwk_thumbprint(jwk) == RFC8037_THUMBPRINT
    assert thumbprint_of_public_key(b64url_decode(RFC8037_X)) == RFC8037_THUMBPRINT


def test_public_jwk_of_rfc8037_private_key_has_the_rfc_x() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert public_jwk(raw_public(private)) == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}


def test_thumbprint_ignores_optional_members_and_member_order() -> None:
    jwk = {"x": RFC8037_X, "use": "sig", "kid": "k1", "crv": "Ed25519", "kty": "OKP"}
    assert jwk_thumbprint(jwk) == RFC8037_THUMBPRINT


def test_thumbprint_refuses_non_okp_keys() -> None:
    with pytest.raises(ValueError, match="OKP"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"})


def test_public_jwk_refuses_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        public_jwk(b"\x00" * 31)


def test_access_token_hash_is_unpadded_base64url_sha256() -> None:
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"token-123").digest()).decode().rstrip("=")
    assert access_token_hash("token-123") == expected
    assert "=" not in access_token_hash("token-123")
    assert len(access_token_hash("x")) == 43


# --- making and verifying -----------------------------------------------------------------------------------------


def test_made_proof_verifies_and_yields_the_key_thumbprint(key: Ed25519PrivateKey) -> None:
    proof = make_proof(key, "GET", URL, now=NOW, jti="abc")
    verified = verify(proof)
    assert verified == VerifiedProof(
        jti="abc", thumbprint=thumbprint_of_public_key(raw_public(key)), issued_at=NOW, public_key=raw_public(key)
    )


def test_verified_proof_is_frozen(key: Ed25519PrivateKey) -> None:
    verified = verify(make_proof(key, "GET", URL, now=NOW))
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.jti = "other"  # type: ignore[misc]


def test_made_proof_has_dpop_header_and_claims(key: Ed25519PrivateKey) -> None:
    proof = make_proof(key, "post", URL + "?q=1#frag", access_token="tok", now=NOW)
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "EdDSA"
    assert header["jwk"] == public_jwk(raw_public(key))
    claims = json.loads(b64url_decode(proof.split(".")[1]))
    assert claims["htm"] == "POST"
    assert claims["htu"] == URL
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["ath"] == access_token_hash("tok")
    assert len(b64url_decode(claims["jti"])) == 16


def test_made_proofs_get_distinct_random_jtis(key: Ed25519PrivateKey) -> None:
    first = verify(make_proof(key, "GET", URL, now=NOW))
    second = verify(make_proof(key, "GET", URL, now=NOW))
    assert first.jti != second.jti


def test_proof_without_token_has_no_ath(key: Ed25519PrivateKey) -> None:
    claims = json.loads(b64url_decode(make_proof(key, "GET", URL, now=NOW).split(".")[1]))
    assert "ath" not in claims


def test_wrong_method_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch, match="method"):
        verify(make_proof(key, "GET", URL, now=NOW), method="POST")


def test_other_path_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch):
        verify(make_proof(key, "GET", URL, now=NOW), url="https://gw.example.com/v1/admin")


def test_other_host_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch):
        verify(make_proof(key, "GET", URL, now=NOW), url="https://evil.example.com/v1/files")


def test_other_scheme_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch):
        verify(make_proof(key, "GET", URL, now=NOW), url="http://gw.example.com/v1/files")


def test_query_and_fragment_on_request_are_tolerated(key: Ed25519PrivateKey) -> None:
    verified = verify(make_proof(key, "GET", URL, now=NOW), url=URL + "?page=2&sort=name#top")
    assert verified.thumbprint == thumbprint_of_public_key(raw_public(key))


def test_query_in_htu_claim_is_ignored(key: Ed25519PrivateKey) -> None:
    verify(signed(key, claims_for(url=URL + "?other=1")))


def test_default_port_and_case_are_normalised(key: Ed25519PrivateKey) -> None:
    verify(make_proof(key, "GET", "HTTPS://GW.Example.COM:443/v1/files", now=NOW))
    verify(make_proof(key, "GET", URL, now=NOW), url="https://gw.example.com:443/v1/files")
    verify(make_proof(key, "GET", "http://gw.example.com:80/", now=NOW), url="http://gw.example.com")


def test_non_default_port_is_significant(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch):
        verify(make_proof(key, "GET", "https://gw.example.com:8443/v1/files", now=NOW))
    with pytest.raises(ProofTargetMismatch):
        verify(make_proof(key, "GET", "https://gw.example.com:80/v1/files", now=NOW))


def test_path_case_is_significant(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch):
        verify(make_proof(key, "GET", "https://gw.example.com/V1/Files", now=NOW))


def test_htu_that_is_not_a_url_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTargetMismatch):
        verify(signed(key, claims_for(url="/v1/files")))
    with pytest.raises(ProofTargetMismatch):
        verify(signed(key, claims_for(url="https://user:pw@gw.example.com/v1/files")))
    with pytest.raises(ProofTargetMismatch):
        verify(signed(key, claims_for(url="https://gw.example.com:99999/v1/files")))


def test_iat_at_the_edge_of_the_window_is_accepted(key: Ed25519PrivateKey) -> None:
    verify(make_proof(key, "GET", URL, now=NOW - timedelta(seconds=MAX_AGE)))
    verify(make_proof(key, "GET", URL, now=NOW + timedelta(seconds=MAX_AGE)))


def test_too_old_proof_is_stale(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofStale) as caught:
        verify(make_proof(key, "GET", URL, now=NOW - timedelta(seconds=MAX_AGE + 1)))
    assert caught.value.code == "proof-stale"


def test_proof_from_the_future_is_stale(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofStale):
        verify(make_proof(key, "GET", URL, now=NOW + timedelta(seconds=MAX_AGE + 1)))


def test_absurd_iat_is_stale_not_a_crash(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofStale):
        verify(signed(key, claims_for(iat=10**15)))


def test_non_finite_iat_is_refused(key: Ed25519PrivateKey) -> None:
    header = b64url_json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": public_jwk(raw_public(key))})
    for literal in ("NaN", "Infinity", "-Infinity"):
        payload = f'{{"jti":"j","htm":"GET","htu":"{URL}","iat":{literal}}}'.encode()
        signing_input = f"{header}.{b64url(payload)}"
        with pytest.raises(MalformedProof, match="iat"):
            verify(f"{signing_input}.{b64url(key.sign(signing_input.encode()))}")


def test_float_iat_is_accepted(key: Ed25519PrivateKey) -> None:
    verified = verify(signed(key, claims_for(iat=NOW.timestamp() + 0.5)))
    assert verified.issued_at == NOW + timedelta(seconds=0.5)


def test_naive_now_is_a_programming_error(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_proof(make_proof(key, "GET", URL, now=NOW), "GET", URL, now=datetime(2025, 3, 1), max_age_seconds=60)


# --- signatures and algorithms ------------------------------------------------------------------------------------


def test_tampered_payload_byte_is_refused(key: Ed25519PrivateKey) -> None:
    header, payload, signature = make_proof(key, "GET", URL, now=NOW).split(".")
    index = len(payload) // 2
    flipped = "B" if payload[index] != "B" else "C"
    with pytest.raises(ProofSignatureInvalid):
        verify(f"{header}.{payload[:index]}{flipped}{payload[index + 1 :]}.{signature}")


def test_payload_rewritten_for_another_target_keeps_no_signature(key: Ed25519PrivateKey) -> None:
    header, _, signature = make_proof(key, "GET", URL, now=NOW).split(".")
    forged = b64url_json(claims_for(method="DELETE"))
    with pytest.raises(ProofSignatureInvalid):
        verify(f"{header}.{forged}.{signature}", method="DELETE")


def test_tampered_signature_is_refused(key: Ed25519PrivateKey) -> None:
    header, payload, signature = make_proof(key, "GET", URL, now=NOW).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 1
    with pytest.raises(ProofSignatureInvalid):
        verify(f"{header}.{payload}.{b64url(bytes(raw))}")


def test_proof_signed_by_another_key_with_first_key_jwk_is_refused(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    forged = signed(other, claims_for(), jwk=public_jwk(raw_public(key)))
    with pytest.raises(ProofSignatureInvalid):
        verify(forged)


def test_alg_none_is_refused(key: Ed25519PrivateKey) -> None:
    header = b64url_json({"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(raw_public(key))})
    unsigned = f"{header}.{b64url_json(claims_for())}."
    with pytest.raises(MalformedProof, match="alg"):
        verify(unsigned)


def test_alg_hs256_keyed_with_the_public_key_is_refused(key: Ed25519PrivateKey) -> None:
    jwk = public_jwk(raw_public(key))
    signing_input = f"{b64url_json({'typ': 'dpop+jwt', 'alg': 'HS256', 'jwk': jwk})}.{b64url_json(claims_for())}"
    for secret in (raw_public(key), jwk["x"].encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(MalformedProof, match="alg"):
            verify(f"{signing_input}.{b64url(mac)}")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "Ed25519", "eddsa", None])
def test_other_algs_are_refused(key: Ed25519PrivateKey, alg: str | None) -> None:
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(raw_public(key))}
    token = f"{b64url_json(header)}.{b64url_json(claims_for())}.{b64url(b'x' * 64)}"
    with pytest.raises(MalformedProof, match="alg"):
        verify(token)


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", None])
def test_wrong_typ_is_refused(key: Ed25519PrivateKey, typ: str | None) -> None:
    with pytest.raises(MalformedProof, match="typ"):
        verify(signed(key, claims_for(), typ=typ))


def test_jwk_with_private_d_member_is_refused(key: Ed25519PrivateKey) -> None:
    jwk = {**public_jwk(raw_public(key)), "d": b64url(b"\x01" * 32)}
    with pytest.raises(MalformedProof, match="private"):
        verify(signed(key, claims_for(), jwk=jwk))


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        "not-a-dict",
        {"kty": "EC", "crv": "Ed25519", "x": RFC8037_X},
        {"kty": "OKP", "crv": "X25519", "x": RFC8037_X},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X[:-1]},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X + "="},
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x00" * 33)},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X[:-1] + "p"},  # non-canonical trailing bits
    ],
)
def test_jwk_that_is_not_a_canonical_ed25519_public_key_is_refused(key: Ed25519PrivateKey, jwk: object) -> None:
    with pytest.raises(MalformedProof, match="jwk"):
        verify(signed(key, claims_for(), jwk=jwk))


SMALL_ORDER_KEYS = [
    bytes(32),  # y = 0, order 4
    bytes([1]) + bytes(31),  # identity
    bytes([0xEC]) + b"\xff" * 30 + b"\x7f",  # y = p - 1, order 2
    bytes([0xEE]) + b"\xff" * 30 + b"\x7f",  # y = p + 1: the identity, non-canonically encoded
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),  # same y, sign bit set
]


@pytest.mark.parametrize("raw", SMALL_ORDER_KEYS)
def test_small_order_jwk_is_refused(raw: bytes) -> None:
    header = b64url_json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": public_jwk(raw)})
    with pytest.raises(MalformedProof, match="small-order"):
        verify(f"{header}.{b64url_json(claims_for())}.{b64url(bytes(64))}")


def test_forged_proof_under_the_identity_key_is_refused() -> None:
    identity = bytes([1]) + bytes(31)
    header = b64url_json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": public_jwk(identity)})
    # R = identity, S = 0 satisfies the Ed25519 equation for every message under this key.
    forged = f"{header}.{b64url_json(claims_for())}.{b64url(identity + bytes(32))}"
    with pytest.raises(MalformedProof):
        verify(forged)


def test_missing_jwk_header_is_refused(key: Ed25519PrivateKey) -> None:
    token = jwt.encode(claims_for(), key, algorithm="EdDSA", headers={"typ": "dpop+jwt"})
    with pytest.raises(MalformedProof, match="jwk"):
        verify(token)


def test_critical_header_extensions_are_refused(key: Ed25519PrivateKey) -> None:
    jwk = public_jwk(raw_public(key))
    header = b64url_json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk, "b64": False, "crit": ["b64"]})
    payload = json.dumps(claims_for(), separators=(",", ":"))
    signature = b64url(key.sign(f"{header}.{payload}".encode()))
    with pytest.raises(MalformedProof, match="critical"):
        verify(f"{header}..{signature}")
    with pytest.raises(MalformedProof):
        verify(signed(key, claims_for(), crit=["b64"]))


# --- claims -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_each_missing_required_claim_is_refused(key: Ed25519PrivateKey, claim: str) -> None:
    claims = claims_for()
    del claims[claim]
    with pytest.raises(MalformedProof, match=claim):
        verify(signed(key, claims))


@pytest.mark.parametrize(
    "override",
    [
        {"jti": ""},
        {"jti": "x" * 129},
        {"jti": 7},
        {"htm": None},
        {"htu": 1},
        {"iat": "1740830400"},
        {"iat": True},
        {"iat": 10**400},
        {"iat": None},
    ],
)
def test_mistyped_claims_are_refused(key: Ed25519PrivateKey, override: dict[str, object]) -> None:
    with pytest.raises(MalformedProof):
        verify(signed(key, claims_for(**override)))


def test_jti_of_128_characters_is_accepted(key: Ed25519PrivateKey) -> None:
    assert verify(signed(key, claims_for(jti="x" * 128))).jti == "x" * 128


def test_ath_for_the_presented_token_is_accepted(key: Ed25519PrivateKey) -> None:
    verify(make_proof(key, "GET", URL, access_token="token-A", now=NOW), access_token="token-A")


def test_ath_made_for_another_token_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTokenMismatch):
        verify(make_proof(key, "GET", URL, access_token="token-A", now=NOW), access_token="token-B")


def test_presented_token_without_ath_in_proof_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTokenMismatch, match="no ath"):
        verify(make_proof(key, "GET", URL, now=NOW), access_token="token-A")


def test_non_ascii_ath_or_token_is_refused_not_a_crash(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofTokenMismatch):
        verify(signed(key, claims_for(ath="é" * 43)), access_token="token-A")
    with pytest.raises(ProofTokenMismatch):
        verify(make_proof(key, "GET", URL, access_token="token-A", now=NOW), access_token="tökén")


def test_ath_is_not_required_when_no_token_is_presented(key: Ed25519PrivateKey) -> None:
    verify(make_proof(key, "GET", URL, access_token="token-A", now=NOW))


def test_expected_thumbprint_of_the_signing_key_is_accepted(key: Ed25519PrivateKey) -> None:
    expected = thumbprint_of_public_key(raw_public(key))
    assert verify(make_proof(key, "GET", URL, now=NOW), expected_thumbprint=expected).thumbprint == expected


def test_expected_thumbprint_of_another_key_is_a_key_mismatch(key: Ed25519PrivateKey) -> None:
    other = thumbprint_of_public_key(raw_public(Ed25519PrivateKey.generate()))
    with pytest.raises(ProofKeyMismatch) as caught:
        verify(make_proof(key, "GET", URL, now=NOW), expected_thumbprint=other)
    assert caught.value.code == "proof-key-mismatch"
    assert caught.value.status == 401


# --- garbage ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c", "...", "!!!.@@@.###", "eyJ9.e30.", b64url_json([1, 2]) + ".e30.", "é.é.é"],
)
def test_garbage_is_malformed(garbage: str) -> None:
    with pytest.raises(MalformedProof):
        verify(garbage)


def test_payload_that_is_not_a_json_object_is_malformed(key: Ed25519PrivateKey) -> None:
    header = b64url_json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": public_jwk(raw_public(key))})
    for payload in (b"[1,2]", b"not json"):
        signing_input = f"{header}.{b64url(payload)}"
        signature = b64url(key.sign(signing_input.encode()))
        with pytest.raises(MalformedProof, match="payload"):
            verify(f"{signing_input}.{signature}")


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [MalformedProof, ProofSignatureInvalid, ProofKeyMismatch, ProofStale, ProofTargetMismatch, ProofTokenMismatch],
)
def test_every_failure_is_an_invalid_proof_with_status_401(error: type[InvalidProof]) -> None:
    assert issubclass(error, InvalidProof)
    assert issubclass(error, DentGateError)
    assert error.status == 401
    assert error("why").detail == "why"
    assert error().detail == error.title


def test_invalid_proof_base_code() -> None:
    assert InvalidProof.code == "invalid-proof"
    assert InvalidProof.status == 401
