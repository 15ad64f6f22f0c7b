"""Done when: two real gateways on one PostgreSQL database and one S3 bucket, configured through `DENTGATE_*`
variables as production is (replica B with two worker processes), behave as one gateway to their users: a job
committed through one reaches a station polling the other within a second (G13), a device revoked through one
is refused by the other (G6), a TOTP code spent through one cannot be replayed through the other, and under
concurrent requests through both each lab keeps one intact, unforked audit chain (G19).

Each test sets up its own lab through an in-process app on the same database, store and key (fast, like
tests/incidents/test_replicas.py), then acts through the replicas with real time and fresh key proofs.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest

from gateway.audit.chain import genesis_hash
from gateway.settings import Settings
from tests.conftest import fresh_postgres_schema, new_bucket
from tests.gateway_fixtures import STRONG_PASSWORD, Clock, Gateway, Person, running_app
from tests.gateway_process import start_gateway, stop_gateway
from tests.transfer.scene import build_scene, patch, sealed_design
from tests.transfer.test_delivery_api import station_session, uploaded
from tests.transfer.test_job_signal import poll_in_background

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.timeout(300)]

# The load balancer's origin, configured on every replica as production configures it: key proofs name it, so one
# proof scheme fits whichever replica a request reaches (the helpers of tests/gateway_fixtures make them for it).
PUBLIC_URL = "http://testserver"
PHASE_ROUTES = {"/api/v1/me", "/api/v1/accounts", "/api/v1/designs", "/api/v1/uploads", "/api/v1/uploads/{upload_id}"}


@dataclass
class Replica:
    """A real `dentgate serve` process, looking to `Person` like tests.gateway_fixtures.Gateway.

    Its clock is real time (the process's own cannot be advanced). Every request carries an `X-Request-ID`
    starting with the replica's name, which the gateway keeps on the audit events the request writes.
    """

    name: str
    process: subprocess.Popen
    url: str
    clock: Clock = field(default_factory=Clock)
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        def tag(request: httpx.Request) -> None:
            request.headers["X-Request-ID"] = f"{self.name}-{uuid.uuid4().hex}"

        self.client = httpx.Client(base_url=self.url, timeout=30, event_hooks={"request": [tag]})


@dataclass
class Deployment:
    setup: Gateway  # an in-process app on the same database, bucket and key, where each test sets its lab up
    a: Replica  # `dentgate serve`
    b: Replica  # `dentgate serve --workers 2`

    def scene(self, lab: str, technician: str = "tanaka") -> dict:
        """A new lab set up like tests/transfer/scene.py: archive key, approved station, technician logged in."""
        self.setup.clock.offset = timedelta()  # new people: no TOTP step of theirs is spent yet
        name = f"{lab} {uuid.uuid4().hex[:6]}"
        manager = Person(self.setup, name, "manager")
        manager.activate(self.setup.init_lab(name, "manager"))
        assert manager.login().status_code == 200
        return build_scene(manager, technician)


def on(replica: Replica, person: Person) -> Person:
    """`person` (same key, same token) calling through `replica`."""
    moved = dataclasses.replace(person, gateway=replica)
    if hasattr(person, "account_id"):
        moved.account_id = person.account_id  # type: ignore[attr-defined]
    return moved


@pytest.fixture(scope="module")
def deployment(postgres_available, moto_endpoint, tmp_path_factory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("scaleout")
    with fresh_postgres_schema() as database_url:
        environment = {
            "DENTGATE_DATABASE_URL": database_url,
            "DENTGATE_DATA_DIR": str(folder / "data"),  # the key file every replica shares
            "DENTGATE_STORAGE_URL": f"s3://{new_bucket(moto_endpoint)}/designs",
            "DENTGATE_S3_ENDPOINT_URL": moto_endpoint,
            "DENTGATE_S3_REGION": "ap-northeast-1",
            "DENTGATE_PUBLIC_URL": PUBLIC_URL,
        }
        settings = Settings(**{name.removeprefix("DENTGATE_").lower(): value for name, value in environment.items()})
        for setup in running_app(settings):  # migrates, and creates the shared key file first
            process_a, url_a = start_gateway(folder, env=environment)
            try:
                process_b, url_b = start_gateway(folder, "--workers", "2", env=environment)
                try:
                    a, b = Replica("replica-a", process_a, url_a), Replica("replica-b", process_b, url_b)
                    yield Deployment(setup, a, b)
                finally:
                    stop_gateway(process_b)
            finally:
                stop_gateway(process_a)


def test_an_upload_committed_through_one_replica_reaches_a_station_polling_another_within_a_second(deployment):
    scene = deployment.scene("Sapporo Dental Lab")
    through_a = {**scene, "technician": on(deployment.a, scene["technician"])}
    station = station_session({**scene, "station": on(deployment.b, scene["station"])})
    latencies = []
    for _ in range(3):  # the poll also wakes every 2 s on its own: three in a row under 1 s is the signal's doing
        thread, result = poll_in_background(station, wait=10)
        design_id = uploaded(through_a, os.urandom(20_000))
        committed = time.monotonic()  # A has answered the upload's last chunk: the design is committed
        thread.join(timeout=15)
        assert result["response"].status_code == 200, result["response"].text
        assert result["response"].json()["design_id"] == design_id
        latencies.append(result["at"] - committed)
    print(f"station on replica B got the job {', '.join(f'{s * 1000:.0f} ms' for s in latencies)} after A's answer")
    assert max(latencies) < 1.0


def test_a_device_revoked_through_one_replica_is_refused_on_its_next_request_through_another(deployment):
    scene = deployment.scene("Sendai Dental Lab")
    manager, technician = on(deployment.a, scene["lab"]), on(deployment.b, scene["technician"])
    assert technician.call("GET", "/api/v1/me").status_code == 200
    revoked = manager.call("POST", f"/api/v1/devices/{scene['device_id']}/revoke", {"reason": "laptop stolen"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    manifest, _ = sealed_design({**scene, "technician": technician}, os.urandom(1_000))
    refused = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest})
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] in ("device-revoked", "session-ended")


def test_a_totp_code_used_through_one_replica_is_refused_through_another(deployment):
    lab = f"Hakodate Dental Lab {uuid.uuid4().hex[:6]}"
    secret = deployment.setup.init_lab(lab, "manager")
    manager = Person(deployment.a, lab, "manager")
    body = {"lab": lab, "username": "manager", "activation_secret": secret}
    started = manager.call("POST", "/api/v1/auth/activate", {**body, "password": STRONG_PASSWORD})
    assert started.status_code == 200, started.text
    manager.totp_secret = started.json()["totp_secret"]
    left = 30 - time.time() % 30
    if left < 5:  # the confirmation sends the previous step's code: it must reach the gateway before this step ends
        time.sleep(left + 0.1)
    confirmed = manager.call("POST", "/api/v1/auth/activate/confirm", {**body, "totp": manager.totp(steps_ahead=-1)})
    assert confirmed.status_code == 200, confirmed.text

    code = manager.totp()
    assert manager.login(totp=code).status_code == 200
    replayed = on(deployment.b, manager).login(totp=code)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["code"] == "totp-replayed"
    fresh = on(deployment.b, manager).login(totp=manager.totp(steps_ahead=1))
    assert fresh.status_code == 200, fresh.text


def _busy_member(scene: dict, replica: Replica, rounds: int) -> list[int]:
    """A technician and their manager working through `replica`: reads and uploads; the statuses of every call."""
    technician, manager = on(replica, scene["technician"]), on(replica, scene["lab"])
    statuses = []
    for turn in range(rounds):
        statuses.append(technician.call("GET", "/api/v1/me").status_code)
        statuses.append(manager.call("GET", "/api/v1/accounts").status_code)
        statuses.append(technician.call("GET", "/api/v1/designs").status_code)
        if turn % 2 == 0:
            manifest, ciphertext = sealed_design({**scene, "technician": technician}, os.urandom(5_000))
            started = technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest})
            assert started.status_code == 201, started.text
            statuses.append(started.status_code)
            statuses.append(patch(technician, started.json()["upload_id"], 0, ciphertext).status_code)
    return statuses


def _events(reader: Person) -> list[dict]:
    events, after = [], 0
    while True:
        page = reader.call("GET", f"/api/v1/audit/events?after={after}&limit=1000")
        assert page.status_code == 200, page.text
        events += page.json()["events"]
        after = page.json()["next_after"]
        if after is None:
            return events


def _phase_events(events: list[dict]) -> list[dict]:
    """The access events of the concurrent phase's requests (the replicas tag their request ids)."""
    return [
        e for e in events
        if e["category"] == "access" and e["details"]["route"] in PHASE_ROUTES
        and e["request_id"].startswith(("replica-a-", "replica-b-"))
    ]  # fmt: skip


def test_concurrent_requests_through_both_replicas_keep_one_unforked_audit_chain_per_lab(deployment):
    labs = [deployment.scene("Kobe Dental Lab"), deployment.scene("Fukuoka Dental Lab", technician="suzuki")]
    jobs = [(scene, replica) for scene in labs for replica in (deployment.a, deployment.b) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [(scene, pool.submit(_busy_member, scene, replica, 4)) for scene, replica in jobs]
        calls = {scene["lab_id"]: 0 for scene in labs}
        for scene, future in futures:
            statuses = future.result()
            assert set(statuses) <= {200, 201}, statuses
            calls[scene["lab_id"]] += len(statuses)

    for scene, other in zip(labs, labs[::-1], strict=True):
        reader = on(deployment.a, scene["lab"])
        deadline = time.monotonic() + 15  # access events are written just after each response has gone out
        while len(_phase_events(events := _events(reader))) < calls[scene["lab_id"]] and time.monotonic() < deadline:
            time.sleep(0.2)
        phase = _phase_events(events)
        assert len(phase) == calls[scene["lab_id"]]  # every request through either replica, on the chain once
        assert {e["request_id"].split("-")[1] for e in phase} == {"a", "b"}

        verified = on(deployment.b, scene["lab"]).call("GET", "/api/v1/audit/verify").json()
        assert verified["ok"], verified
        events = _events(reader)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # contiguous from the first event
        previous = genesis_hash(uuid.UUID(scene["lab_id"]))
        for event in events:  # each links to the one before it: one line, no fork
            assert event["prev_hash"] == previous, event["seq"]
            previous = event["hash"]
        strangers = {other["technician"].account_id, other["lab"].call("GET", "/api/v1/me").json()["account_id"]}
        assert not strangers & {e["actor_id"] for e in events}  # the other lab's people are on their own chain
