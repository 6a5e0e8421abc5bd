"""Compressed CSVs (jan.csv.gz, .bz2, .xz, .zip) and tab-separated ones (.tsv, .tsv.gz) are snapshots, read as
the CSV inside and kept as they landed; files in the landing location that rewarm does not read (a spreadsheet,
a JSON file) are named, not passed over in silence (rewarm/reading.py, rewarm/landing.py, rewarm/watcher.py,
`rewarm retrain`, `rewarm status`)."""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient

from rewarm import registry
from rewarm.cli import main
from rewarm.config import DataSection, load_settings
from rewarm.errors import SnapshotRejected
from rewarm.landing import absent_note, is_snapshot_name, survey, unread_note
from rewarm.snapshots import inspect, keep, list_history, load
from rewarm.status import render_service
from rewarm.watcher import Watcher

SPEC = DataSection(target="y", task="binary", numeric=("x",), categorical=("c",), min_rows=10)


def _csv(n: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "c": rng.choice(["a", "b"], n), "y": rng.integers(0, 2, n)})
    frame.loc[3, "x"] = np.nan  # an empty cell: a missing number, read as in a plain CSV
    return frame.to_csv(index=False).encode()


def _zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tabs(data: bytes) -> bytes:
    return data.replace(b",", b"\t")  # no field holds a comma


COMPRESS = {
    ".tsv": _tabs,
    ".tsv.gz": lambda data: gzip.compress(_tabs(data)),
    ".csv.gz": gzip.compress,
    ".csv.bz2": bz2.compress,
    ".csv.xz": lzma.compress,
    ".csv.zip": lambda data: _zipped({"jan.csv": data}),
}
SPEC_NULLABLE = SPEC.model_copy(update={"nullable": ("x",)})


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_compressed_or_tab_separated_csv_reads_as_the_csv_inside_and_is_kept_as_it_landed(
    tmp_path: Path, suffix: str
) -> None:
    plain = land(tmp_path / "plain.csv", _csv())
    packed = land(tmp_path / f"jan{suffix}", COMPRESS[suffix](_csv()))
    assert is_snapshot_name(packed.name) and is_snapshot_name(packed.name.upper())

    expected = inspect(str(plain), SPEC_NULLABLE, tmp_path / "other-history").frame
    landed = inspect(str(packed), SPEC_NULLABLE, tmp_path / "history")
    pd.testing.assert_frame_equal(landed.frame, expected)
    assert landed.frame["x"].isna().sum() == 1

    info = keep(landed, split_scheme=2)
    assert Path(info.stored).read_bytes() == packed.read_bytes()  # the file's own bytes, and its identity
    assert info.stored.endswith(suffix) and info.encoding == "utf-8"
    pd.testing.assert_frame_equal(load(info, SPEC_NULLABLE), expected)  # a later round reads it back
    assert [k.sha256 for k in list_history(tmp_path / "history")] == [info.sha256]


def test_a_zip_from_a_mac_holds_its_csv_beside_the_archivers_files(tmp_path: Path) -> None:
    members = {"jan.csv": _csv(), "__MACOSX/._jan.csv": b"\x00\x05", ".DS_Store": b"\x00", "data/": b""}
    path = land(tmp_path / "jan.csv.zip", _zipped(members))
    assert len(inspect(str(path), SPEC_NULLABLE, tmp_path / "history").frame) == 40


def test_the_encoding_of_the_csv_inside_is_what_counts(tmp_path: Path) -> None:
    text = "x,c,y\n" + "".join(f"{i}.5,{'é' if i % 2 else 'ü'},{i % 2}\n" for i in range(20))
    marked = land(tmp_path / "excel.csv.gz", gzip.compress(b"\xef\xbb\xbf" + text.encode()))  # Excel's CSV UTF-8
    assert list(inspect(str(marked), SPEC, tmp_path / "h1").frame.columns) == ["x", "c", "y"]

    latin = land(tmp_path / "latin.csv.gz", gzip.compress(text.encode("cp1252")))
    with pytest.raises(SnapshotRejected, match="is not utf-8 text .* on line 2"):
        inspect(str(latin), SPEC, tmp_path / "h2")
    windows = SPEC.model_copy(update={"encoding": "cp1252"})
    assert set(inspect(str(latin), windows, tmp_path / "h3").frame["c"]) == {"é", "ü"}


def _damaged(data: bytes) -> bytes:
    """DATA with its middle overwritten: the archive's frame is intact, its stream is not."""
    middle = len(data) // 2
    return data[:middle] + bytes(64) + data[middle + 64 :]


def _encrypted(data: bytes) -> bytes:
    """A zip whose member says it is encrypted (bit 0 of its flags), as a password-protected archive's does."""
    raw = bytearray(_zipped({"jan.csv": data}))
    for header, flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory entry
        at = raw.index(header) + flags
        raw[at] |= 1
    return bytes(raw)


