"""`dentgate tech watch`: finished CAD exports are sent as one bundle per case, temporaries never; sent files are
archived or deleted, refused ones kept aside with the reason, and a network failure is tried again (G11, G15)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from clients.api import ApiError, GatewayClient
from clients.cli import main
from clients.commands import tech
from clients.sample_design import crown_stl
from clients.sealing import open_bundle
from clients.uploader import ReceiptUnverified, UploadFailed
from clients.watch_upload import make_sender
from clients.watcher import FAILED_DIR, SENT_DIR, Bundle, Watcher, WatchSettings
from gateway.policy import default_policy, parse_policy
from gateway.transfer.mesh import InvalidMesh
from gateway.transfer.models import Design

SETTLE = 0.2
SAMPLES = Path(__file__).parents[1] / "transfer" / "samples"
TODAY = date(2026, 11, 25)
JUNK = ["crown.stl.tmp", "~lock.stl", "crown.part", "scan.crdownload", "preview.png", "Screenshot 1.png",
        "exocad.dmp", "crash-report.txt", "Thumbs.db", ".DS_Store"]  # fmt: skip


class FakeSend:
    """Records what would have been uploaded (name → bytes at sending time); raises `errors` first, in turn."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.sent: list[tuple[str, dict[str, bytes]]] = []

    def __call__(self, bundle: Bundle) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((bundle.name, {p.name: p.read_bytes() for p in bundle.files}))
        return f"sent as design {uuid.uuid4()}"


def make_watcher(folder: Path, send: FakeSend, after_upload: str = "archive", **kwargs) -> Watcher:
    settings = WatchSettings(SETTLE, default_policy().watch.ignore_patterns, after_upload)  # type: ignore[arg-type]
    return Watcher(folder, settings, send, today=lambda: TODAY, **kwargs)


def settled(watcher: Watcher) -> list:
    watcher.ready()
    time.sleep(SETTLE + 0.05)
    return watcher.poll()


def write(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data or crown_stl())
    return path


def test_a_half_written_file_is_not_sent_until_it_has_stopped_changing(tmp_path):
    design = crown_stl()
    partial = write(tmp_path / "2026-1125-007" / "crown.stl", design[:1000])
    send = FakeSend()
    watcher = make_watcher(tmp_path, send)
    assert watcher.poll() == []
    time.sleep(SETTLE + 0.05)
    with partial.open("ab") as file:  # the CAD writes on: still not finished
        file.write(design[1000:])
    assert watcher.poll() == [] and send.sent == []
    assert watcher.poll() == []  # unchanged, but not yet for the settling time
    time.sleep(SETTLE + 0.05)
    [outcome] = watcher.poll()
    assert outcome.state == "sent"
    assert send.sent == [("2026-1125-007", {"crown.stl": design})]  # the whole file, never the half


def test_a_new_file_holds_its_case_back_until_it_has_settled_too(tmp_path):
    write(tmp_path / "case" / "crown.stl")
    send = FakeSend()
    watcher = make_watcher(tmp_path, send)
    watcher.ready()
    time.sleep(SETTLE + 0.05)
    write(tmp_path / "case" / "bridge_24-26.constructionInfo", (SAMPLES / "bridge_24-26.constructionInfo").read_bytes())
    assert watcher.poll() == []
    time.sleep(SETTLE + 0.05)
    watcher.poll()
    assert [sorted(files) for _, files in send.sent] == [["bridge_24-26.constructionInfo", "crown.stl"]]


