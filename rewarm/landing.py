"""The landing location: which files have landed, whether they are complete, and in what order.

Completeness convention (README): a writer either writes under a temporary name (a leading `.`, `_` or
`~`, or a `.partial`/`.tmp`/`.part`/`.crdownload`/`.inprogress` suffix) and renames into place, or writes in
place and the file counts as complete once nothing has changed it for `service.settle_seconds`.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import fsspec

from rewarm import locations
from rewarm.locations import is_remote
from rewarm.reading import SUFFIXES, WRITE_AS, excel_hint

TEMPORARY_PREFIXES = (".", "_", "~")
TEMPORARY_SUFFIXES = (".partial", ".tmp", ".part", ".crdownload", ".inprogress", ".filepart")


@dataclass(frozen=True)
class Arrival:
    """A snapshot file seen in the landing location."""

    uri: str
    name: str
    size: int
    # Last change, in seconds since the epoch. Locally the inode change time: a rename or copy sets it
    # (copy2 preserves mtime, not ctime), and so does every write of a file still being written.
    changed_at: float
    # What the store says changes whenever the content does, read for free by the listing; the fingerprint
    # cache (rewarm/fingerprints.py) reuses a hash only while it is unchanged. Locally size, mtime, ctime (set
    # by every write and by os.utime, so a rewrite with its mtime put back still differs), inode and device;
    # on an object store the ETag and/or version id. None where the listing gives neither: hashed every time.
    stamp: str | None = None

    @property
    def order(self) -> tuple[float, str]:
        """Landing order: when the file last changed, then its name."""
        return (self.changed_at, self.name)

    def settled(self, settle_seconds: float, now: float | None = None) -> bool:
        """True once nothing has changed the file for SETTLE_SECONDS."""
        return (now if now is not None else time.time()) - self.changed_at >= settle_seconds


def is_snapshot_name(name: str) -> bool:
    """A finished snapshot's name: a supported format and no temporary-file marker."""
    return not _in_progress(name) and name.lower().endswith(SUFFIXES)


def scan(location: str) -> list[Arrival]:
    """Snapshot files in LOCATION, oldest first; a location that does not exist yet holds none."""
    return survey(location)[0]


def unread(location: str) -> list[str]:
    """The names of LOCATION's files that rewarm does not read (survey)."""
    return survey(location)[1]


def survey(location: str) -> tuple[list[Arrival], list[str]]:
    """From one listing of LOCATION: its snapshot files, oldest first, and the sorted names of the files that are
    neither snapshots nor still being written (a spreadsheet, a JSON file, a CSV compressed another way). rewarm
    passes those over and says so where it reports what is pending, so that a file landed in a format it does not
    read is not silently ignored. A location that does not exist yet holds neither."""
    found = _scan_remote(location) if is_remote(location) else _scan_local(Path(location.removeprefix("file://")))
    snapshots = sorted((a for a in found if is_snapshot_name(a.name)), key=lambda a: a.order)
    return snapshots, sorted(a.name for a in found if not is_snapshot_name(a.name) and not _in_progress(a.name))


def unread_note(names: list[str]) -> str:
    """One line naming the files rewarm does not read (up to five) and what to land instead; '' for none."""
    if not names:
        return ""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    hints = {excel_hint(n) for n in names} - {""}
    return f"{len(names)} file(s) not read as snapshots ({shown}): {WRITE_AS}{''.join(sorted(hints))}"


def absent_note(location: str) -> str:
    """Where LOCATION does not exist (a typo in data.landing is otherwise an empty folder): say so; else ''."""
    fs, path = locations.filesystem(location)
    return "" if fs.exists(path) else " (it does not exist: check data.landing in rewarm.toml)"


def _in_progress(name: str) -> bool:
    """A name a writer uses while the file is still being written (the completeness convention above)."""
    lower = name.lower()
    return lower.startswith(TEMPORARY_PREFIXES) or lower.endswith(TEMPORARY_SUFFIXES)


def _scan_local(folder: Path) -> list[Arrival]:
    if not folder.is_dir():
        return []
    real = str(folder.resolve())  # once: resolving each file's whole path cost more than the rest of a scan
    out = []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                st = entry.stat()
            except FileNotFoundError:  # renamed or removed while listing
                continue
            if entry.is_file():
                uri = str(Path(entry.path).resolve()) if entry.is_symlink() else os.path.join(real, entry.name)
                changed = max(st.st_mtime, st.st_ctime)
                out.append(Arrival(uri, entry.name, st.st_size, changed, _local_stamp(st)))
    return out


def _local_stamp(st: os.stat_result) -> str:
    return f"stat:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}"


def _scan_remote(location: str) -> list[Arrival]:
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        return []
    out = []
    for info in fs.ls(path, detail=True):
        if info.get("type") != "file":
            continue
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        size = int(info.get("size") or 0)
        out.append(Arrival(fs.unstrip_protocol(info["name"]), name, size, _when(info), object_stamp(info)))
    return out


# Listing fields that change with an object's content: S3's ETag and VersionId (s3fs), Azure's etag, GCS's
# generation. Object stores' timestamps have one-second resolution, so size and time alone are never used.
OBJECT_IDENTITY = ("ETag", "etag", "VersionId", "version_id", "generation")


def object_stamp(info: dict) -> str | None:
    """An fsspec listing entry's content identity (size and ETag / version id); None if it has neither."""
    found = [f"{key}={info[key]}" for key in OBJECT_IDENTITY if info.get(key)]
    return ";".join([f"size={int(info.get('size') or 0)}", *found]) if found else None


def _when(info: dict) -> float:
    """Modification time from an fsspec listing; object stores name it differently."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def safe_name(name: str) -> str:
    """NAME if it is a plain file name; a name with a path separator or ".." in it is refused."""
    from rewarm.errors import RewarmError

    if name in ("", ".") or ".." in name or any(c in name for c in "/\\\0"):
        raise RewarmError(f"{name!r}: not a plain file name (no '/', '\\' or '..'); give the name as listed")
    return name


def check_announced(uri: str, location: str) -> str:
    """URI if an announced snapshot (an event's, a deployment parameter) names a file directly inside the
    landing LOCATION, with no '..' in its path; anything else is refused, whatever the sender claims."""
    from rewarm.errors import RewarmError

    parts = uri.replace("\\", "/").split("/")
    if ".." in parts or not contains(location, uri):
        raise RewarmError(
            f"{uri}: announced snapshots must be files directly inside data.landing ({location}); not retrained"
        )
    return uri


def fingerprint(uri: str) -> str:
    """SHA-256 of a file's content, streamed (the same digest the retrain records)."""
    digest = hashlib.sha256()
    with fsspec.open(uri, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def canonical(uri: str) -> str:
    """One spelling per file: an absolute local path, or the URL as fsspec writes it back."""
    return locations.canonical(uri)


def contains(location: str, uri: str) -> bool:
    """True when URI is a file directly inside the landing LOCATION."""
    return canonical(uri).rsplit("/", 1)[0] == canonical(location)


def same_file(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)
