"""Upload throughput of a 256 MiB design: DentGate against OpenSSH sftp and nginx (WebDAV PUT over TLS 1.3).

Everything runs on this machine, on loopback, inside one temporary folder removed at the end, and every
destination is on that folder's file system, so the four contenders write to the same disk:

- **sftp**: OpenSSH's `sftp` client puts the design to a throw-away `sshd` on a high port (its own host and
  user keys, `internal-sftp`). Timed from the command's start to its exit, so the SSH handshake is included
  (the table shows it on its own too).
- **nginx**: `curl -T` PUTs the design to nginx's dav module over TLS 1.3 (the body goes to a temporary file,
  then renamed into place: nginx's usual upload path).
- **DentGate, pre-encrypted**: the technician client's own resumable PATCH loop (`clients.uploader`) sends
  the age ciphertext of the design through an nginx TLS 1.3 terminator in front of a real `dentgate serve`
  (the deployment of `deploy/compose.yaml`). Timed from the upload's POST to the verified, signed receipt:
  the device-signed manifest is checked, every request is authenticated (DPoP), the bytes are staged and
  fsynced, then hashed and committed, and the audit chain records it all.
- **DentGate, encrypt and upload**: the same, but the clock starts at the plaintext bundle on disk, which the
  client seals with age to the station and the archive first, hashing both sides (`clients.sealing`, as
  `dentgate tech upload` does; its mesh checks are left out, since the bench's plaintext is random bytes).

The contenders run in rounds (default 3), each round all four one after the other, so a slow moment of the
machine hits them alike; the table reports each one's median. Destination files are removed after each run.
The script installs Debian's `openssh-server` and `nginx-light` with apt-get when they are missing.

Targets (2-core machine): DentGate pre-encrypted ≥ 2 × sftp and ≥ 0.8 × nginx.

    python bench/upload_throughput.py                # 256 MiB, 3 rounds
    python bench/upload_throughput.py --size-mib 64 --rounds 1   # a quick run
    python bench/upload_throughput.py --json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyrage
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from harness import MIB, free_port, gateway_process, print_result, say
from upload_memory import DESIGN_FILE, RandomBundle, content_size_for, prepare_data_dir, signed_manifest

from clients import uploader
from clients.api import GatewayClient
from clients.demo import DemoLab, prepare_lab
from clients.identities import StationIdentity
from clients.sealing import seal_stream
from clients.uploader import send_ciphertext
from gateway.transfer.custody import SignedReceipt, verify_receipt

SSHD = Path("/usr/sbin/sshd")
CONTENDERS = ("sftp", "nginx", "sink", "dentgate", "dentgate_seal")
STARTUP_SECONDS = 15
PACKAGES = {"sshd": "openssh-server", "nginx": "nginx-light", "sftp": "openssh-client", "curl": "curl"}


# --- the tools ----------------------------------------------------------------------------------------------------


def ensure_tools() -> None:
    """Install Debian's openssh-server, nginx-light (it has the dav module), openssh-client and curl if missing."""
    missing = [
        package for tool, package in PACKAGES.items() if not (shutil.which(tool) or (tool == "sshd" and SSHD.exists()))
    ]
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise SystemExit(f"missing {', '.join(missing)} and no apt-get to install them")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    say(f"Installing {', '.join(missing)} with apt-get")
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    subprocess.run(install, check=True, env=environment)  # noqa: S603 (fixed package names)


def wait_for_port(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} within {STARTUP_SECONDS} s")


@contextlib.contextmanager
def running(command: list[str], port: int, name: str, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output)  # noqa: S603 (our own arguments)
    try:
        wait_for_port(port, process, name)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throw-away P-256 certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    key_file.chmod(0o600)
    return cert_file, key_file


NGINX_CONF = """\
{user}worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  ssl_protocols TLSv1.3;
  ssl_certificate {cert};
  ssl_certificate_key {key};
  client_max_body_size 0;
  # the plain upload server: WebDAV PUT
  server {{
    listen 127.0.0.1:{dav_port} ssl;
    location / {{ root {work}/nginx-dav; dav_methods PUT DELETE; create_full_put_path on; }}
  }}
  # the TLS terminator in front of the gateway, as deploy/nginx/ configures it, and in front of the sink
  upstream gateway {{ server 127.0.0.1:{gateway_port}; keepalive 16; }}
  upstream sink {{ server 127.0.0.1:{sink_port}; keepalive 16; }}
  map $server_port $backend {{ {proxy_port} gateway; default sink; }}
  server {{
    listen 127.0.0.1:{proxy_port} ssl;
    listen 127.0.0.1:{sink_proxy_port} ssl;
    location / {{
      proxy_pass http://$backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 300s;
    }}
  }}
}}
"""

