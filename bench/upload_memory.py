"""Gateway memory while it receives one large design: idle RSS against peak RSS during a resumable upload.

Everything runs on this machine, on loopback, in a temporary folder that is removed at the end:

1. a data directory is migrated and a lab with its first manager is created in it (as `dentgate demo` does);
2. a real `dentgate serve` process is started on it (embedded SQLite, local storage), alone in its process,
   so that its resident set can be measured without the client's;
3. manager, technician (password + TOTP), approved device, approved station and archive key are set up
   through the HTTP API, with the demo's helpers;
4. the design's plaintext, a one-file PAX tar of random bytes, is generated and sealed with age to the
   station and the archive in one streamed pass (the gateway only ever sees ciphertext, so nothing needs
   to be a valid mesh), into a temporary file whose SHA-256 and size go into the manifest the device signs;
5. the gateway's idle RSS is taken, then it is sampled every 20 ms while the ciphertext is sent with the
   technician client's own chunked PATCH loop, up to the signed receipt, which is verified.

Target: peak RSS ≤ idle RSS + 64 MiB. The exit status is 0 when the target holds, 1 when it does not.

    python bench/upload_memory.py                 # 1 GiB (the policy's largest design)
    python bench/upload_memory.py --size-mib 64   # a quick run
    python bench/upload_memory.py --json          # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import (
    MIB,
    RssSampler,
    Sender,
    design_manifest,
    gateway_process,
    kernel_peak,
    reset_kernel_peak,
    sample_for,
    say,
    tree_rss,
)

from clients.demo import DemoLab, create_lab, prepare_lab
from clients.identities import StationIdentity
from clients.sealing import PieceReader, Sealed, seal_stream
from clients.uploader import send_ciphertext
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.policy import default_policy
from gateway.settings import Settings
from gateway.transfer.custody import SignedReceipt, verify_receipt

TARGET_GROWTH = 64 * MIB
IDLE_WINDOW_SECONDS = 1.0

AGE_CHUNK = 64 * 1024  # age encrypts the payload in 64 KiB chunks…
AGE_TAG = 16  # …each followed by a 16-byte Poly1305 tag
AGE_HEADER_ALLOWANCE = 4096  # header + 16-byte nonce: about 0.3-0.5 KiB with two X25519 stanzas and rage's grease
RANDOM_PIECE = 64 * 1024
DESIGN_FILE = "bench-random.bin"


# --- the design: random bytes in a one-file tar, sealed with age ---------------------------------------------


def content_size_for(ciphertext_budget: int) -> int:
    """The largest file (a multiple of 512) whose one-file tar, sealed with age, stays within the budget."""
    plaintext_budget = ciphertext_budget - AGE_HEADER_ALLOWANCE - AGE_TAG * -(-ciphertext_budget // AGE_CHUNK)
    tar_overhead = tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE  # header, end blocks, padding
    return max(0, (plaintext_budget - tar_overhead) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE)


class RandomBundle(PieceReader):
    """A readable PAX tar of one file of `size` random bytes, generated as it is read, in constant memory.

    The same layout `clients.sealing.BundleReader` writes (mode 0644, mtime 0, no owner, 10240-byte
    records), so a station could open the design; `sha256` is the file's hash once the stream is read.
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._digest = hashlib.sha256()
        super().__init__()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _generate(self) -> Iterator[bytes]:
        info = tarfile.TarInfo(self.name)
        info.size, info.mode, info.mtime, info.uid, info.gid = self.size, 0o644, 0, 0, 0
        info.uname = info.gname = ""
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
        yield header
        remaining = self.size
        while remaining:
            piece = os.urandom(min(RANDOM_PIECE, remaining))
            self._digest.update(piece)
            remaining -= len(piece)
            yield piece
        padding = -self.size % tarfile.BLOCKSIZE
        written = len(header) + self.size + padding + 2 * tarfile.BLOCKSIZE
        yield b"\0" * (padding + 2 * tarfile.BLOCKSIZE + (-written % tarfile.RECORDSIZE))


# --- the gateway process ----------------------------------------------------------------------------------------


