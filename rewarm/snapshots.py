"""Snapshots: read a landed file, check it against the dataset spec, keep it in the history, split it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rewarm import locations, repeats, schema, splits
from rewarm.config import DataSection
from rewarm.errors import SnapshotRejected
from rewarm.packing import text_head
from rewarm.reading import (
    as_admitted,
    label_words,
    read_bytes,
    read_raw,
    snapshot_format,
    text_encoding,
    warn_missing_as_text,
)

SKETCH = ".rows-sketch"  # beside a kept snapshot: its rows' sketch (rewarm/repeats.py)
log = logging.getLogger("rewarm.snapshots")


@dataclass(frozen=True)
class SnapshotInfo:
    """An admitted snapshot: where it came from, its content hash and its copy in the history."""

    name: str  # file name as it landed
    source: str  # URI it was read from
    sha256: str
    rows: int
    stored: str  # path of the kept copy
    sequence: int  # order of admission, 1-based
    admitted_at: str
    # The split scheme (rewarm/splits.py) of the round that admitted it: a rerun splits it the same way. Records
    # written before schemes were recorded used scheme 1; None: not decided yet (a snapshot not yet kept).
    split_scheme: int | None = 1
    # A CSV's text encoding as it was read when admitted (reading.text_encoding), so that a later data.encoding
    # never re-reads it otherwise; None: a Parquet file, or a CSV kept before encodings were recorded (UTF-8).
    encoding: str | None = None
    # A CSV's separator and decimal mark as read when admitted (data.separator, data.decimal), for the same reason;
    # None: a Parquet file, or a CSV kept before they were settings (',' and '.').
    separator: str | None = None
    decimal: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def normalise(df: pd.DataFrame, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """A frame as training reads it: NUMERIC columns as float64, Arrow-backed columns back to numpy (as
    pandas reads Parquet: floats, integers and booleans; integers or booleans with nulls as floats)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if col in numeric:
            out[col] = schema.as_numbers(s)
        elif isinstance(s.dtype, pd.ArrowDtype):
            whole = s.dtype.numpy_dtype.kind in "iub" and not s.isna().any()
            out[col] = s.astype(s.dtype.numpy_dtype) if whole else schema.as_numbers(s)
    return out


def _numbers(spec: DataSection) -> tuple[str, ...]:
    return (*spec.numeric, *([spec.target] if spec.task == "regression" else []))