def test_temporary_preview_and_crash_files_are_never_sent_nor_touched(tmp_path):
    case = tmp_path / "2026-1125-007"
    write(case / "crown.stl")
    write(case / "bridge_24-26.constructionInfo", (SAMPLES / "bridge_24-26.constructionInfo").read_bytes())
    for name in JUNK:
        write(case / name, b"not for the lab")
    write(tmp_path / "Thumbs.db", b"x")
    write(tmp_path / "~$draft.stl", b"x")
    send = FakeSend()
    watcher = make_watcher(tmp_path, send)
    [outcome] = settled(watcher)
    assert outcome.state == "sent"
    assert [sorted(files) for _, files in send.sent] == [["bridge_24-26.constructionInfo", "crown.stl"]]
    assert sorted(p.name for p in case.iterdir()) == sorted(JUNK)  # left where the CAD put them
    archived = tmp_path / SENT_DIR / "2026-11-25" / "2026-1125-007"
    assert sorted(p.name for p in archived.iterdir()) == ["bridge_24-26.constructionInfo", "crown.stl"]


def test_one_bundle_per_sub_folder_and_per_stem_of_loose_files(tmp_path):
    write(tmp_path / "case-a" / "crown.stl")
    write(tmp_path / "case-a" / "models" / "antagonist.stl")
    write(tmp_path / "case-b" / "crown.stl")
    write(tmp_path / "inlay_36.stl")
    write(tmp_path / "inlay_36.constructionInfo", (SAMPLES / "bridge_24-26.constructionInfo").read_bytes())
    write(tmp_path / "onlay_46.stl")
    send = FakeSend()
    settled(make_watcher(tmp_path, send))
    assert sorted((name, sorted(files)) for name, files in send.sent) == [
        ("case-a", ["antagonist.stl", "crown.stl"]),
        ("case-b", ["crown.stl"]),
        ("inlay_36", ["inlay_36.constructionInfo", "inlay_36.stl"]),
        ("onlay_46", ["onlay_46.stl"]),
    ]
    archive = tmp_path / SENT_DIR / "2026-11-25"
    assert (archive / "case-a" / "models" / "antagonist.stl").read_bytes() == crown_stl()  # sub-folders kept
    assert sorted(p.name for p in tmp_path.iterdir()) == [SENT_DIR]  # nothing left behind


def test_archive_never_overwrites_an_earlier_case_of_the_same_name(tmp_path):
    send = FakeSend()
    watcher = make_watcher(tmp_path, send)
    write(tmp_path / "case" / "crown.stl", crown_stl(name="first"))
    settled(watcher)
    write(tmp_path / "case" / "crown.stl", crown_stl(name="second"))
    settled(watcher)
    archive = tmp_path / SENT_DIR / "2026-11-25"
    assert (archive / "case" / "crown.stl").read_bytes() == crown_stl(name="first")
    assert (archive / "case (2)" / "crown.stl").read_bytes() == crown_stl(name="second")


def test_delete_leaves_no_design_data_behind(tmp_path):
    write(tmp_path / "case" / "crown.stl")
    write(tmp_path / "case" / "models" / "die.stl")
    write(tmp_path / "loose.stl")
    send = FakeSend()
    outcomes = settled(make_watcher(tmp_path, send, after_upload="delete"))
    assert [o.state for o in outcomes] == ["sent", "sent"]
    assert all("deleted from this PC" in o.message for o in outcomes)
    assert list(tmp_path.iterdir()) == []  # no archive either


