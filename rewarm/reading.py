"""How snapshot bytes are read: the formats, what a CSV cell writes for a missing value, Parquet's nulls."""

from __future__ import annotations

import codecs
import io
import logging
from typing import TYPE_CHECKING

import fsspec
import pandas as pd

from rewarm.config import DataSection
from rewarm.csv_dialect import csv_separator, decimal_points, dialect, separator_hint
from rewarm.errors import SnapshotRejected
from rewarm.models.labels import texts
from rewarm.models.preprocess import NULL_TEXT
from rewarm.packing import CODECS, TEXT, file_name, text_bytes

if TYPE_CHECKING:
    from rewarm.snapshots import SnapshotInfo

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}  # a .tsv is tab-separated CSV
SUFFIXES = (*FORMATS, *(f"{t}{c}" for t in TEXT for c in CODECS))  # what a landing location's snapshots end with
WRITE_AS = (
    "land Parquet (.parquet) or CSV (.csv, or tab-separated .tsv) files; a CSV may be compressed (.csv.gz, .csv.bz2, "
    ".csv.xz, .csv.zip)"
)
log = logging.getLogger("rewarm.snapshots")


def snapshot_format(path: str) -> str:
    """Return 'parquet' or 'csv' from the file name, or reject it."""
    name = file_name(path)
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    if name.endswith(SUFFIXES):
        return "csv"
    raise SnapshotRejected(f"{path}: unsupported format; {WRITE_AS}{excel_hint(name)}", kind="format")


def excel_hint(name: str) -> str:
    """What to do with a spreadsheet, where NAME is one."""
    if name.lower().endswith((".xlsx", ".xls", ".xlsm", ".ods")):
        return " (a spreadsheet: save each sheet as 'CSV UTF-8', or write it with pandas' to_parquet)"
    return ""


