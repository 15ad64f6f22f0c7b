"""`dentgate tech watch`: send finished CAD exports from a folder, then archive or delete them (G11, G12, G15).

- A bundle is one case: each sub-folder of the watched folder (every file in it, at any depth), and, for files
  saved loose in the folder itself, the files sharing a stem (`crown.stl` with `crown.constructionInfo`).
- The case reference is the one a companion names (3Shape order id, else exocad ProjectGUID), else the
  sub-folder's name (name it with the lab's case number, never the patient's name: the gateway sees it); loose
  files without a companion are set aside, since a file name is no case number.
- A file is finished once its size and modification time have stayed the same for `settle_seconds` of watching;
  a bundle goes when all its files are finished (a file still being written, or a new one, holds it back).
- Names matching an ignore pattern (case-insensitive, any part of the path) are never sent nor touched, and
  neither are symbolic links or the watcher's own `.dentgate-sent` / `.dentgate-failed` folders.
- Sent (receipt verified): the files move to `.dentgate-sent/<date>/<bundle>/`, or are deleted (`after_upload`).
  Refused for what it is (not a mesh, NaN, too large, no case…) or answered with a receipt that does not verify:
  the files move to `.dentgate-failed/<bundle>/` with `<bundle>.reason.txt` beside it. Anything else (network,
  session): the files stay and the next round tries again. A file changed while being sent is left in place.
- How a bundle is uploaded (prefill from companions, the case rule, the login) is `clients.watch_upload`.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from clients.api import ApiError
from clients.uploader import DesignRefused, ReceiptUnverified
from gateway.errors import DentGateError
from gateway.policy import WatchPolicy

SENT_DIR = ".dentgate-sent"
FAILED_DIR = ".dentgate-failed"
#: Gateway answers that say the design itself is refused (bad request, too large, unsupported, invalid).
REFUSING_STATUSES = frozenset({400, 413, 415, 422})

AfterUpload = Literal["archive", "delete"]


@dataclass(frozen=True)
class WatchSettings:
    settle_seconds: float
    ignore_patterns: tuple[str, ...]
    after_upload: AfterUpload

    @classmethod
    def from_policy(
        cls,
        policy: WatchPolicy,
        settle_seconds: float | None = None,
        extra_ignore: tuple[str, ...] = (),
        after_upload: AfterUpload | None = None,
    ) -> WatchSettings:
        """The policy's settings, with command-line flags over them (extra patterns add to the policy's)."""
        return cls(
            settle_seconds=policy.settle_seconds if settle_seconds is None else settle_seconds,
            ignore_patterns=(*policy.ignore_patterns, *extra_ignore),
            after_upload=after_upload or policy.after_upload,
        )

    @property
    def poll_seconds(self) -> float:
        return min(max(self.settle_seconds / 2, 0.05), 5.0)


@dataclass(frozen=True)
class Bundle:
    name: str  # the sub-folder's name, or the loose files' stem
    root: Path | None  # the sub-folder; None for loose files
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Outcome:
    bundle: str
    state: Literal["sent", "failed", "retry"]
    message: str
    kept: Path | None = None  # where the files are now (archive or failed folder)


#: Uploads a bundle; returns what to tell the technician (the design id and warnings). See `clients.watch_upload`.
Send = Callable[[Bundle], str]


def refuses_the_design(error: Exception) -> bool:
    """Whether `error` says the bundle must be set aside (sending it again cannot help) rather than retried."""
    if isinstance(error, ApiError):
        return error.status in REFUSING_STATUSES
    # Local checks (file type, mesh, companion, tooth), and a receipt that does not verify: not again blindly.
    return isinstance(error, DesignRefused | ReceiptUnverified | DentGateError)


class Watcher:
    """One watched folder: what is there, what has settled, and what became of each bundle."""

    def __init__(
        self,
        folder: Path,
        settings: WatchSettings,
        send: Send,
        say: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.folder, self.settings, self.send, self.say = folder, settings, send, say
        self.clock, self.today = clock, today
        self._seen: dict[Path, tuple[int, int, float]] = {}  # path -> size, mtime_ns, since when unchanged
        self._retrying: dict[str, str] = {}  # bundle name -> last message told, so a retry is told once
        self._done: dict[Path, tuple[int, int] | None] = {}  # sent, but could not be moved or deleted: not again

    # --- what is there ----------------------------------------------------------------------------------------

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name.casefold(), p.casefold()) for p in self.settings.ignore_patterns)

    def _files(self, top: Path) -> list[Path]:
        found: list[Path] = []
        for directory, subdirectories, names in os.walk(top):  # links to folders are not followed
            subdirectories[:] = sorted(d for d in subdirectories if not self.ignored(d))
            paths = (Path(directory, name) for name in sorted(names) if not self.ignored(name))
            found += [path for path in paths if path.is_file() and not path.is_symlink()]
        return found

    def bundles(self) -> list[Bundle]:
        """Every bundle in the folder now, finished or not."""
        loose: dict[str, list[Path]] = {}
        found: list[Bundle] = []
        for entry in sorted(self.folder.iterdir()):
            if entry.name in (SENT_DIR, FAILED_DIR) or entry.is_symlink() or self.ignored(entry.name):
                continue
            if entry.is_dir():
                files = self._files(entry)
                if files:
                    found.append(Bundle(entry.name, entry, tuple(files)))
            elif entry.is_file():
                loose.setdefault(entry.stem.casefold(), []).append(entry)
        found += [Bundle(files[0].stem, None, tuple(files)) for files in loose.values()]
        return found

    # --- what has settled -------------------------------------------------------------------------------------

    def _stat(self, path: Path) -> tuple[int, int] | None:
        try:
            status = path.stat()
        except OSError:
            return None
        return status.st_size, status.st_mtime_ns

    def _settled(self, path: Path, now: float) -> bool:
        current = self._stat(path)
        if current is None:
            self._seen.pop(path, None)
            return False
        before = self._seen.get(path)
        if before is None or before[:2] != current:
            self._seen[path] = (*current, now)
            return False
        return now - before[2] >= self.settings.settle_seconds

    def ready(self) -> list[Bundle]:
        """The bundles all of whose files have stayed unchanged for the settling time (one observation each)."""
        now = self.clock()
        bundles = self.bundles()
        present = {f for b in bundles for f in b.files}
        self._seen = {path: seen for path, seen in self._seen.items() if path in present}
        self._done = {path: seen for path, seen in self._done.items() if path in present and self._stat(path) == seen}
        fresh = [b for b in bundles if not all(f in self._done for f in b.files)]
        return [b for b in fresh if all([self._settled(f, now) for f in b.files])]  # observe every file

    # --- what becomes of a bundle -----------------------------------------------------------------------------

    def poll(self, stop: threading.Event | None = None) -> list[Outcome]:
        """One round: send each finished bundle, then archive, delete or set it aside."""
        outcomes = []
        for bundle in self.ready():
            if stop is not None and stop.is_set():
                break
            outcome = self._handle(bundle)
            if outcome.state != "retry" or self._retrying.get(bundle.name) != outcome.message:
                self.say(f"{bundle.name}: {outcome.message}")
            self._retrying.pop(bundle.name, None)
            if outcome.state == "retry":
                self._retrying[bundle.name] = outcome.message
            outcomes.append(outcome)
        return outcomes

    def _handle(self, bundle: Bundle) -> Outcome:
        snapshot = {path: self._stat(path) for path in bundle.files}
        try:
            told = self.send(bundle)
        except Exception as error:  # noqa: BLE001 (whatever it was, the files stay and are retried or set aside)
            detail = getattr(error, "detail", None) or str(error) or type(error).__name__
            if not refuses_the_design(error):
                return Outcome(bundle.name, "retry", f"not sent, will try again: {detail}")
            if any(self._stat(path) != seen for path, seen in snapshot.items()):
                return Outcome(bundle.name, "retry", f"not sent ({detail}); it changed meanwhile, so it is re-checked")
            try:
                kept = self._set_aside(bundle, detail)
            except OSError as error:
                return Outcome(bundle.name, "retry", f"refused: {detail}; could not move it aside ({error})")
            return Outcome(bundle.name, "failed", f"refused: {detail}; moved to {kept}", kept)
        unchanged = [path for path, seen in snapshot.items() if self._stat(path) == seen]
        changed = sorted(set(bundle.files) - set(unchanged))
        note = "".join(f"; {p.name} changed while being sent, so it was left in place" for p in changed)
        try:
            if self.settings.after_upload == "delete":
                for path in unchanged:
                    path.unlink()
                self._prune(bundle)
                return Outcome(bundle.name, "sent", f"{told}; deleted from this PC{note}")
            kept = self._move(bundle, unchanged, self.folder / SENT_DIR / self.today().isoformat())
        except OSError as error:  # e.g. a file still open in the CAD on Windows: sent, so never sent twice
            self._done.update({path: seen for path, seen in snapshot.items() if path in unchanged and path.exists()})
            return Outcome(bundle.name, "sent", f"{told}; could not {self.settings.after_upload} it ({error}){note}")
        return Outcome(bundle.name, "sent", f"{told}; archived to {kept}{note}", kept)

    def _set_aside(self, bundle: Bundle, reason: str) -> Path:
        kept = self._move(bundle, list(bundle.files), self.folder / FAILED_DIR)
        moved = "\n".join(f"  {path.relative_to(kept)}" for path in sorted(kept.rglob("*")) if path.is_file())
        kept.with_name(f"{kept.name}.reason.txt").write_text(
            f"{bundle.name} was not sent on {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}:\n{reason}\n\n"
            f"Files (in {kept.name}/):\n{moved}\n\nFix the design, then move the folder back into "
            f"{self.folder} to send it again.\n",
            encoding="utf-8",
        )
        return kept

    def _move(self, bundle: Bundle, files: list[Path], into: Path) -> Path:
        """Move `files` into a new folder under `into` named after the bundle, keeping sub-folders; never overwrite."""
        into.mkdir(parents=True, exist_ok=True)
        target = into / bundle.name
        number = 1
        while target.exists() or target.with_name(f"{target.name}.reason.txt").exists():
            number += 1
            target = into / f"{bundle.name} ({number})"
        for path in files:
            destination = target / (path.relative_to(bundle.root) if bundle.root else path.name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, destination)
        self._prune(bundle)
        return target

    def _prune(self, bundle: Bundle) -> None:
        """Remove the bundle's sub-folders left empty (a folder still holding anything, even ignored files, stays)."""
        if bundle.root is None or not bundle.root.is_dir():
            return
        for directory, _, _ in sorted(os.walk(bundle.root), key=lambda entry: -len(Path(entry[0]).parts)):
            if not any(Path(directory).iterdir()):
                Path(directory).rmdir()

    # --- rounds -----------------------------------------------------------------------------------------------

    def run_once(self, stop: threading.Event | None = None) -> list[Outcome]:
        """Look, let the settling time pass, and handle what is finished by then (`--once`, cron)."""
        stop = stop or threading.Event()
        self.ready()
        if stop.wait(self.settings.settle_seconds):
            return []
        return self.poll(stop)

    def run(self, stop: threading.Event) -> None:
        """Rounds every `poll_seconds` until `stop` is set; a bundle being sent is finished first."""
        trouble = None
        while not stop.is_set():
            try:
                self.poll(stop)
                trouble = None
            except OSError as error:  # the folder went away (an unplugged or unmounted drive): say so once, go on
                if str(error) != trouble:
                    self.say(f"cannot read {self.folder}: {error}")
                trouble = str(error)
            stop.wait(self.settings.poll_seconds)
