"""A station agent process killed (SIGKILL) after claiming a job gets the job again once the lease runs
out, and the import folder ends with exactly one, whole copy: no second file, no half-written file,
no decrypted leftovers in the agent's work folder (G13)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clients.demo import create_lab, prepare_lab, running_gateway
from clients.identities import create_station_identity
from clients.profile import key_store
from clients.sample_design import crown_stl
from clients.station_agent import pin_gateway_key, save_station_record
from clients.uploader import DesignRequest, upload_design
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab
from gateway.settings import Settings
from gateway.transfer.models import DeliveryJob

PASSPHRASE = "station key passphrase for the test"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def settings(request, tmp_path, database_url) -> Settings:
    values = {"data_dir": tmp_path / "data", "database_url": database_url, "host": "127.0.0.1"}
    if request.param == "s3":
        values |= {
            "storage_url": f"s3://{request.getfixturevalue('s3_bucket')}/designs",
            "s3_endpoint_url": request.getfixturevalue("moto_endpoint"),
            "s3_region": "ap-northeast-1",
        }
    return Settings(**values)


def job_row(backends, lab_id: uuid.UUID, design_id: uuid.UUID) -> DeliveryJob:
    with transaction(backends.sessions) as session:
        bind_to_lab(session, lab_id)
        job = session.query(DeliveryJob).filter_by(design_id=design_id).one()
        session.expunge(job)
        return job


@pytest.mark.timeout(180)
def test_a_station_killed_after_its_claim_gets_the_job_again_and_leaves_one_file(settings, tmp_path, monkeypatch):
    home, import_dir = tmp_path / "station-home", tmp_path / "cam-import"
    monkeypatch.setenv("DENTGATE_KEY_PASSPHRASE", PASSPHRASE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENTGATE_")}
    env |= {"DENTGATE_HOME": str(home), "DENTGATE_KEY_PASSPHRASE": PASSPHRASE}
    with running_gateway(settings) as (url, backends):
        lab_id, secret = create_lab(backends)
        identity = create_station_identity(key_store(home))
        lab = prepare_lab(url, lab_id, secret, tmp_path, identity, say=lambda _: None)
        save_station_record(home, url, str(lab.station_id))
        pin_gateway_key(home, url)

        design = tmp_path / "export" / "crown_11.stl"
        design.parent.mkdir()
        design.write_bytes(crown_stl(segments=100_000))  # 400,000 triangles, 20 MB: delivery takes a while
        request = DesignRequest(
            files=[design], case_reference="K-2026-0042", station_ids=[lab.station_id],
            process="design", remote_location="home", teeth=["11"], material="zirconia",
        )  # fmt: skip
        uploaded = upload_design(lab.technician, request, lab.technician_id, lab.device_id, lab.gateway_key)

        agent = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "station", "run", "--import-dir", str(import_dir), "--wait", "5"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while job_row(backends, lab_id, uploaded.design_id).state != "claimed":
            assert agent.poll() is None and time.monotonic() < deadline, "the station never claimed the job"
            time.sleep(0.01)
        agent.kill()
        agent.wait(timeout=10)
        killed = job_row(backends, lab_id, uploaded.design_id)
        assert (killed.state, killed.attempts) == ("claimed", 1), "the kill came too late to test anything"

        # The lease runs out (as if `lease_seconds` had passed); the restarted agent takes the job again.
        with transaction(backends.sessions) as session:
            bind_to_lab(session, lab_id)
            session.get(DeliveryJob, killed.id).lease_until = datetime.now(UTC) - timedelta(seconds=1)
        once = subprocess.run(
            [sys.executable, "-m", "clients.cli", "station", "once", "--import-dir", str(import_dir), "--json"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert once.returncode == 0, once.stdout + once.stderr
        assert json.loads(once.stdout)["acknowledged"] is True

        delivered = job_row(backends, lab_id, uploaded.design_id)
        assert (delivered.state, delivered.attempts) == ("acknowledged", 2)
    files = sorted(p.name for p in import_dir.iterdir())
    assert len(files) == 1, files
    assert hashlib.sha256((import_dir / files[0]).read_bytes()).digest() == hashlib.sha256(design.read_bytes()).digest()
    assert list((home / "work").glob("*")) == []  # no decrypted design left on the station's disk