def test_a_refused_bundle_is_kept_aside_with_its_reason(tmp_path):
    case = tmp_path / "2026-1125-008"
    write(case / "nan.stl", b"broken design")
    write(case / "crown.stl")
    write(case / "preview.png", b"ignored")
    told: list[str] = []
    send = FakeSend(InvalidMesh("nan.stl: vertex 1 has a coordinate that is not finite (NaN)"))
    [outcome] = settled(make_watcher(tmp_path, send, say=told.append))
    assert outcome.state == "failed" and send.sent == []
    kept = tmp_path / FAILED_DIR / "2026-1125-008"
    assert outcome.kept == kept
    assert (kept / "nan.stl").read_bytes() == b"broken design"
    assert (kept / "crown.stl").read_bytes() == crown_stl()
    reason = (tmp_path / FAILED_DIR / "2026-1125-008.reason.txt").read_text(encoding="utf-8")
    assert "not finite (NaN)" in reason and "nan.stl" in reason and "move the folder back" in reason
    assert sorted(p.name for p in case.iterdir()) == ["preview.png"]
    assert told and "refused" in told[0]


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (httpx.ConnectError("connection refused"), "retry"),
        (ApiError(503, "unavailable", "the gateway is restarting"), "retry"),
        (ApiError(401, "session-expired", "log in again"), "retry"),
        (ApiError(413, "design-too-large", "the design is larger than 1 GiB"), "failed"),
        (ApiError(422, "manifest-invalid", "bad manifest"), "failed"),
        (UploadFailed("the connection keeps failing (timed out); run the upload again"), "retry"),
        (ReceiptUnverified("the gateway's receipt names other bytes than the ones sent"), "failed"),
    ],
)
def test_network_and_session_errors_keep_the_files_for_the_next_round(tmp_path, error, state):
    write(tmp_path / "case" / "crown.stl")
    send = FakeSend(error)
    told: list[str] = []
    watcher = make_watcher(tmp_path, send, say=told.append)
    [outcome] = settled(watcher)
    assert outcome.state == state
    if state == "failed":
        assert (tmp_path / FAILED_DIR / "case" / "crown.stl").exists()
        return
    assert (tmp_path / "case" / "crown.stl").read_bytes() == crown_stl()
    [again] = watcher.poll()  # next round: tried again, and sent this time
    assert again.state == "sent" and len(send.sent) == 1
    assert (tmp_path / SENT_DIR / "2026-11-25" / "case" / "crown.stl").exists()


def test_a_retry_is_told_once_not_every_round(tmp_path):
    write(tmp_path / "case" / "crown.stl")
    told: list[str] = []
    watcher = make_watcher(tmp_path, FakeSend(*[httpx.ConnectError("down")] * 3), say=told.append)
    settled(watcher)
    watcher.poll()
    watcher.poll()
    assert len(told) == 1 and "will try again" in told[0]


def test_a_file_changed_while_being_sent_is_left_in_place(tmp_path):
    write(tmp_path / "case" / "crown.stl")
    write(tmp_path / "case" / "die.stl")

    def send(bundle: Bundle) -> str:
        write(tmp_path / "case" / "die.stl", crown_stl(name="re-exported"))
        return "sent"

    [outcome] = settled(Watcher(tmp_path, WatchSettings(SETTLE, (), "delete"), send))
    assert "die.stl changed while being sent" in outcome.message
    assert (tmp_path / "case" / "die.stl").read_bytes() == crown_stl(name="re-exported")
    assert not (tmp_path / "case" / "crown.stl").exists()


def test_a_sent_file_that_cannot_be_archived_is_never_sent_twice(tmp_path, monkeypatch):
    write(tmp_path / "case" / "crown.stl")
    send = FakeSend()
    watcher = make_watcher(tmp_path, send)

    def locked(source, destination):
        raise PermissionError(13, "The process cannot access the file", str(source))

    monkeypatch.setattr(shutil, "move", locked)  # e.g. still open in the CAD on Windows
    [outcome] = settled(watcher)
    assert outcome.state == "sent" and "could not archive it" in outcome.message
    time.sleep(SETTLE + 0.05)
    assert watcher.poll() == [] and len(send.sent) == 1
    assert (tmp_path / "case" / "crown.stl").exists()  # kept, for the technician to clear
    write(tmp_path / "case" / "crown.stl", crown_stl(name="re-exported"))  # a new export is a new design
    assert [o.state for o in settled(watcher)] == ["sent"] and len(send.sent) == 2


def test_a_folder_that_goes_away_is_reported_once_and_the_watcher_keeps_going(tmp_path):
    folder = tmp_path / "outbox"
    folder.mkdir()
    told: list[str] = []
    watcher = make_watcher(folder, FakeSend(), say=told.append)
    folder.rmdir()  # an unplugged drive
    stop = threading.Event()
    threading.Timer(SETTLE * 2, stop.set).start()
    watcher.run(stop)
    assert len(told) == 1 and told[0].startswith(f"cannot read {folder}")