@pytest.mark.parametrize(
    ("name", "data", "fragments"),
    [
        ("cut.csv.gz", gzip.compress(_csv())[:-30], ["cut.csv.gz: cannot be decompressed as gzip", "land"]),
        ("garbled.csv.gz", _damaged(gzip.compress(_csv(400))), ["garbled.csv.gz: cannot be decompressed as gzip"]),
        ("garbled.csv.zip", _damaged(_zipped({"a.csv": _csv(400)})), ["cannot be decompressed as zip"]),
        ("locked.csv.zip", _encrypted(_csv()), ["cannot be decompressed as zip", "encrypted"]),
        ("sheet.csv.zip", _zipped({"jan.xlsx": b"PK"}), ["holds 'jan.xlsx', not a CSV"]),
        ("nothing.csv.gz", gzip.compress(b""), ["the CSV inside is empty (0 bytes)"]),
        ("commas.tsv", _csv(), ["the header has no tab, so the file looks comma-separated", "name it .csv"]),
        ("plain.csv.gz", _csv(), ["plain.csv.gz: cannot be decompressed as gzip"]),
        ("two.csv.zip", _zipped({"a.csv": _csv(), "b.csv": _csv(seed=1)}), ["holds 2 file(s) ['a.csv', 'b.csv']"]),
        ("none.csv.zip", _zipped({}), ["holds 0 file(s)"]),
        ("jan.xlsx", b"PK\x03\x04", ["unsupported format", ".csv.gz", "save each sheet as 'CSV UTF-8'"]),
    ],
)
def test_a_file_that_cannot_be_decompressed_is_rejected_with_its_name(
    tmp_path: Path, name: str, data: bytes, fragments: list[str]
) -> None:
    path = land(tmp_path / name, data)
    with pytest.raises(SnapshotRejected) as info:
        inspect(str(path), SPEC, tmp_path / "history")
    for fragment in fragments:
        assert fragment in str(info.value), fragment
    assert str(info.value).startswith(str(path))
    assert path.read_bytes() == data and list_history(tmp_path / "history") == []


def test_survey_names_the_files_it_does_not_read(tmp_path: Path) -> None:
    for name in ["jan.csv.gz", "feb.parquet", "notes.xlsx", "readme.txt", "mar.csv.partial", ".hidden.json"]:
        land(tmp_path / name, b"x")
    snapshots, unread = survey(str(tmp_path))
    assert [a.name for a in snapshots] == ["jan.csv.gz", "feb.parquet"]
    assert unread == ["notes.xlsx", "readme.txt"]  # a file still being written is not named
    note = unread_note(unread)
    assert note.startswith("2 file(s) not read as snapshots (notes.xlsx, readme.txt): land Parquet")
    assert "CSV UTF-8" in note
    assert unread_note([]) == ""
    assert unread_note([f"f{i}.json" for i in range(7)]).startswith("7 file(s) not read as snapshots (f0.json,")
    assert "and 2 more" in unread_note([f"f{i}.json" for i in range(7)])


def test_a_landing_location_that_does_not_exist_is_named_as_such(tmp_path: Path, memory_folder: str) -> None:
    assert absent_note(str(tmp_path)) == "" and absent_note(tmp_path.as_uri()) == ""
    for missing in (str(tmp_path / "landnig"), f"{memory_folder}/landnig"):
        assert absent_note(missing) == " (it does not exist: check data.landing in rewarm.toml)"
    service = {"landing": "data/landnig", "pending": [], "unread": [], "absent": absent_note(str(tmp_path / "x"))}
    service |= {"quarantined": [], "quarantine": "q", "runs": None}
    assert render_service(service).splitlines()[0] == (
        "landing data/landnig: 0 pending snapshot(s) (it does not exist: check data.landing in rewarm.toml)"
    )


def test_the_watcher_warns_once_about_a_file_it_does_not_read(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    watcher = Watcher(load_settings(write_config(tmp_path, name="formats-watch")), home, emit=lambda event: None)
    land(landing / "march.xlsx", b"PK")
    with caplog.at_level(logging.WARNING, logger="rewarm.watcher"):
        watcher.check(now=1e12)
        watcher.check(now=1e12 + 1)
        land(landing / "april.json", b"{}")
        watcher.check(now=1e12 + 2)
    warned = [r.getMessage() for r in caplog.records if "not read as snapshots" in r.getMessage()]
    assert len(warned) == 2, warned
    assert "(march.xlsx)" in warned[0] and "(april.json)" in warned[1]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_retrain_takes_gzipped_months_and_names_what_it_passed_over(
    tmp_path: Path, home: Path, flights: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, name="formats-cli")
    config.write_text(config.read_text() + "\n[service]\nsettle_seconds = 0\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    for month in (1, 2):
        land(landing / f"m{month}.csv.gz", gzip.compress(small_month(flights, month).to_csv(index=False).encode()))
    land(landing / "m3.xlsx", b"PK\x03\x04")

    assert main(["retrain", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert "formats-cli v1: first model" in captured.out and "formats-cli v2: " in captured.out
    assert "1 file(s) not read as snapshots (m3.xlsx)" in captured.err
    assert registry.current_version(MlflowClient(), "formats-cli", registry.CHAMPION) in (1, 2)
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "0 pending snapshot(s)" in out and "1 file(s) not read as snapshots (m3.xlsx)" in out
    assert (landing / "m3.xlsx").read_bytes() == b"PK\x03\x04"  # left where it is