def prepare_data_dir(data_dir: Path) -> tuple[uuid.UUID, str]:
    """Migrate the embedded database and create the demo's lab; its id and the manager's activation secret.

    Done in this process before the server starts, so the two never write to the SQLite file at once.
    """
    backends = open_backends(Settings(data_dir=data_dir, host="127.0.0.1"))
    try:
        migrate(backends.engine)
        return create_lab(backends)
    finally:
        backends.close()


# --- the lab and the upload -------------------------------------------------------------------------------------


def seal_random_design(out: Path, content_size: int, recipients: list[str]) -> tuple[Sealed, RandomBundle]:
    """Seal a random one-file bundle to `recipients` into `out`, streamed; what the manifest needs."""
    bundle = RandomBundle(DESIGN_FILE, content_size)
    with out.open("wb") as ciphertext:
        sealed = seal_stream(bundle, ciphertext, recipients)  # type: ignore[arg-type]
    return sealed, bundle


def signed_manifest(lab: DemoLab, recipients: list[str], sealed: Sealed, bundle: RandomBundle) -> dict[str, Any]:
    """The signed manifest of the sealed random bundle, sent by the demo lab's technician to its station."""
    sender = Sender(lab.lab_id, lab.technician_id, lab.device_id, lab.technician.key, lab.station_id, *recipients)
    files = [{"name": bundle.name, "media_type": "application/octet-stream", "size": bundle.size,
              "sha256": bundle.sha256}]  # fmt: skip
    return design_manifest(sender, files, sealed, "BENCH-UPLOAD-MEMORY")


def progress_printer(total: int) -> Callable[[int, int], None]:
    """A progress callback for `send_ciphertext` that reports every 10 %."""
    shown = [-1]

    def report(done: int, _total: int) -> None:
        tenth = done * 10 // total
        if tenth > shown[0]:
            shown[0] = tenth
            say(f"  uploaded {done / MIB:8.1f} MiB ({tenth * 10} %)")

    return report


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    ciphertext_bytes: int
    plaintext_bytes: int
    startup_rss: int
    idle_rss: int
    peak_rss: int
    after_rss: int
    kernel_peak_rss: int | None
    growth: int
    target_growth: int
    target_met: bool
    upload_seconds: float
    megabytes_per_second: float
    peak_at_seconds: float
    last_patch_started_seconds: float
    samples: int
    design_id: str
    receipt_verified: bool

    def table(self) -> str:
        def mib(value: int) -> str:
            return f"{value / MIB:.1f} MiB"

        verdict = "met" if self.target_met else "MISSED"
        kernel = mib(self.kernel_peak_rss) if self.kernel_peak_rss is not None else "not available"
        rows = [
            ("design ciphertext", f"{self.ciphertext_bytes} bytes ({mib(self.ciphertext_bytes)})"),
            ("gateway RSS after start", mib(self.startup_rss)),
            ("gateway RSS idle (before the upload)", mib(self.idle_rss)),
            ("gateway RSS peak (sampled every 20 ms)", mib(self.peak_rss)),
            ("peak - idle", f"{mib(self.growth)} (target ≤ {mib(self.target_growth)}: {verdict})"),
            ("kernel peak RSS during the upload (VmHWM)", kernel),
            ("gateway RSS after the upload", mib(self.after_rss)),
            ("upload time (all PATCHes, commit included)", f"{self.upload_seconds:.1f} s"),
            ("throughput", f"{self.megabytes_per_second:.1f} MB/s"),
            ("peak reached at", f"{self.peak_at_seconds:.1f} s after the upload began"),
            ("last PATCH (last chunk and commit) began at", f"{self.last_patch_started_seconds:.1f} s"),
            ("RSS samples", str(self.samples)),
            ("committed design", f"{self.design_id} (receipt verified: {'yes' if self.receipt_verified else 'no'})"),
        ]  # fmt: skip
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


