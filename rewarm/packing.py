"""Compressed and tab-separated CSV files: what a name says (jan.csv.gz, feb.tsv), the text inside, and writing one.

A snapshot's own bytes stay its identity (SHA-256) and are kept as landed; readers see the text inside. One table
serves reading and writing, so `rewarm predict --out x.csv.gz` writes what a snapshot of that name is read as.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from typing import BinaryIO

from rewarm.errors import SnapshotRejected

CODECS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
TEXT = (".csv", ".tsv")  # a .tsv is tab-separated
MEMBERS = (*TEXT, ".txt")  # what a zipped CSV may hold
OPENERS = {"gzip": lambda raw: gzip.GzipFile(fileobj=raw), "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}  # streams


def file_name(path: str) -> str:
    """The last part of a path or URL, lower-cased: what its format is read from."""
    return path.rstrip("/").rsplit("/", 1)[-1].lower()


def compression(path: str) -> str | None:
    """How a file's name says it is compressed ('gzip', 'bz2', 'xz', 'zip'), or None."""
    return next((method for suffix, method in CODECS.items() if file_name(path).endswith(suffix)), None)


def separator(path: str) -> str:
    """A CSV's field separator, from its name: a tab for .tsv (compressed or not), else a comma."""
    name = file_name(path)
    suffix = next((s for s in CODECS if name.endswith(s)), "")
    return "\t" if name.removesuffix(suffix).endswith(".tsv") else ","


def text_bytes(data: bytes, uri: str) -> bytes:
    """A CSV's text as written: DATA itself, or what its compression holds (a .zip must hold one CSV)."""
    return data if compression(uri) is None or not data else _read(data, uri, -1)


def text_head(data: bytes, uri: str, size: int) -> bytes:
    """The first SIZE bytes of a CSV's text, unpacking no more of DATA than that takes (a byte-order mark)."""
    return data[:size] if compression(uri) is None or not data else _read(data, uri, size)


def packed(text: bytes, path: str) -> bytes:
    """TEXT compressed as PATH's name says (a .zip holds one file, named as PATH without .zip); else TEXT."""
    method = compression(path)
    if method == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.rstrip("/").rsplit("/", 1)[-1][: -len(".zip")], text)
        return buffer.getvalue()
    return {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}.get(method, lambda t: t)(text)


def _read(data: bytes, uri: str, size: int) -> bytes:
    method = compression(uri)
    try:
        with _opened(data, uri, method) as fh:
            return fh.read(size)
    except SnapshotRejected:
        raise
    except Exception as exc:  # zlib, lzma, bz2, zipfile and the OS raise many types for a damaged archive
        raise SnapshotRejected(
            f"{uri}: cannot be decompressed as {method} ({type(exc).__name__}: {exc}); land the complete file, "
            "compressed as its name says",
            kind="unreadable",
        ) from exc


def _opened(data: bytes, uri: str, method: str | None) -> BinaryIO:
    raw = io.BytesIO(data)
    if method != "zip":
        return OPENERS[method](raw)
    archive = zipfile.ZipFile(raw)
    files = [i for i in archive.infolist() if not i.is_dir() and not _hidden(i.filename)]
    names = [i.filename for i in files]
    if len(files) != 1 or not names[0].lower().endswith(MEMBERS):
        what = f"{names[0]!r}, not a CSV" if len(files) == 1 else f"{len(files)} file(s) {names[:5]}"
        raise SnapshotRejected(
            f"{uri}: a zipped snapshot must hold one CSV, this one holds {what}; land each table as its own file",
            kind="unreadable",
        )
    return archive.open(files[0])


def _hidden(member: str) -> bool:
    """A zip member an archiver adds beside the data: macOS's __MACOSX/ folder and .DS_Store, any dot-file."""
    return any(part.startswith((".", "__MACOSX")) for part in member.split("/"))
