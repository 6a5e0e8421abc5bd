"""Quarantine: where rejected snapshots go, each beside a JSON file that says why; never deleted.

A rejected file is moved out of the landing location, so it is no longer pending and the next good
snapshot is processed normally. `rewarm quarantine retry NAME` moves it back once it is fixed.
Writes are ordered so that a crash loses nothing: the reason file first, then the move. A reason file
whose snapshot never arrived (a crash in between) is not listed, and is written again when the snapshot,
still in the landing location, is rejected again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import fsspec

from rewarm import landing
from rewarm.errors import RewarmError, SnapshotRejected
from rewarm.locations import filesystem, is_remote, write_atomic

REASON = ".reason.json"  # NAME.reason.json beside each quarantined NAME
RETRIED = "retried"  # reason files of snapshots sent back to the landing location, kept for the record


@dataclass(frozen=True)
class Record:
    """Why a snapshot was quarantined, and where it is."""

    name: str  # its file name in the quarantine location
    landed_as: str  # the name it landed under (retry puts it back under this name)
    source: str  # where it was moved from
    location: str  # where it is now
    model: str
    sha256: str
    size: int
    kind: str  # the first problem's kind (rewarm.schema.Problem.kind), or "unreadable"
    reason: str  # the one-line message, file named first
    problems: list[dict] = field(default_factory=list)
    quarantined_at: str = ""
    flow_run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def safe_name(name: str) -> str:
    """NAME if it is a plain file name, else a RewarmError (path separators, '..')."""
    return landing.safe_name(name)


def sanitise(name: str) -> str:
    """A safe name for a file that landed under an unsafe one ('..' inside it)."""
    name = name.replace("\\", "_")
    while ".." in name:  # "jan..csv" -> "jan.csv": the format suffix stays, so a retried file is picked up
        name = name.replace("..", ".")
    return name.strip(".") or "unnamed"


def _join(location: str, name: str) -> str:
    return f"{location.rstrip('/')}/{safe_name(name)}"


def put(
    location: str,
    uri: str,
    sha256: str,
    model: str,
    error: SnapshotRejected,
    flow_run_id: str | None = None,
) -> Record:
    """Move the rejected snapshot at URI into LOCATION with its reason beside it; return the record."""
    fs, folder = filesystem(location)
    fs.makedirs(folder, exist_ok=True)
    landed_as = sanitise(uri.rstrip("/").rsplit("/", 1)[-1])
    name = _free_name(fs, folder, landed_as, sha256)
    source_fs, source_path = filesystem(uri)
    size = source_fs.size(source_path) if source_fs.exists(source_path) else 0
    record = Record(
        name=name,
        landed_as=landed_as,
        source=uri,
        location=_join(location, name),
        model=model,
        sha256=sha256,
        size=int(size or 0),
        kind=error.kind,
        reason=str(error),
        problems=[p.to_dict() for p in error.problems],
        quarantined_at=datetime.now(UTC).isoformat(),  # microseconds: two in one second keep their order
        flow_run_id=flow_run_id,
    )
    write_atomic(f"{record.location}{REASON}", json.dumps(record.to_dict(), indent=2).encode())
    _move(uri, record.location)
    return record


def _free_name(fs: fsspec.AbstractFileSystem, folder: str, name: str, sha256: str) -> str:
    """NAME, or NAME with the content hash before its suffix when another file already holds NAME."""
    if not fs.exists(f"{folder}/{name}"):
        return name
    stem, dot, suffix = name.partition(".")
    tag = sha256[:12] if sha256.isalnum() else datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")  # no hash: unreadable
    return f"{stem}-{tag}{dot}{suffix}"


def _move(src: str, dst: str) -> None:
    """Move a file; locally a rename where one filesystem holds both, else a copy then the removal."""
    if not is_remote(src) and not is_remote(dst):
        shutil.move(src.removeprefix("file://"), dst.removeprefix("file://"))
        return
    if is_remote(src) != is_remote(dst) or fsspec.core.url_to_fs(src)[0] is not fsspec.core.url_to_fs(dst)[0]:
        with fsspec.open(src, "rb") as fin, fsspec.open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        fs, path = filesystem(src)
        fs.rm(path)
        return
    fs, path = filesystem(src)
    fs.mv(path, filesystem(dst)[1])


def records(location: str) -> list[Record]:
    """Quarantined snapshots in LOCATION, oldest first; a reason file without its snapshot is skipped."""
    fs, folder = filesystem(location)
    if not fs.exists(folder):
        return []
    out = []
    for path in fs.glob(f"{folder}/*{REASON}"):
        with fs.open(path, "r") as fh:
            record = Record(**json.load(fh))
        if fs.exists(filesystem(record.location)[1]):
            out.append(record)
    return sorted(out, key=lambda r: (r.quarantined_at, r.name))


def holds(location: str, sha256: str) -> bool:
    """True when content SHA256 sits in quarantine."""
    return any(r.sha256 == sha256 for r in records(location))


def retry(location: str, landing_location: str, name: str) -> str:
    """Move quarantined NAME back into LANDING under the name it landed as; return its new location.

    The reason file moves to LOCATION/retried/, stamped, so the history of what was wrong stays.
    """
    safe_name(name)
    found = [r for r in records(location) if r.name == name]
    if not found:
        listed = [r.name for r in records(location)]
        raise RewarmError(f"{name}: not in quarantine at {location}; quarantined now: {listed or 'none'}")
    record = found[0]
    target = _join(landing_location, record.landed_as)
    fs_landing, landing_folder = filesystem(landing_location)
    if fs_landing.exists(filesystem(target)[1]):
        raise RewarmError(
            f"{target} exists already; move or rename it first (retry puts {name} back as {record.landed_as})"
        )
    fs_landing.makedirs(landing_folder, exist_ok=True)
    fs, folder = filesystem(location)
    fs.makedirs(f"{folder}/{RETRIED}", exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    _move(record.location, target)  # the snapshot first: a crash now leaves an unlisted reason file, nothing lost
    _touch(target)
    fs.mv(f"{folder}/{name}{REASON}", f"{folder}/{RETRIED}/{name}.{stamp}{REASON}")
    return target


def _touch(uri: str) -> None:
    """A file moved back lands now: locally, a rename keeps the file's times, so set them."""
    if not is_remote(uri):
        os.utime(uri.removeprefix("file://"))
