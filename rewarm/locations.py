"""Locations rewarm reads and writes: a local folder, a file:// URL or any fsspec URL (s3://, gcs://, memory://)."""

from __future__ import annotations

from pathlib import Path

import fsspec


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