def test_the_policy_has_the_watch_settings_and_flags_override_them():
    policy = default_policy().watch
    assert policy.after_upload == "archive" and policy.settle_seconds > 0
    assert {"*.tmp", "~*", "*.part", "*.crdownload", "*preview*", "*screenshot*", "*.dmp", "*crash*"} <= set(
        policy.ignore_patterns
    )
    settings = WatchSettings.from_policy(policy, 0.5, ("*.bak",), "delete")
    assert (settings.settle_seconds, settings.after_upload) == (0.5, "delete")
    assert settings.ignore_patterns == (*policy.ignore_patterns, "*.bak")  # added to, never replacing
    assert WatchSettings.from_policy(policy).after_upload == "archive"
    text = (Path(__file__).parents[2] / "policies" / "default.toml").read_text(encoding="utf-8")
    with pytest.raises(ValidationError, match="after_upload"):
        parse_policy(text.replace('after_upload = "archive"', 'after_upload = "keep"'))


def test_sigterm_stops_the_watcher_cleanly(tmp_path):
    write(tmp_path / "case" / "crown.stl")
    send = FakeSend()
    watcher = make_watcher(tmp_path, send)
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(SETTLE * 4, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    with tech.stop_on_signals(stop):
        watcher.run(stop)
    assert stop.is_set() and time.monotonic() - started < 5
    assert [name for name, _ in send.sent] == ["case"]
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back


def test_watch_once_exits_non_zero_when_something_was_not_sent(tmp_path, monkeypatch):
    write(tmp_path / "good" / "crown.stl")
    write(tmp_path / "bad" / "crown.stl")
    send = FakeSend()

    def sender(connect, stations, process, location):
        assert (stations, process, location) == ([uuid.UUID(int=1)], "design", "home")
        return lambda bundle: send(bundle) if bundle.name == "good" else (_ for _ in ()).throw(InvalidMesh("NaN"))

    monkeypatch.setattr(tech, "logged_in", object)
    monkeypatch.setattr(tech, "make_sender", sender)
    args = ["tech", "watch", str(tmp_path), "--station", str(uuid.UUID(int=1)), "--location", "home", "--once"]
    result = CliRunner().invoke(main, [*args, "--settle-seconds", str(SETTLE), "--after-upload", "delete"])
    assert result.exit_code == 1, result.output
    assert "good: sent as design" in result.output and "bad: refused: NaN" in result.output
    assert not (tmp_path / "good").exists()  # deleted, as the flag said (the policy says archive)
    assert (tmp_path / FAILED_DIR / "bad" / "crown.stl").exists()
    result = CliRunner().invoke(main, [*args, "--settle-seconds", str(SETTLE)])
    assert result.exit_code == 0 and "Nothing finished to send." in result.output


# --- against the real gateway ------------------------------------------------------------------------------------


@pytest.fixture
def client(scene):
    app = scene["lab"].gateway
    app.clock.offset = timedelta()  # the client signs proofs with the real time
    technician = scene["technician"]
    return GatewayClient("http://testserver", technician.key, technician.token, transport=app.client._transport)


def delivered(scene: dict, design_id: uuid.UUID, into: Path) -> tuple[dict, dict[str, bytes]]:
    """The design's signed manifest and the files the station decrypts from what the gateway stored."""
    app = scene["lab"].gateway
    with app.backends.sessions() as session:
        design = session.get(Design, design_id)
    ciphertext = into / "ciphertext.age"
    ciphertext.write_bytes(b"".join(app.backends.store.get(design.object_key)))
    (into / "station").mkdir()
    with ciphertext.open("rb") as sealed:
        opened = open_bundle(sealed, into / "station", scene["station_age"])
    return design.signed_manifest["manifest"], {f.name: (into / "station" / f.name).read_bytes() for f in opened.files}


def test_watch_once_delivers_each_case_and_keeps_what_it_could_not_send(scene, client, tmp_path, monkeypatch):
    outbox = tmp_path / "outbox"
    bridge = outbox / "bridge"  # exocad project: the case, teeth and material come from the constructionInfo
    write(bridge / "crown.stl")
    shutil.copy(SAMPLES / "bridge_24-26.constructionInfo", bridge)
    write(bridge / "crown.stl.tmp", b"half an export")
    write(bridge / "preview.png", b"\x89PNG")
    write(outbox / "2026-1125-007" / "crown_11.stl")  # no companion: the folder names the case
    nan = bytearray(crown_stl())
    nan[84 + 12 : 84 + 16] = b"\x00\x00\xc0\x7f"
    write(outbox / "2026-1125-008" / "crown_12.stl", bytes(nan))
    write(outbox / "loose_crown.stl")  # loose, no companion: no case number to send it under
    monkeypatch.setattr(tech, "logged_in", lambda: client)
    args = ["tech", "watch", str(outbox), "--station", scene["station_id"], "--location", "home"]
    result = CliRunner().invoke(main, [*args, "--once", "--settle-seconds", str(SETTLE)])
    assert result.exit_code == 1, result.output  # two bundles were refused
    assert "filled case {6F9619FF-8B86-D011-B42D-00C04FC964FF}, teeth 24, 25, 26, material Zirconia" in result.output
    designs = {d["case_reference"]: uuid.UUID(d["id"]) for d in client.get("/api/v1/designs")}
    assert set(designs) == {"{6F9619FF-8B86-D011-B42D-00C04FC964FF}", "2026-1125-007"}

    manifest, files = delivered(scene, designs["{6F9619FF-8B86-D011-B42D-00C04FC964FF}"], tmp_path)
    assert files == {"crown.stl": crown_stl(), "bridge_24-26.constructionInfo":
                     (SAMPLES / "bridge_24-26.constructionInfo").read_bytes()}  # fmt: skip
    assert [t["fdi"] for t in manifest["teeth"]] == [24, 25, 26] and manifest["material"] == "Zirconia"
    assert sorted(p.name for p in bridge.iterdir()) == ["crown.stl.tmp", "preview.png"]  # never sent, not touched
    archive = outbox / SENT_DIR / date.today().isoformat()
    assert sorted(p.name for p in archive.iterdir()) == ["2026-1125-007", "bridge"]
    assert (archive / "2026-1125-007" / "crown_11.stl").read_bytes() == crown_stl()

    failed = outbox / FAILED_DIR
    assert (failed / "2026-1125-008" / "crown_12.stl").read_bytes() == bytes(nan)
    assert "crown_12.stl" in (failed / "2026-1125-008.reason.txt").read_text(encoding="utf-8")
    assert (failed / "loose_crown" / "loose_crown.stl").read_bytes() == crown_stl()
    assert "no case reference: put the files in a sub-folder" in (failed / "loose_crown.reason.txt").read_text()


def test_a_gateway_out_of_reach_is_retried_and_the_files_stay(scene, client, tmp_path):
    outbox = tmp_path / "outbox"  # tmp_path also holds the gateway's data
    write(outbox / "2026-1125-009" / "crown.stl")
    with pytest.raises(UploadFailed, match="not an active station of the lab"):
        make_sender(lambda: client, [uuid.uuid4()], "design", "home")  # said at start, not once per bundle
    send = make_sender(lambda: client, [uuid.UUID(scene["station_id"])], "design", "home")
    working = client.transport

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    client.transport = httpx.MockTransport(unreachable)
    watcher = Watcher(outbox, WatchSettings(SETTLE, (), "archive"), send)
    [outcome] = watcher.run_once()
    assert outcome.state == "retry" and "no route to host" in outcome.message
    assert (outbox / "2026-1125-009" / "crown.stl").read_bytes() == crown_stl()
    assert not (outbox / FAILED_DIR).exists()
    client.transport = working
    [outcome] = watcher.poll()
    assert outcome.state == "sent"
    assert [d["case_reference"] for d in client.get("/api/v1/designs")] == ["2026-1125-009"]
