"""The milling station agent: claim a job, download it, verify the whole custody chain, decrypt, import, acknowledge.

Nothing reaches the CAM software's import folder until every check has passed, in this order:

1. the gateway's receipt signature, against the gateway key pinned at enrolment (never the one a job carries);
2. the technician device's manifest signature, against the device key given with the job;
3. the links between them (`verify_custody`: manifest hash, device signature, design, lab, ciphertext);
4. the downloaded ciphertext's SHA-256 and size, against the manifest;
5. age decryption and unpacking into a private folder (age authenticates every byte);
6. each file's name, size and SHA-256, against the manifest;
7. each file's type from its content, and every mesh parsed and checked (size cap first).

Then each file is written atomically (a hidden temporary name in the import folder, fsync, rename) as
`<case reference>_<name>`, the acknowledgement is signed and sent. A failed check rejects the job with
its reason and writes nothing. A job delivered again (an expired lease) whose files are already in the
import folder with the same content is acknowledged without a second copy.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from pydantic import ValidationError

from clients.api import ApiError, GatewayClient, raise_for_problem
from clients.identities import StationIdentity
from clients.sealing import CHUNK_BYTES, BundleRefused, SealBroken, open_bundle
from gateway.errors import DentGateError
from gateway.identity.proofs import make_proof
from gateway.transfer.custody import (
    AcknowledgedFile,
    Acknowledgement,
    CustodyBroken,
    CustodySignatureInvalid,
    SignedReceipt,
    receipt_sha256,
    sign_acknowledgement,
    verify_custody,
    verify_receipt,
)
from gateway.transfer.formats import SNIFF_BYTES, UnsupportedFile, classify, sanitise_filename
from gateway.transfer.manifest import (
    Manifest,
    ManifestSignatureInvalid,
    SignedManifest,
    check_file_name,
    parse_signed_manifest,
    verify_manifest,
)
from gateway.transfer.mesh import InvalidMesh, MeshLimits, validate_mesh

log = logging.getLogger("dentgate.station")

GATEWAY_KEY_FILE = "gateway-key.json"
STATION_FILE = "station.json"
DOWNLOAD_RETRIES = 3
MAX_BACKOFF_SECONDS = 60.0
MAX_REASON_CHARS = 500
SCRATCH_PREFIX = "job-"  # a job's decrypted files, in the work folder, removed when the job ends
PARTIAL_PREFIX, PARTIAL_SUFFIX = ".dentgate-", ".part"  # a file being written into the import folder
_MAX_DUPLICATES = 1000
_MAX_PREFIX_BYTES = 64
_MAX_NAME_BYTES = 240


class StationAgentError(Exception):
    """Base of the agent's own errors."""


class GatewayKeyMismatch(StationAgentError):
    """The gateway now publishes another receipt key than the one pinned at enrolment."""


class NotEnrolled(StationAgentError):
    """This machine has no pinned gateway key or station record: run `dentgate station enroll` first."""