SSHD_CONF = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {work}/ssh_host_key
AuthorizedKeysFile {work}/authorized_keys
PidFile {work}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""


SINK_APP = """\
async def app(scope, receive, send):
    \"\"\"Reads the request body to its end and forgets it: the Python HTTP stack doing no work at all.\"\"\"
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""


@dataclass(frozen=True)
class Servers:
    sftp_port: int
    dav_port: int
    proxy_port: int
    sink_proxy_port: int
    cert: Path


@contextlib.contextmanager
def servers(work: Path, gateway_port: int) -> Iterator[Servers]:
    """sshd and nginx (dav server and gateway TLS terminator) on free loopback ports, stopped on the way out."""
    cert, key = self_signed(work)
    for folder in ("nginx-body", "nginx-proxy", "nginx-dav", "sftp-in"):
        (work / folder).mkdir()
    dav_port, proxy_port, sftp_port, sink_port, sink_proxy_port = (free_port() for _ in range(5))
    user = "user root;\n" if os.geteuid() == 0 else ""  # the worker writes into our private temporary folder
    config = work / "nginx.conf"
    config.write_text(NGINX_CONF.format(user=user, work=work, cert=cert, key=key, dav_port=dav_port,
                                        gateway_port=gateway_port, proxy_port=proxy_port, sink_port=sink_port,
                                        sink_proxy_port=sink_proxy_port))  # fmt: skip
    (work / "bench_sink.py").write_text(SINK_APP)
    for name in ("ssh_host_key", "ssh_user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)  # noqa: S603, S607
    shutil.copy(work / "ssh_user_key.pub", work / "authorized_keys")
    (work / "sshd_config").write_text(SSHD_CONF.format(port=sftp_port, work=work))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    nginx = ["nginx", "-p", str(work), "-c", str(config), "-g", "daemon off;"]
    sshd = [str(SSHD), "-D", "-e", "-f", str(work / "sshd_config")]
    sink = [sys.executable, "-m", "uvicorn", "bench_sink:app", "--app-dir", str(work), "--port", str(sink_port),
            "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]  # fmt: skip
    with (
        running(nginx, proxy_port, "nginx", work / "nginx.log"),
        running(sshd, sftp_port, "sshd", work / "sshd.log"),
        running(sink, sink_port, "the uvicorn sink", work / "sink.log"),
    ):
        yield Servers(sftp_port, dav_port, proxy_port, sink_proxy_port, cert)


# --- the contenders -------------------------------------------------------------------------------------------------


def sftp_command(work: Path, port: int, batch: str) -> float:
    """Run `sftp` with `batch` as its batch file; seconds from start to exit."""
    batch_file = work / "sftp-batch"
    batch_file.write_text(batch)
    command = ["sftp", "-q", "-b", str(batch_file), "-i", str(work / "ssh_user_key"), "-P", str(port),
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               f"{os.environ.get('USER') or 'root'}@127.0.0.1"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    return time.perf_counter() - started


def sftp_put(work: Path, port: int, design: Path) -> float:
    target = work / "sftp-in" / "design.age"
    seconds = sftp_command(work, port, f"put {design} {target}\n")
    check_copy(target, design)
    return seconds


def nginx_put(work: Path, servers: Servers, design: Path) -> float:
    target = work / "nginx-dav" / "design.age"
    command = ["curl", "--silent", "--show-error", "--fail", "--tlsv1.3", "--cacert", str(servers.cert),
               "-T", str(design), "-o", "/dev/null", f"https://127.0.0.1:{servers.dav_port}/design.age"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True)  # noqa: S603
    seconds = time.perf_counter() - started
    check_copy(target, design)
    return seconds


def sink_put(servers: Servers, design: Path, tls: ssl.SSLContext) -> float:
    """The design PUT in the uploader's chunk size to the sink behind the same TLS terminator, with the same
    HTTP client: what the Python stack costs before the gateway does any work."""
    url = f"https://127.0.0.1:{servers.sink_proxy_port}/design.age"
    with httpx.Client(transport=httpx.HTTPTransport(verify=tls), timeout=60) as http, design.open("rb") as source:
        started = time.perf_counter()
        while chunk := source.read(uploader.CHUNK_BYTES):
            http.put(url, content=chunk).raise_for_status()
        return time.perf_counter() - started


def check_copy(target: Path, design: Path) -> None:
    """The destination holds the design's size (a short write would flatter the figure); then it goes."""
    size = target.stat().st_size
    target.unlink()
    if size != design.stat().st_size:
        raise RuntimeError(f"{target} has {size} bytes, not {design.stat().st_size}")