def parse(data: bytes, uri: str, spec: DataSection | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Parse snapshot bytes (a snapshot already validated, such as a kept copy, read in its ENCODING) ready for
    training. Rows without a target are left out: a kept snapshot holds them only if data.unlabelled was "drop"
    when it was admitted."""
    if spec is None:
        return normalise(read_raw(data, uri, encoding=encoding))
    return normalise(drop_unlabelled(read_raw(data, uri, spec, encoding), spec)[0], _numbers(spec))


def drop_unlabelled(raw: pd.DataFrame, spec: DataSection) -> tuple[pd.DataFrame, int]:
    """RAW without the rows whose target is missing (schema.missing_target), and how many those were. A class
    target that was read as floats only because of its gaps (0/1 with empty cells) reads as whole numbers again,
    as the same labels arrive in a file without gaps."""
    if spec.target not in raw.columns:
        return raw, 0  # the schema check names the missing column
    missing = schema.missing_target(raw[spec.target]).to_numpy(bool)
    if not missing.any():
        return raw, 0
    out = raw.loc[~missing].reset_index(drop=True)
    labels = out[spec.target]
    if spec.task != "regression" and pd.api.types.is_float_dtype(labels.dtype) and len(labels):
        values = labels.to_numpy(np.float64)
        if (values == np.round(values)).all():
            out[spec.target] = values.astype(np.int64)
    return out, int(missing.sum())


def validate(df: pd.DataFrame, spec: DataSection, uri: str, classes: tuple = ()) -> None:
    """Reject a snapshot that cannot be trained on, naming the file, the column and the count of rows."""
    found = schema.problems(df, spec, classes)
    if found:
        raise SnapshotRejected.of(uri, found)


@dataclass(frozen=True)
class Landed:
    """A validated snapshot: its record, rows and bytes; kept in the history only once a round accepts it."""

    info: SnapshotInfo
    frame: pd.DataFrame
    data: bytes
    kept: bool
    sketch: repeats.RowSketch | None = None  # of a snapshot not yet kept
    model: str | None = None  # the model keeping it, which claims the history (None: nobody claims it)
    unlabelled: int = 0  # rows left out for a missing target (data.unlabelled = "drop"); FRAME holds the rest
    unlabelled_words: str = ""  # how many of those a CSV wrote as words ('None', 'NA'), which may be labels


def inspect(
    uri: str,
    spec: DataSection,
    history: str | Path,
    classes: tuple = (),
    data: bytes | None = None,
    sha: str | None = None,
    model: str | None = None,
) -> Landed:
    """Read (unless DATA holds its bytes, and SHA their SHA-256) and validate URI and give it its place in HISTORY
    (a folder or an fsspec URL), writing nothing yet. A HISTORY owned by another model than MODEL is refused
    first, with a RewarmError: the configuration is at fault, not the snapshot."""
    if model:
        locations.check_owner(str(history), model, "data.history")
    data = read_bytes(uri) if data is None else data
    sha = sha or hashlib.sha256(data).hexdigest()
    kept = list_history(history)
    same = next((info for info in kept if info.sha256 == sha), None)
    written, encoding = as_admitted(spec, same) if same else (spec, None)  # a rerun reads it as its round did
    raw = read_raw(data, uri, written, encoding)
    missing = spec.target in raw and bool(schema.missing_target(raw[spec.target]).any())
    words = label_words(data, uri, written, encoding) if missing else ""
    raw, unlabelled = _labelled(raw, spec, uri, classes, words)
    warn_missing_as_text(raw, spec, uri)
    df = normalise(raw, _numbers(spec))
    unlabelled_as = {"unlabelled": unlabelled, "unlabelled_words": words}
    if same is not None:
        _check_newest(same, kept[-1], uri)
        return Landed(same, df, data, kept=True, model=model, **unlabelled_as)
    rows = repeats.frame_rows(df, [spec.target, *spec.numeric, *spec.categorical])
    fp = repeats.sketch(rows)
    _check_not_copied(uri, rows, fp, kept, spec)
    sequence = max((i.sequence for i in kept), default=0) + 1
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    stored = locations.join(str(history), f"{sequence:05d}-{sha[:12]}-{name}")
    csv = snapshot_format(uri) == "csv"
    encoding = text_encoding(text_head(data, uri, 4), spec) if csv else None
    info = SnapshotInfo(name, uri, sha, len(df), stored, sequence, datetime.now(UTC).isoformat(), None, encoding)
    info = replace(info, separator=spec.separator, decimal=spec.decimal) if csv else info
    return Landed(info, df, data, kept=False, sketch=fp, model=model, **unlabelled_as)


def _labelled(
    raw: pd.DataFrame, spec: DataSection, uri: str, classes: tuple, words: str = ""
) -> tuple[pd.DataFrame, int]:
    """RAW validated, without its unlabelled rows where data.unlabelled drops them, and how many those were. WORDS
    (reading.label_words) follows what says the target is missing, where a CSV wrote it as words."""
    unlabelled = 0
    if spec.unlabelled == "drop":
        raw, unlabelled = drop_unlabelled(raw, spec)
        if unlabelled and raw.empty:
            raise SnapshotRejected(
                f"{uri}: none of its {unlabelled} rows has a target ({spec.target!r} is missing in every row{words}); "
                "land it again once its labels have arrived",
                kind="unlabelled",
            )
    try:
        validate(raw, spec, uri, classes)
    except SnapshotRejected as exc:
        if words and any(p.kind == "null" and p.column == spec.target for p in exc.problems):
            raise SnapshotRejected(f"{exc}{words}", exc.problems, exc.kind) from None
        if not unlabelled:
            raise
        note = f' ({unlabelled} unlabelled row(s) were dropped first: data.unlabelled = "drop")'
        raise SnapshotRejected(f"{exc}{note}", exc.problems, exc.kind) from None
    return raw, unlabelled


def _check_not_copied(uri: str, rows, fp: repeats.RowSketch, kept: list[SnapshotInfo], spec: DataSection) -> None:
    """Reject a snapshot that is mostly earlier ones again (see rewarm/repeats.py): the shares of its ordered runs
    found in each kept snapshot add up, so a cumulative dump of several earlier snapshots is caught too."""
    found, copied = repeats.shingles(rows), []
    for info in reversed(kept):
        earlier = _sketch(info)
        if earlier is None:
            continue  # kept before row sketches were recorded
        if earlier.rows_digest == fp.rows_digest:
            raise SnapshotRejected(
                f"{uri}: holds exactly the rows of {info.name} (round {info.sequence}) in another order; it was "
                "landed twice over: remove it, or land the new rows instead",
                kind="repeated_snapshot",
            )
        share = repeats.share_copied(found, earlier)
        if share is not None and share >= 0.05:
            copied.append((info, share))
    total = min(1.0, sum(share for _, share in copied))
    if total > spec.max_repeated_fraction:
        names = ", ".join(f"{i.name} (round {i.sequence})" for i, _ in sorted(copied, key=lambda c: c[0].sequence))
        raise SnapshotRejected(
            f"{uri}: {total:.0%} of its rows repeat {names} in the same order, above "
            f"data.max_repeated_fraction={spec.max_repeated_fraction}; a snapshot holds new rows only: land what "
            "is new since then (or raise the limit if the repeats are real)",
            kind="repeated_snapshot",
        )


def _sketch(info: SnapshotInfo) -> repeats.RowSketch | None:
    fs, path = locations.filesystem(f"{info.stored}{SKETCH}")
    try:
        return repeats.from_json(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError) as exc:  # torn by a crash: the check is skipped for that snapshot only
        log.warning("row sketch of %s unreadable (%s); not compared", info.name, exc)
        return None


def keep(landed: Landed, split_scheme: int = splits.CURRENT) -> SnapshotInfo:
    """Write a landed snapshot into the history (once), recording the SPLIT_SCHEME its round used; a crash leaves
    no half entry. Its model claims the history first (a history without an owner record, even one already
    holding snapshots kept by an older rewarm, goes to the first model that keeps one there)."""
    if landed.model:  # before anything is written: a model refused here leaves the history as it was
        locations.claim(landed.info.stored.rsplit("/", 1)[0], landed.model, "data.history")
    if landed.kept:
        return landed.info
    info = replace(landed.info, split_scheme=split_scheme)
    stored = info.stored
    fs, path = locations.filesystem(stored)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    # The data first, then the record that makes the entry count; each is written whole or not at all, so
    # a crash leaves at most a data file without a record, which no listing sees and the rerun rewrites.
    locations.write_atomic(stored, landed.data)
    if landed.sketch is not None:
        locations.write_atomic(f"{stored}{SKETCH}", repeats.to_json(landed.sketch))
    locations.write_atomic(f"{stored}.json", json.dumps(info.to_dict(), indent=2).encode())
    return info


def admit(
    uri: str, spec: DataSection, history: Path | str, classes: tuple = (), model: str | None = None
) -> tuple[SnapshotInfo, pd.DataFrame]:
    """Validate URI and keep it in HISTORY (MODEL's) at once; a file already admitted (same content) is not
    copied twice."""
    landed = inspect(uri, spec, history, classes, model=model)
    return keep(landed), landed.frame


def _check_newest(info: SnapshotInfo, newest: SnapshotInfo, uri: str) -> None:
    """Only the newest snapshot may be retrained again: later champions trained on an older one's holdout."""
    if info.sequence != newest.sequence:
        raise SnapshotRejected(
            f"{uri}: same content as {info.name}, admitted as round {info.sequence} (sha256 {info.sha256[:12]}); "
            f"later rounds (up to {newest.name}) trained on its holdout rows, so a new comparison on them would "
            "flatter the champion; land new data instead",
            kind="already_trained",
        )


def list_history(history: str | Path) -> list[SnapshotInfo]:
    """Admitted snapshots in HISTORY (a folder or an fsspec URL), oldest first; an entry whose data file is
    missing is skipped."""
    fs, folder = locations.filesystem(str(history))
    fs.invalidate_cache(folder)  # an object store's listing cache would hide records other workers wrote
    if not fs.isdir(folder):
        return []
    names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)}  # no glob: "[" in a path
    infos = []
    # A leading "_" or ".": the owner record (rewarm/locations.py) or a temporary file, never a snapshot's record.
    for record in sorted(n for n in names if n.endswith(".json") and not n.startswith(("_", "."))):
        try:
            info = SnapshotInfo(**json.loads(fs.cat_file(f"{folder.rstrip('/')}/{record}")))
        except (ValueError, TypeError) as exc:  # a record torn by a crash (before writes became atomic)
            log.warning("history record %s in %s unreadable (%s); skipped", record, history, exc)
            continue
        # The data is the file beside its record, wherever the history has been moved or mounted since.
        data = record.removesuffix(".json")
        if data in names:
            infos.append(replace(info, stored=locations.join(str(history), data)))
    return infos


def load(info: SnapshotInfo, spec: DataSection | None = None) -> pd.DataFrame:
    """Read a kept snapshot back."""
    fs, path = locations.filesystem(info.stored)
    return parse(fs.cat_file(path), info.stored, *as_admitted(spec, info))