class VerificationFailed(StationAgentError):
    """A check failed: the job is rejected with `reason` and nothing is written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """What one job came to: files in the import folder and an acknowledgement, or a rejection."""

    design_id: str
    job_id: str
    written: list[Path] = field(default_factory=list)
    acknowledged: bool = False
    rejected_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "design_id": self.design_id,
            "job_id": self.job_id,
            "written": [str(path) for path in self.written],
            "acknowledged": self.acknowledged,
            "rejected_reason": self.rejected_reason,
        }


# --- enrolment records ---------------------------------------------------------------------------------------------


def _decode_key(text: Any) -> bytes:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise StationAgentError("the gateway key is not base64") from None
    if len(raw) != 32:
        raise StationAgentError("the gateway key is not a 32-byte Ed25519 public key")
    return raw


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def pin_gateway_key(home: Path, gateway_url: str, transport: httpx.BaseTransport | None = None) -> bytes:
    """Fetch the gateway's receipt key and pin it in `home/gateway-key.json`; the raw 32-byte key.

    GatewayKeyMismatch, changing nothing, if another key is pinned already.
    """
    url = gateway_url.rstrip("/") + "/api/v1/gateway-key"
    with httpx.Client(timeout=30.0, transport=transport) as http:
        response = http.get(url)
    if response.status_code != 200:
        raise StationAgentError(f"the gateway key could not be fetched (HTTP {response.status_code})")
    body = response.json()
    raw = _decode_key(body.get("public_key"))
    path = home / GATEWAY_KEY_FILE
    if path.exists():
        if load_pinned_gateway_key(home) != raw:
            raise GatewayKeyMismatch(
                f"{path} pins another gateway key than {gateway_url} publishes now; refusing to replace it"
            )
        return raw
    _write_json(
        path,
        {"gateway": gateway_url, "key_id": str(body.get("key_id", "")), "public_key": base64.b64encode(raw).decode()},
    )
    return raw


def load_pinned_gateway_key(home: Path) -> bytes:
    path = home / GATEWAY_KEY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotEnrolled(f"no pinned gateway key at {path}; run `dentgate station enroll`") from None
    return _decode_key(data.get("public_key"))


@dataclass(frozen=True)
class StationRecord:
    gateway: str
    station_id: str


def save_station_record(home: Path, gateway_url: str, station_id: str) -> None:
    _write_json(home / STATION_FILE, {"gateway": gateway_url, "station_id": str(uuid.UUID(str(station_id)))})


def load_station_record(home: Path) -> StationRecord:
    path = home / STATION_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotEnrolled(f"no station record at {path}; run `dentgate station enroll`") from None
    return StationRecord(gateway=str(data["gateway"]), station_id=str(data["station_id"]))


# --- HTTP ----------------------------------------------------------------------------------------------------------


@dataclass
class StationClient(GatewayClient):
    """A GatewayClient whose proofs use `clock` (default: this machine's time), with a streamed, ranged download."""

    clock: Callable[[], datetime] | None = None

    def _headers(self, method: str, url: str, authenticated: bool = True) -> dict[str, str]:
        token = self.token if authenticated else None
        now = self.clock() if self.clock is not None else None
        headers = {"DPoP": make_proof(self.key, method, url, access_token=token, now=now)}
        if token:
            headers["Authorization"] = f"DPoP {token}"
        return headers

    def download(self, path: str, out: BinaryIO, start: int, limit: int) -> None:
        """Append the resource from byte `start` to `out` (at offset `start`); at most `limit` bytes in all."""
        url = self._url(path)
        headers = self._headers("GET", url)
        if start:
            headers["Range"] = f"bytes={start}-"
        with self._client().stream("GET", url, headers=headers, timeout=self.timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_problem(response)
            if response.status_code != 206:
                start = 0  # the whole resource came back (a range was not honoured): start over
            out.seek(start)
            out.truncate()
            written = start
            for chunk in response.iter_bytes():  # no re-chunking: a drop keeps all that arrived
                written += len(chunk)
                if written > limit:
                    raise VerificationFailed(f"the ciphertext is longer than the {limit} bytes the manifest names")
                out.write(chunk)


# --- the agent -----------------------------------------------------------------------------------------------------


def _sha256_of(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while data := handle.read(CHUNK_BYTES):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


def _utf8_prefix(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def _safe_prefix(case_reference: str) -> str:
    """The case reference as a file name prefix: one component, no '..', no separators or controls."""
    flattened = "".join("_" if char in "/\\:." else char for char in case_reference)
    return _utf8_prefix(sanitise_filename(flattened), _MAX_PREFIX_BYTES).rstrip(" ")


def _candidate_names(prefix: str, name: str) -> list[str]:
    """`<prefix>_<name>`, then `<prefix>_<stem>_<n>.<ext>` for n = 2, 3 …, each short enough for any disk."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    suffix = f".{extension}" if dot else ""
    room = _MAX_NAME_BYTES - len(f"{prefix}_".encode()) - len(suffix.encode()) - len(f"_{_MAX_DUPLICATES}")
    stem = _utf8_prefix(stem, room).rstrip(" .") or "design"
    return [f"{prefix}_{stem}{suffix}"] + [f"{prefix}_{stem}_{n}{suffix}" for n in range(2, _MAX_DUPLICATES)]


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class StationAgent:
    """Pulls this station's jobs from the gateway and drops verified designs into `import_dir`."""

    def __init__(
        self,
        gateway_url: str,
        identity: StationIdentity,
        station_id: str | uuid.UUID,
        import_dir: Path,
        pinned_gateway_key: bytes,
        work_dir: Path,
        transport: httpx.BaseTransport | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        mesh_limits: MeshLimits | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.gateway_url = gateway_url
        self.identity = identity
        self.station_id = uuid.UUID(str(station_id))
        self.import_dir = Path(import_dir)
        self.pinned_gateway_key = bytes(pinned_gateway_key)
        self.work_dir = Path(work_dir)
        self.mesh_limits = mesh_limits or MeshLimits()
        self.clock = clock
        self.client = StationClient(gateway_url, identity.signing_key, transport=transport, clock=clock)
        self._sleep = sleep
        check_file_name(self.import_dir.name)  # it goes into the signed acknowledgement

    # --- session -----------------------------------------------------------------------------------------------

    def session(self) -> str:
        """Log in as the station (a DPoP proof with its key, no password); the token is kept on the client."""
        self.client.token = None
        result = self.client.post("/api/v1/stations/session", authenticated=False)
        self.client.token = str(result["token"])
        return self.client.token

    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def sweep_leftovers(self) -> int:
        """Delete what a killed run left behind: decrypted scratch folders and half-written import files.

        Call it when the agent starts (one agent per station and folder); the job itself comes back
        after its lease and is delivered whole. Returns how many leftovers were removed.
        """
        removed = 0
        if self.work_dir.is_dir():
            for scratch in self.work_dir.glob(f"{SCRATCH_PREFIX}*"):
                if scratch.is_dir() and not scratch.is_symlink():
                    shutil.rmtree(scratch)
                else:
                    scratch.unlink()
                removed += 1
        if self.import_dir.is_dir():
            for partial in self.import_dir.glob(f"{PARTIAL_PREFIX}*{PARTIAL_SUFFIX}"):
                partial.unlink()
                removed += 1
        if removed:
            log.info("removed %d leftovers of an interrupted delivery", removed)
        return removed

    # --- one job -----------------------------------------------------------------------------------------------

    def run_once(self, wait: float = 0) -> Delivery | None:
        """Claim, verify, import and acknowledge the next job (waiting up to `wait` s); None when there is none."""
        if self.client.token is None:
            self.session()
        self.client.timeout = max(30.0, wait + 15.0)
        job = self.client.get(f"/api/v1/station/jobs/next?wait={wait:g}")
        if job is None:
            return None
        job_id, design_id = str(job["job_id"]), str(job["design_id"])
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.import_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=self.work_dir))
        try:
            try:
                manifest = self._verify_custody(job)
                ciphertext = scratch / "design.age"
                self._download(job_id, ciphertext, manifest)
                files = self._open(ciphertext, scratch, manifest)
            except VerificationFailed as failure:
                return self._reject(job_id, design_id, failure.reason)
            written = self._import(manifest, files)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self._acknowledge(job, manifest, written)

    def _verify_custody(self, job: dict[str, Any]) -> Manifest:
        try:
            signed_receipt = SignedReceipt.model_validate_json(json.dumps(job["signed_receipt"]))
        except (ValidationError, KeyError, TypeError):
            raise VerificationFailed("the gateway receipt is not a valid signed receipt") from None
        try:
            verify_receipt(signed_receipt, self.pinned_gateway_key)
        except CustodySignatureInvalid:
            raise VerificationFailed("the receipt signature does not verify with the pinned gateway key") from None
        try:
            signed_manifest: SignedManifest = parse_signed_manifest(json.dumps(job["signed_manifest"]).encode())
        except (DentGateError, KeyError, TypeError) as error:
            raise VerificationFailed(f"the manifest is not a valid signed manifest: {error}") from None
        try:
            device_key = base64.b64decode(str(job["device_public_key"]), validate=True)
            verify_manifest(signed_manifest, device_key)
        except (ManifestSignatureInvalid, binascii.Error, ValueError, KeyError):
            raise VerificationFailed(
                "the manifest signature does not verify with the technician's device key"
            ) from None
        try:
            chain = verify_custody(signed_manifest, device_key, signed_receipt, self.pinned_gateway_key)
        except CustodyBroken as error:
            raise VerificationFailed(f"the custody chain is broken at the {error.step}: {error.reason}") from None
        manifest = chain.manifest
        if str(manifest.design_id) != str(job["design_id"]):
            raise VerificationFailed("the job names another design than its manifest")
        if self.station_id not in manifest.target_stations:
            raise VerificationFailed("this station is not a target of the design")
        return manifest

    def _download(self, job_id: str, target: Path, manifest: Manifest) -> None:
        path = f"/api/v1/station/jobs/{job_id}/ciphertext"
        failures = 0
        with open(target, "w+b") as out:
            while True:
                have = out.seek(0, os.SEEK_END)
                try:
                    self.client.download(path, out, have, manifest.ciphertext_size)
                    break
                except httpx.TransportError as error:
                    failures += 1
                    out.flush()
                    if failures > DOWNLOAD_RETRIES:
                        raise
                    log.warning("download of job %s dropped at %d bytes (%s); resuming", job_id, out.tell(), error)
            out.flush()
            os.fsync(out.fileno())
        sha256, size = _sha256_of(target)
        if size != manifest.ciphertext_size:
            raise VerificationFailed(f"the ciphertext is {size} bytes; the manifest names {manifest.ciphertext_size}")
        if sha256 != manifest.ciphertext_sha256:
            raise VerificationFailed("the ciphertext's SHA-256 differs from the one the manifest names")

    def _open(self, ciphertext: Path, scratch: Path, manifest: Manifest) -> dict[str, Path]:
        plain = scratch / "plain"
        plain.mkdir(mode=0o700)
        try:
            with open(ciphertext, "rb") as source:
                bundle = open_bundle(source, plain, self.identity.age_identity, work_dir=scratch)
        except SealBroken as error:
            raise VerificationFailed(str(error)) from None
        except BundleRefused as error:
            raise VerificationFailed(f"the bundle is refused: {error}") from None
        expected = {file.name: file for file in manifest.files}
        received = {entry.name: entry for entry in bundle.files}
        if received.keys() != expected.keys():
            extra, missing = sorted(received.keys() - expected.keys()), sorted(expected.keys() - received.keys())
            raise VerificationFailed(f"the bundle's files differ from the manifest (extra {extra}, missing {missing})")
        files: dict[str, Path] = {}
        for name, announced in expected.items():
            entry, path = received[name], plain / name
            if entry.size != announced.size:
                raise VerificationFailed(f"{name!r} is {entry.size} bytes; the manifest names {announced.size}")
            if entry.sha256 != announced.sha256:
                raise VerificationFailed(f"{name!r} has another SHA-256 than the manifest names")
            self._check_content(name, path, entry.size, announced.media_type)
            files[name] = path
        return files

    def _check_content(self, name: str, path: Path, size: int, media_type: str) -> None:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
        try:
            kind = classify(name, head, size=size)
        except UnsupportedFile as error:
            raise VerificationFailed(f"{name!r}: {error.detail}") from None
        if kind.media_type != media_type:
            raise VerificationFailed(f"{name!r} is {kind.media_type}, but the manifest says {media_type}")
        if not kind.kind.is_mesh:
            return
        if size > self.mesh_limits.max_file_bytes:
            raise VerificationFailed(
                f"{name!r} is {size} bytes; meshes are limited to {self.mesh_limits.max_file_bytes}"
            )
        try:
            validate_mesh(path, kind, self.mesh_limits)
        except InvalidMesh as error:
            raise VerificationFailed(f"{name!r} is not a valid mesh: {error.detail}") from None

    # --- writing -----------------------------------------------------------------------------------------------

    def _import(self, manifest: Manifest, files: dict[str, Path]) -> list[Path]:
        """Place every file; an I/O failure removes what this call created and is raised (no acknowledgement)."""
        prefix = _safe_prefix(manifest.case_reference)
        created: list[Path] = []
        placed: list[Path] = []
        try:
            for announced in manifest.files:
                target, fresh = self._place(prefix, announced.name, announced.sha256, files[announced.name])
                placed.append(target)
                if fresh:
                    created.append(target)
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise
        _fsync_directory(self.import_dir)
        return placed

    def _place(self, prefix: str, name: str, sha256: str, source: Path) -> tuple[Path, bool]:
        root = self.import_dir.resolve()
        for candidate in _candidate_names(prefix, name):
            check_file_name(candidate)
            target = self.import_dir / candidate
            if target.resolve().parent != root:
                raise StationAgentError(f"{candidate!r} would leave the import folder")
            if target.is_symlink() or target.exists():
                if target.is_file() and not target.is_symlink() and _sha256_of(target)[0] == sha256:
                    return target, False  # delivered before (a redelivered job): no second copy
                continue
            self._write_atomically(source, target)
            return target, True
        raise StationAgentError(f"too many files named like {prefix}_{name} in {self.import_dir}")

    def _write_atomically(self, source: Path, target: Path) -> None:
        temporary = self.import_dir / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            with os.fdopen(descriptor, "wb") as out, open(source, "rb") as data:
                shutil.copyfileobj(data, out, CHUNK_BYTES)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    # --- answering the gateway ---------------------------------------------------------------------------------

    def _acknowledge(self, job: dict[str, Any], manifest: Manifest, written: list[Path]) -> Delivery:
        receipt = SignedReceipt.model_validate_json(json.dumps(job["signed_receipt"])).receipt
        acknowledgement = Acknowledgement(
            design_id=manifest.design_id,
            station_id=self.station_id,
            receipt_sha256=receipt_sha256(receipt),
            files=[AcknowledgedFile(name=file.name, sha256=file.sha256) for file in manifest.files],
            written_at=self._now(),
            import_name=self.import_dir.name,
        )
        signed = sign_acknowledgement(acknowledgement, self.identity.sign)
        job_id, design_id = str(job["job_id"]), str(job["design_id"])
        try:
            self.client.post(
                f"/api/v1/station/jobs/{job_id}/ack", {"signed_acknowledgement": signed.model_dump(mode="json")}
            )
        except ApiError as error:
            log.error("job %s: files written but the acknowledgement was refused: %s", job_id, error)
            return Delivery(design_id, job_id, written, acknowledged=False)
        log.info("job %s: design %s imported as %s", job_id, design_id, ", ".join(p.name for p in written))
        return Delivery(design_id, job_id, written, acknowledged=True)

    def _reject(self, job_id: str, design_id: str, reason: str) -> Delivery:
        log.warning("job %s: design %s rejected: %s", job_id, design_id, reason)
        try:
            self.client.post(f"/api/v1/station/jobs/{job_id}/reject", {"reason": reason[:MAX_REASON_CHARS]})
        except ApiError as error:
            log.error("job %s: the rejection was not accepted: %s", job_id, error)
        return Delivery(design_id, job_id, [], acknowledged=False, rejected_reason=reason)

    # --- the loop ----------------------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event, wait: float = 25) -> None:
        """`run_once` until `stop` is set; back off 1, 2, 4 … 60 s on connection errors, log in again on 401."""
        delay = 1.0
        relogged = False
        self.sweep_leftovers()
        while not stop.is_set():
            try:
                if self.client.token is None:
                    self.session()
                self.run_once(wait)
                delay, relogged = 1.0, False
                continue
            except ApiError as error:
                if error.status == 401 and not relogged:
                    log.info("the station session ended (%s); logging in again", error.code)
                    self.client.token, relogged = None, True
                    continue
                if error.status == 401:
                    self.client.token = None
                log.warning("the gateway refused a request: %s; retrying in %.0f s", error, delay)
            except (httpx.TransportError, OSError) as error:
                log.warning("cannot reach the gateway (%s); retrying in %.0f s", error, delay)
            except StationAgentError as error:
                log.error("the job could not be imported (%s); retrying in %.0f s", error, delay)
            if self._sleep is not None:
                self._sleep(delay)
            elif stop.wait(delay):
                break
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
