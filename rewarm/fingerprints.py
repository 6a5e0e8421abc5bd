"""A cache of landed files' SHA-256, so that finding pending snapshots hashes only new or changed files.

The content hash stays the proof of identity (rewarm/ledger.py); the cache only saves recomputing it. A hash is
reused while the file's stamp (`Arrival.stamp`: what the store says changes with the content) is the one it was
computed for; a file listed without a stamp is hashed every time. Each landing location has one small JSON file
under the rewarm home, `fingerprints/<sha256 of the canonical location>.json`, holding the files listed on the
last pass. It is written whole under a temporary name and renamed into place, so a reader sees one pass's file
or another's; between concurrent processes the last writer wins, which costs at most a hash. Deleting it is safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from rewarm import landing
from rewarm.landing import Arrival
from rewarm.store import resolve_store

FOLDER = "fingerprints"
# A file changed less than this before it was hashed is not cached: filesystems stamp times from a clock that
# ticks every few milliseconds (every second on some), and a second write within the same tick, of the same
# size, would keep the stamp. The settle period (5 s by default) has usually passed before a file is hashed.
FRESH_SECONDS = 1.0

log = logging.getLogger("rewarm.fingerprints")


@dataclass
class Cache:
    """One landing location's cached hashes, as loaded, plus what this pass hashed."""

    path: Path
    location: str  # canonical landing URL, kept in the file for whoever reads it
    entries: dict[str, tuple[str, str]] = field(default_factory=dict)  # file name -> (stamp, sha256)
    changed: bool = False


def cache_path(home: Path, location: str) -> Path:
    """Where LOCATION's cache lives under HOME: one file per canonical landing URL."""
    url = landing.canonical(location)
    return home / FOLDER / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def load(location: str, home: Path | None = None) -> Cache:
    """LOCATION's cache from HOME (REWARM_HOME's by default); empty when missing, or unreadable (logged)."""
    path = cache_path(home if home is not None else resolve_store().home, location)
    cache = Cache(path, landing.canonical(location))
    try:
        cache.entries = _parse(path.read_text())
    except FileNotFoundError:  # the first pass over this location, or the cache was deleted
        return cache
    except (OSError, ValueError) as exc:
        log.warning("fingerprint cache %s unreadable (%s); every file is hashed and the cache rewritten", path, exc)
    return cache


def _parse(text: str) -> dict[str, tuple[str, str]]:
    data = json.loads(text)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(_is_entry(v) for v in files.values()):
        raise ValueError('not a fingerprint cache: expected {"files": {name: [stamp, sha256]}}')
    return {name: (stamp, sha) for name, (stamp, sha) in files.items()}


def _is_entry(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(x, str) for x in value)


def sha256(cache: Cache, arrival: Arrival) -> str:
    """ARRIVAL's content hash: the cached one while its stamp is unchanged, else read and hashed (and cached once
    the file has stopped changing). Raises as landing.fingerprint does (FileNotFoundError, PermissionError)."""
    entry = cache.entries.get(arrival.name)
    if arrival.stamp is not None and entry is not None and entry[0] == arrival.stamp:
        return entry[1]
    started = time.time()
    sha = landing.fingerprint(arrival.uri)
    if arrival.stamp is not None and arrival.changed_at < started - FRESH_SECONDS:
        cache.entries[arrival.name] = (arrival.stamp, sha)
        cache.changed = True
    elif cache.entries.pop(arrival.name, None) is not None:  # an entry for what the file held before
        cache.changed = True
    return sha


def save(cache: Cache, listed: Sequence[Arrival]) -> None:
    """Write CACHE, keeping only the files in LISTED (the others are gone), if anything changed; a cache that
    cannot be written is logged and left as it was."""
    gone = cache.entries.keys() - {a.name for a in listed}
    if not gone and not cache.changed:
        return
    for name in gone:
        del cache.entries[name]
    try:
        _write(cache.path, json.dumps({"location": cache.location, "files": cache.entries}))
    except OSError as exc:
        log.warning("fingerprint cache %s not written (%s); the next pass hashes those files again", cache.path, exc)
    cache.changed = False


def _write(path: Path, text: str) -> None:
    """Write TEXT to PATH whole: a uniquely named temporary file in the same folder, then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def cached(location: str, listed: Sequence[Arrival], home: Path | None = None) -> Iterator[Callable[[Arrival], str]]:
    """Hash LOCATION's arrivals through its cache: yields a function from an arrival to its SHA-256 (see sha256);
    on leaving, the cache keeps only the LISTED files and is saved."""
    cache = load(location, home)
    try:
        yield partial(sha256, cache)
    finally:
        save(cache, listed)