def run(size_mib: int) -> Result:
    budget = size_mib * MIB
    limit = default_policy().transfer.max_design_bytes
    if budget > limit:
        raise SystemExit(f"--size-mib {size_mib} exceeds the policy's max_design_bytes ({limit} bytes)")
    content_size = content_size_for(budget)
    if content_size <= 0:
        raise SystemExit("--size-mib is too small for a design")

    with tempfile.TemporaryDirectory(prefix="dentgate-bench-") as folder:
        work = Path(folder)
        say(f"Working in {work}")
        lab_id, secret = prepare_data_dir(work / "gateway-data")
        with gateway_process(work / "gateway-data", work, work / "gateway.log") as (server, url):
            startup_rss = tree_rss(server, server.children(recursive=True))
            say(f"Gateway {server.pid} ready at {url}; setting up the lab through the API")
            station = StationIdentity(Ed25519PrivateKey.generate(), pyrage.x25519.Identity.generate())
            lab = prepare_lab(url, lab_id, secret, work, station, say=lambda _: None)
            targets = lab.technician.get("/api/v1/lab/recipients")
            recipients = [station.age_recipient, targets["archive_recipient"]]

            say(f"Sealing {content_size / MIB:.1f} MiB of random bytes to the station and the archive")
            design = work / "design.age"
            sealed, bundle = seal_random_design(design, content_size, recipients)
            if sealed.ciphertext_size > limit:
                raise RuntimeError(f"the ciphertext has {sealed.ciphertext_size} bytes, over the policy's {limit}")
            manifest = signed_manifest(lab, recipients, sealed, bundle)

            lab.technician.get("/api/v1/me")  # warm-up: one authenticated call, then let the process settle
            httpx.get(f"{url}/readyz", timeout=5).raise_for_status()
            time.sleep(IDLE_WINDOW_SECONDS)
            idle_rss = int(statistics.median(sample_for(server, IDLE_WINDOW_SECONDS)))

            say(f"Uploading {sealed.ciphertext_size / MIB:.1f} MiB of ciphertext (idle RSS {idle_rss / MIB:.1f} MiB)")
            kernel_reset = reset_kernel_peak(server.pid)
            report = progress_printer(sealed.ciphertext_size)
            last_patch = [0.0]

            def progress(done: int, total: int) -> None:
                if done < total:
                    last_patch[0] = time.monotonic()
                report(done, total)

            sampler = RssSampler(server)
            sampler.start()
            started = time.monotonic()
            try:
                created = lab.technician.post("/api/v1/uploads", {"signed_manifest": manifest})
                with design.open("rb") as ciphertext:
                    size = sealed.ciphertext_size
                    result = send_ciphertext(lab.technician, created["upload_id"], ciphertext, size, progress)
                finished = time.monotonic()
            finally:
                samples = sampler.stop()
            kernel_peak_rss = kernel_peak(server.pid) if kernel_reset else None
            after_rss = int(statistics.median(sample_for(server, IDLE_WINDOW_SECONDS)))

        receipt = verify_receipt(SignedReceipt.model_validate_json(json.dumps(result["receipt"])), lab.gateway_key)
        if receipt.ciphertext_sha256 != sealed.ciphertext_sha256 or receipt.ciphertext_size != sealed.ciphertext_size:
            raise RuntimeError("the gateway's receipt names other bytes than the ones sent")
        if str(receipt.design_id) != str(result["design_id"]):
            raise RuntimeError("the receipt is for another design than the one committed")

    peak_time, peak_rss = max(samples, key=lambda sample: sample[1])
    seconds = finished - started
    return Result(
        ciphertext_bytes=sealed.ciphertext_size,
        plaintext_bytes=sealed.plaintext_size,
        startup_rss=startup_rss,
        idle_rss=idle_rss,
        peak_rss=peak_rss,
        after_rss=after_rss,
        kernel_peak_rss=kernel_peak_rss,
        growth=peak_rss - idle_rss,
        target_growth=TARGET_GROWTH,
        target_met=peak_rss - idle_rss <= TARGET_GROWTH,
        upload_seconds=seconds,
        megabytes_per_second=sealed.ciphertext_size / seconds / 1e6,
        peak_at_seconds=peak_time - started,
        last_patch_started_seconds=(last_patch[0] or started) - started,
        samples=len(samples),
        design_id=str(result["design_id"]),
        receipt_verified=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="ciphertext budget in MiB (default 1024 = 1 GiB)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    arguments = parser.parse_args(argv)
    if arguments.size_mib < 1:
        parser.error("--size-mib must be at least 1")
    result = run(arguments.size_mib)
    if arguments.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(result.table())
    return 0 if result.target_met else 1


if __name__ == "__main__":
    sys.exit(main())