def read_bytes(uri: str) -> bytes:
    """Read a local path or fsspec URL whole."""
    try:
        with fsspec.open(uri, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise SnapshotRejected(f"{uri}: no such file; check the path or the landing folder", kind="missing") from exc


# Text a CSV cell may hold for "no value" in a numeric column or the target (NULL_TEXT: served rows read it the
# same way). The NaN spellings are left out for numeric columns, so that a written-out NaN is reported as a NaN
# and not as a missing value.
NAN_TEXT = ["NaN", "nan", "-NaN", "-nan"]


def read_raw(data: bytes, uri: str, spec: DataSection | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Parse snapshot bytes as Parquet or CSV without converting anything the schema must still judge.

    Parquet floats stay Arrow-backed, so a null and a NaN remain different values. With SPEC, CSV feature
    columns are read as text: codes such as "007" keep their leading zeros, and numbers are checked before
    they are converted (an empty cell is a null, the text "nan" a NaN). ENCODING: a CSV's text encoding, where it
    was recorded when the file was kept (else text_encoding decides).
    """
    fmt = snapshot_format(uri)
    if not data:
        raise SnapshotRejected(
            f"{uri}: the file is empty (0 bytes); land it again once it is fully written", kind="empty"
        )
    data = text_bytes(data, uri) if fmt == "csv" else data
    if not data:
        raise SnapshotRejected(f"{uri}: the CSV inside is empty (0 bytes); land the complete file", kind="empty")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(data))
            return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if _keeps_nulls(t) else None)
        encoding = text_encoding(data, spec, encoding)
        written = dialect(uri, spec)
        if spec is None:
            return pd.read_csv(io.BytesIO(data), encoding=encoding, **written)
        features = [*spec.numeric, *spec.categorical]
        # Category codes are read as written ("NA" may be Namibia): only an empty cell is missing there.
        na = {c: NULL_TEXT for c in spec.numeric} | {c: [""] for c in spec.categorical}
        na |= {spec.target: target_missing(spec)}
        text = {"dtype": {c: "str" for c in features}, "keep_default_na": False, "na_values": na, **written}
        return decimal_points(pd.read_csv(io.BytesIO(data), encoding=encoding, **text), spec, uri)
    except SnapshotRejected:
        raise
    except UnicodeDecodeError as exc:
        raise SnapshotRejected(not_text(uri, data, text_encoding(data, spec, encoding)), kind="encoding") from exc
    except Exception as exc:  # pyarrow and the CSV parser raise many types for a corrupt file
        header = data[:4096].split(b"\n", 1)[0].decode(errors="replace")
        configured = spec.separator if spec is not None else ","
        hint = separator_hint(header, csv_separator(uri, spec), configured) if fmt == "csv" else ""
        message = f"{uri}: cannot be read as {fmt} ({exc}); land a complete, uncorrupted file{hint}"
        raise SnapshotRejected(message, kind="unreadable") from exc


def as_admitted(spec: DataSection | None, info: SnapshotInfo) -> tuple[DataSection | None, str | None]:
    """How a kept snapshot is read: SPEC with the CSV separator and decimal mark, and the encoding, it was admitted
    with, so that a later data.encoding, data.separator or data.decimal never re-reads it otherwise. A CSV kept
    before they were recorded was read as UTF-8 with ',' and '.'; a Parquet file has none of them."""
    if snapshot_format(info.stored) != "csv":
        return spec, None
    written = {"separator": info.separator or ",", "decimal": info.decimal or "."}
    return (spec.model_copy(update=written) if spec is not None else None), info.encoding or "utf-8"


# Byte-order marks, longest first (UTF-32-LE's begins with UTF-16-LE's): a file that starts with one says its encoding.
MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"))
MARKS += ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def text_encoding(data: bytes, spec: DataSection | None, recorded: str | None = None) -> str:
    """A CSV's encoding: RECORDED (the one it was kept with), else the one its byte-order mark names (a UTF-8
    mark is what Excel's 'CSV UTF-8' writes), else data.encoding (UTF-8 without a SPEC)."""
    if recorded:
        return recorded
    for mark, encoding in MARKS:
        if data.startswith(mark):
            return encoding
    return spec.encoding if spec is not None else "utf-8"


def not_text(uri: str, data: bytes, encoding: str) -> str:
    """Why a CSV cannot be decoded as ENCODING (data.encoding), where, and what to do."""
    try:
        data.decode(encoding)
        where = ""
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f" (byte {data[exc.start : exc.start + 1]!r} on line {line})"
    if codecs.lookup(encoding).name.startswith("utf-8"):
        fix = (
            "save it as UTF-8 (Excel: 'CSV UTF-8'), or set data.encoding to the encoding your files are written in "
            "(Excel's plain 'CSV' on Windows: 'cp1252')"
        )
    else:
        fix = f"save it as {encoding}, or set data.encoding to the encoding it is written in"
    return f"{uri}: is not {encoding} text{where}; {fix}"


def declared_labels(spec: DataSection) -> set[str]:
    """data.classes as text, as labels are compared everywhere: a class target's cell that spells one of them
    ('None', 'NA') is that label, not a missing value."""
    return set(texts(spec.classes)) if spec.task != "regression" else set()


def target_missing(spec: DataSection) -> list[str]:
    """The texts a CSV target cell reads as missing: NULL_TEXT and the NaN spellings, less data.classes' labels."""
    return [t for t in NULL_TEXT + NAN_TEXT if t not in declared_labels(spec)]


def label_words(data: bytes, uri: str, spec: DataSection, encoding: str | None = None) -> str:
    """Where a CSV class target's missing cells are written as words ('None', 'NA', 'null'...), which read as
    missing as pandas reads them, but may be labels (vcd's Arthritis: None, Some, Marked): say how many, and how
    to read them as labels. '' where there are none, or the target is a number or in Parquet."""
    if spec.task == "regression" or snapshot_format(uri) != "csv":
        return ""
    text = {"usecols": [spec.target], "dtype": str, "keep_default_na": False, "sep": csv_separator(uri, spec)}
    data = text_bytes(data, uri)
    cells = pd.read_csv(io.BytesIO(data), encoding=text_encoding(data, spec, encoding), **text)[spec.target]
    words = cells[cells.isin([t for t in target_missing(spec) if t])].value_counts()
    if words.empty:
        return ""
    labels = sorted({*cells[~cells.isin(NULL_TEXT + NAN_TEXT)], *declared_labels(spec), *words.index})
    written = ", ".join(f"{count} written {word!r}" for word, count in words.items())
    return (
        f" ({written}: if that is a label and not a missing value, list every label under data.classes, "
        f"e.g. classes = {labels[:12]!r})"
    )


def _keeps_nulls(arrow_type) -> bool:
    """Parquet types read Arrow-backed: numbers and booleans, whose nulls numpy would turn into NaN."""
    import pyarrow

    return (
        pyarrow.types.is_floating(arrow_type)
        or pyarrow.types.is_integer(arrow_type)
        or pyarrow.types.is_boolean(arrow_type)
    )


def warn_missing_as_text(raw: pd.DataFrame, spec: DataSection, uri: str) -> None:
    """A CSV category column holding what means missing or NaN in a number column ("NA", "NULL", "nan"...) is read
    as written ("NA" may be Namibia), so that text becomes a category of its own: say so, naming the file, the
    column and the count, where R's write.csv or pandas' astype(str) meant nulls."""
    if snapshot_format(uri) != "csv":
        return
    for column in spec.categorical:
        found = raw[column][raw[column].isin([t for t in NULL_TEXT + NAN_TEXT if t])]
        if len(found):
            fix = "write empty cells" + ("" if column in spec.nullable else f" and list {column!r} under data.nullable")
            log.warning(
                "%s: column %r has %d cell(s) written %s, read as a category of their own (in a CSV only an empty "
                "cell is a missing category: 'NA' may be Namibia); if they mean missing, %s",
                uri,
                column,
                len(found),
                sorted(set(found)),
                fix,
            )