@dataclass
class DentGate:
    lab: DemoLab
    client: GatewayClient  # the technician, through the TLS terminator
    recipients: list[str]
    work: Path

    def upload_sealed(self, design: Path, sealed, bundle) -> float:  # type: ignore[no-untyped-def]
        """POST the signed manifest, PATCH the ciphertext, verify the receipt; seconds."""
        started = time.perf_counter()
        self._send(design, sealed, bundle)
        return time.perf_counter() - started

    def seal_and_upload(self, plaintext: Path, bundle) -> float:  # type: ignore[no-untyped-def]
        """Seal the plaintext bundle on disk to the station and the archive, then upload it; seconds for both."""
        design = self.work / "sealed-now.age"
        started = time.perf_counter()
        with plaintext.open("rb") as source, design.open("wb") as out:
            sealed = seal_stream(source, out, self.recipients)
        self._send(design, sealed, bundle)
        seconds = time.perf_counter() - started
        design.unlink()
        return seconds

    def _send(self, design: Path, sealed, bundle) -> None:  # type: ignore[no-untyped-def]
        manifest = signed_manifest(self.lab, self.recipients, sealed, bundle)
        created = self.client.post("/api/v1/uploads", {"signed_manifest": manifest})
        with design.open("rb") as ciphertext:
            result = send_ciphertext(self.client, created["upload_id"], ciphertext, sealed.ciphertext_size, nothing)
        receipt = verify_receipt(SignedReceipt.model_validate_json(json.dumps(result["receipt"])), self.lab.gateway_key)
        if receipt.ciphertext_sha256 != sealed.ciphertext_sha256:
            raise RuntimeError("the receipt names other bytes than the ones sent")


def nothing(_done: int, _total: int) -> None:
    """No progress output while timing."""


@contextlib.contextmanager
def profiled(pid: int, summary: Path | None) -> Iterator[None]:
    """py-spy samples the gateway while the body runs (the thread holding the GIL); its hottest functions,
    by own and by total time, are written to `summary`."""
    if summary is None:
        yield
        return
    if not shutil.which("py-spy"):
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    raw = summary.with_suffix(".collapsed")
    # --gil: only the thread holding the interpreter lock is sampled, so the shares are of Python's own work
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--gil", "--format", "raw", "--output", str(raw)]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        time.sleep(1)  # py-spy attaches
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(timeout=30)
    summary.write_text(summarise_stacks(raw.read_text()))
    say(f"Profile summary in {summary}, raw stacks in {raw}")


