"""Locations rewarm reads and writes: a local folder, a file:// URL or any fsspec URL (s3://, gcs://, memory://);
and the model a location belongs to (a snapshot history is one model's own)."""

from __future__ import annotations

import errno
import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import fsspec

from rewarm.errors import RewarmError

# The owner record inside an owned location. The leading "_" marks it as no data: the history listing
# (rewarm/snapshots.py) and the landing scan (rewarm/landing.py) both pass over such names.
OWNER_FILE = "_rewarm-owner.json"


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of LOCATION and the path inside it."""
    if is_remote(location):
        return fsspec.core.url_to_fs(location)
    return fsspec.filesystem("file"), str(Path(location.removeprefix("file://")))


def join(location: str, name: str) -> str:
    """LOCATION/NAME, keeping a local location a plain path."""
    if is_remote(location):
        return f"{location.rstrip('/')}/{name}"
    return str(Path(location.removeprefix("file://")) / name)


def canonical(location: str) -> str:
    """One spelling per location, to compare two: an absolute local path ('file://', '..', symlinks and a
    trailing '/' resolved), or the URL as fsspec writes it back."""
    if is_remote(location):
        try:
            fs, path = fsspec.core.url_to_fs(location)
        except (ImportError, ValueError):  # its filesystem is not installed here, or unknown: compare the text
            return location.rstrip("/")
        return fs.unstrip_protocol(path.rstrip("/"))
    return str(Path(location.removeprefix("file://")).resolve())


def write_atomic(location: str, data: bytes) -> None:
    """Write DATA to LOCATION so that a reader sees all of it or nothing: locally a temporary name, then a
    rename; an object store's single PUT is already all or nothing."""
    fs, path = filesystem(location)
    if is_remote(location):
        fs.pipe_file(path, data)
        return
    tmp = f"{path}.partial"
    fs.pipe_file(tmp, data)
    fs.mv(tmp, path)


def create_once(location: str, data: bytes) -> bool:
    """Write DATA to LOCATION, whole, unless a file is there already; True when this call wrote it.

    Of two writers at once exactly one wins where the store can tell: locally (a hard link), and on an object
    store with conditional writes (s3fs sends S3's If-None-Match). Elsewhere fsspec checks, then writes."""
    fs, path = filesystem(location)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    try:
        if is_remote(location):
            _pipe_once(fs, path, data)
        else:
            _publish_once(path, data)
    except FileExistsError:
        return False
    return True


def _pipe_once(fs, path: str, data: bytes, tries: int = 3) -> None:
    """A conditional create on an object store; S3 answers two racing ones with 409 ConditionalRequestConflict
    (not "exists"), which is asked again: then the winner's object is there and this one is refused."""
    for attempt in range(tries):
        try:
            fs.pipe_file(path, data, mode="create")
            return
        except FileExistsError:
            raise
        except OSError as exc:
            if "ConditionalRequestConflict" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _publish_once(path: str, data: bytes) -> None:
    """Write DATA under a name of its own, then hard-link it to PATH: a link fails where PATH exists (a rename
    would replace it), and unlike open(PATH, 'x') no reader ever sees PATH half written."""
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    with open(tmp, "xb") as fh:
        fh.write(data)
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        with open(path, "xb") as fh:  # a filesystem without hard links (FAT, some network mounts)
            fh.write(data)
    finally:
        os.remove(tmp)


@dataclass(frozen=True)
class Owner:
    """The model a location belongs to; when, from which host and as which user it was claimed, to inform."""

    model: str
    claimed_at: str = ""
    host: str = ""
    user: str = ""

    @classmethod
    def now(cls, model: str) -> Owner:
        """MODEL's claim, made here and now."""
        return cls(model, datetime.now(UTC).isoformat(timespec="seconds"), socket.gethostname(), user())


def user() -> str:
    """This process's user name; its uid where the uid has no name (some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def owner(location: str) -> Owner | None:
    """The owner recorded in LOCATION, or None where no model has claimed it."""
    marker = join(location, OWNER_FILE)
    fs, path = filesystem(marker)
    try:
        raw = json.loads(fs.cat_file(path))
        return Owner(str(raw["model"]), *(str(raw.get(k, "")) for k in ("claimed_at", "host", "user")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RewarmError(
            f'{marker}: unreadable ({exc!r}); write {{"model": "NAME"}} into it, NAME the model whose snapshots '
            "these are (or delete it: the next model to keep a snapshot there claims the location)"
        ) from exc


def check_owner(location: str, model: str, setting: str) -> None:
    """Refuse MODEL a LOCATION another model owns: a configuration error (named by SETTING), not bad data."""
    found = owner(location)
    if found is not None and found.model != model:
        raise RewarmError(
            f"{location} belongs to model {found.model!r} (claimed {found.claimed_at} by {found.user}@{found.host}, "
            f"recorded in {OWNER_FILE}), so model {model!r} may not keep its snapshots there: two models' "
            f"snapshots would mix; give each model its own {setting}"
        )


def claim(location: str, model: str, setting: str) -> None:
    """Record MODEL as the owner of LOCATION unless a model is recorded already, then check the owner.

    A location already in use without an owner record (made by a rewarm from before owners were recorded) is
    claimed by the first model that claims it. Of several claiming at once, the one whose record is read back
    proceeds; the others get check_owner's error."""
    if owner(location) is None:
        create_once(join(location, OWNER_FILE), json.dumps(asdict(Owner.now(model)), indent=2).encode())
    check_owner(location, model, setting)  # read back: another claim may have come first