def summarise_stacks(collapsed: str, top: int = 25) -> str:
    """Own and total share of the samples per function, from py-spy's collapsed stacks ("a;b;c count")."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [frame.strip() for frame in stack.split(";")]
        weight = int(count)
        samples += weight
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    lines = [f"{samples} samples"]
    for title, counter in (("own time", own), ("total time (the function and what it calls)", total)):
        lines += ["", f"## {title}"]
        lines += [f"{count / samples:6.1%}  {frame}" for frame, count in counter.most_common(top)]
    return "\n".join(lines) + "\n"


# --- the run -------------------------------------------------------------------------------------------------------


def megabytes_per_second(size: int, seconds: list[float]) -> float:
    return size / statistics.median(seconds) / 1e6


def run(size_mib: int, rounds: int, work: Path, only: list[str], profile: Path | None) -> dict[str, object]:
    ensure_tools()
    content_size = content_size_for(size_mib * MIB)
    lab_id, secret = prepare_data_dir(work / "gateway-data")
    with gateway_process(work / "gateway-data", work, work / "gateway.log") as (server, url):
        gateway_port = int(url.rsplit(":", 1)[1])
        with servers(work, gateway_port) as running_servers:
            station = StationIdentity(Ed25519PrivateKey.generate(), pyrage.x25519.Identity.generate())
            say("Setting up the lab through the API")
            lab = prepare_lab(url, lab_id, secret, work, station, say=lambda _: None)
            recipients = [station.age_recipient, lab.technician.get("/api/v1/lab/recipients")["archive_recipient"]]
            tls = ssl.create_default_context(cafile=str(running_servers.cert))
            tls.minimum_version = ssl.TLSVersion.TLSv1_3
            through_tls = GatewayClient(f"https://127.0.0.1:{running_servers.proxy_port}", lab.technician.key,
                                        lab.technician.token, transport=httpx.HTTPTransport(verify=tls))  # fmt: skip
            through_tls.get("/api/v1/me")
            dentgate = DentGate(lab, through_tls, recipients, work)

            say(f"Writing {content_size / MIB:.1f} MiB of random plaintext (a one-file tar) and sealing it once")
            plaintext, design = work / "design.tar", work / "design.age"
            bundle = RandomBundle(DESIGN_FILE, content_size)
            with plaintext.open("wb") as out:
                shutil.copyfileobj(bundle, out, MIB)  # type: ignore[misc]
            with plaintext.open("rb") as source, design.open("wb") as out:
                sealed = seal_stream(source, out, recipients)
            size = sealed.ciphertext_size
            handshake = sftp_command(work, running_servers.sftp_port, "pwd\n")
            contenders: dict[str, Callable[[], float]] = {
                "sftp": lambda: sftp_put(work, running_servers.sftp_port, design),
                "nginx": lambda: nginx_put(work, running_servers, design),
                "sink": lambda: sink_put(running_servers, design, tls),
                "dentgate": lambda: dentgate.upload_sealed(design, sealed, bundle),
                "dentgate_seal": lambda: dentgate.seal_and_upload(plaintext, bundle),
            }
            contenders = {name: contender for name, contender in contenders.items() if not only or name in only}
            times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
            gateway_cpu: list[float] = []
            with profiled(server.pid, profile):
                for number in range(1, rounds + 1):
                    for name, contender in contenders.items():
                        cpu_before = sum(server.cpu_times()[:2])
                        seconds = contender()
                        cpu = sum(server.cpu_times()[:2]) - cpu_before
                        times[name].append(seconds)
                        if name.startswith("dentgate"):
                            gateway_cpu.append(cpu)
                        say(f"  round {number}: {name:<14} {size / seconds / 1e6:7.1f} MB/s ({seconds:.2f} s; "
                            f"gateway CPU {cpu:.2f} s)")  # fmt: skip
    rates = {name: megabytes_per_second(size, seconds) if seconds else float("nan") for name, seconds in times.items()}
    return {
        "design (ciphertext)": f"{size} bytes ({size / MIB:.1f} MiB)",
        "rounds": rounds,
        "sftp (OpenSSH, handshake included)": f"{rates['sftp']:.0f} MB/s",
        "sftp handshake alone": f"{handshake:.2f} s",
        "nginx dav PUT, TLS 1.3 (curl)": f"{rates['nginx']:.0f} MB/s",
        "Python HTTP stack alone (uvicorn sink behind the TLS terminator)": f"{rates['sink']:.0f} MB/s",
        "DentGate pre-encrypted, TLS 1.3": f"{rates['dentgate']:.0f} MB/s",
        "DentGate encrypt and upload, TLS 1.3": f"{rates['dentgate_seal']:.0f} MB/s",
        "gateway CPU per DentGate upload (user + system, median)": f"{statistics.median(gateway_cpu):.2f} s"
        if gateway_cpu
        else "-",
        "DentGate / sftp (target ≥ 2)": f"{rates['dentgate'] / rates['sftp']:.2f}",
        "DentGate / nginx (target ≥ 0.8)": f"{rates['dentgate'] / rates['nginx']:.2f}",
        "all runs, seconds": json.dumps({name: [round(s, 3) for s in seconds] for name, seconds in times.items()}),
        "targets met": rates["dentgate"] >= 2 * rates["sftp"] and rates["dentgate"] >= 0.8 * rates["nginx"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="ciphertext budget in MiB (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all four contenders (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--only", action="append", choices=CONTENDERS, help="run only this contender (repeatable)")
    parser.add_argument("--profile", type=Path, help="sample the gateway with py-spy into this file (a summary)")
    arguments = parser.parse_args(argv)
    if arguments.size_mib < 1 or arguments.rounds < 1:
        parser.error("--size-mib and --rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="dentgate-throughput-") as folder:
        result = run(arguments.size_mib, arguments.rounds, Path(folder), arguments.only or [], arguments.profile)
    print_result(result, arguments.json)
    return 0 if result["targets met"] else 1


if __name__ == "__main__":
    sys.exit(main())
