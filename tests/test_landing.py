"""The landing location and the ledger of what became of each snapshot (rewarm/landing.py, rewarm/ledger.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import fsspec
import pytest
from flight_snapshots import land

from rewarm import ledger
from rewarm.landing import Arrival, contains, fingerprint, is_snapshot_name, same_file, scan

CSV = b"carrier,distance,late\nUA,1400,1\nAA,760,0\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["2024-01.parquet", "jan.pq", "jan.csv", "JAN.CSV", "flights.v2.parquet"])
def test_finished_snapshot_names(name: str) -> None:
    assert is_snapshot_name(name)


@pytest.mark.parametrize(
    "name",
    [
        ".jan.parquet",  # hidden while written (rsync, many uploaders)
        "_jan.parquet",
        "~jan.csv",
        "jan.parquet.partial",
        "jan.parquet.tmp",
        "jan.csv.part",
        "jan.csv.crdownload",
        "jan.parquet.inprogress",
        "jan.parquet.filepart",
        "jan.parquet.PARTIAL",
    ],
)
def test_temporary_names_are_not_snapshots(name: str) -> None:
    assert not is_snapshot_name(name)


@pytest.mark.parametrize("name", ["jan.json", "jan.xlsx", "jan.parquet.gz", "parquet", "README"])
def test_unsupported_formats_are_not_snapshots(name: str) -> None:
    assert not is_snapshot_name(name)


# --- scan ----------------------------------------------------------------------------------------------


def test_a_folder_that_does_not_exist_holds_no_snapshots(tmp_path: Path) -> None:
    assert scan(str(tmp_path / "not-yet")) == []
    assert scan((tmp_path / "not-yet").as_uri()) == []


def test_scan_lists_only_finished_snapshot_files(tmp_path: Path) -> None:
    land(tmp_path / "jan.csv", CSV)
    land(tmp_path / "feb.csv.partial", CSV)
    land(tmp_path / ".mar.csv", CSV)
    land(tmp_path / "notes.txt", b"not data")
    (tmp_path / "sub.csv").mkdir()  # a folder with a snapshot's name is not a snapshot

    found = scan(str(tmp_path))

    assert [a.name for a in found] == ["jan.csv"]
    assert found[0].uri == str((tmp_path / "jan.csv").resolve())
    assert found[0].size == len(CSV)


def test_scan_orders_by_landing_time_not_by_name(tmp_path: Path) -> None:
    for name in ["c.csv", "a.csv", "b.csv"]:
        land(tmp_path / name, name.encode())

    found = scan(str(tmp_path))

    assert [a.name for a in found] == ["c.csv", "a.csv", "b.csv"]
    assert [a.changed_at for a in found] == sorted(a.changed_at for a in found)


def test_a_file_uri_scans_like_its_path(tmp_path: Path) -> None:
    for name in ["b.csv", "a.csv"]:
        land(tmp_path / name, name.encode())

    assert scan(tmp_path.as_uri()) == scan(str(tmp_path))


def test_a_copy_keeping_an_old_mtime_sorts_by_when_it_landed(tmp_path: Path) -> None:
    source = tmp_path / "archive" / "old.csv"
    source.parent.mkdir()
    source.write_bytes(CSV)
    os.utime(source, (946684800, 946684800))  # made in 2000
    landing = tmp_path / "landing"
    landing.mkdir()
    land(landing / "z-first.csv", b"first")

    shutil.copy2(source, landing / "a-second.csv")  # copy2 keeps the 2000 mtime

    assert (landing / "a-second.csv").stat().st_mtime == 946684800
    assert [a.name for a in scan(str(landing))] == ["z-first.csv", "a-second.csv"]


def test_a_rename_into_place_counts_as_landing(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    written_first = land(landing / "b.csv.partial", b"b")
    land(landing / "a.csv", b"a")

    os.replace(written_first, landing / "b.csv")

    assert [a.name for a in scan(str(landing))] == ["a.csv", "b.csv"]


def test_equal_times_are_ordered_by_name() -> None:
    later = Arrival("/l/a.csv", "a.csv", 1, 200.0)
    tie_b = Arrival("/l/b.csv", "b.csv", 1, 100.0)
    tie_a = Arrival("/l/c.csv", "c.csv", 1, 100.0)

    assert sorted([later, tie_a, tie_b], key=lambda a: a.order) == [tie_b, tie_a, later]


def test_scan_of_an_fsspec_folder(memory_folder: str) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{memory_folder}/jan.parquet", b"jan")
    fs.pipe(f"{memory_folder}/feb.csv.partial", b"feb")
    fs.pipe(f"{memory_folder}/nested/mar.csv", b"mar")  # not directly in the landing folder

    found = scan(memory_folder)

    assert [a.name for a in found] == ["jan.parquet"]
    assert found[0].size == 3
    assert found[0].changed_at > 0
    assert fingerprint(found[0].uri) == sha(b"jan")
    assert contains(memory_folder, found[0].uri)


def test_an_fsspec_folder_that_does_not_exist_holds_no_snapshots(memory_folder: str) -> None:
    assert scan(memory_folder) == []


# --- settled, contains, fingerprint ---------------------------------------------------------------------


def test_settled_once_nothing_changed_it_for_the_settle_period() -> None:
    arrival = Arrival("/l/a.csv", "a.csv", 1, changed_at=1000.0)

    assert not arrival.settled(5.0, now=1004.9)
    assert arrival.settled(5.0, now=1005.0)
    assert arrival.settled(5.0, now=2000.0)
    assert arrival.settled(0.0, now=1000.0)


def test_settled_without_now_uses_the_clock() -> None:
    assert Arrival("/l/a.csv", "a.csv", 1, changed_at=time.time() - 60).settled(5.0)
    assert not Arrival("/l/a.csv", "a.csv", 1, changed_at=time.time() + 60).settled(5.0)


def test_contains_local_paths(tmp_path: Path) -> None:
    landing = tmp_path / "landing"

    assert contains(str(landing), str(landing / "a.csv"))
    assert contains(str(landing) + "/", str(landing / "a.csv"))
    assert contains(landing.as_uri(), (landing / "a.csv").as_uri())
    assert contains(str(landing), str(landing / "sub" / ".." / "a.csv"))
    assert not contains(str(landing), str(landing / "sub" / "a.csv"))
    assert not contains(str(landing), str(tmp_path / "a.csv"))
    assert not contains(str(landing), str(tmp_path / "landing-2" / "a.csv"))


def test_contains_relative_paths_resolve_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert contains("landing", str(tmp_path / "landing" / "a.csv"))
    assert contains(str(tmp_path / "landing"), "landing/a.csv")


def test_contains_urls() -> None:
    assert contains("s3://bucket/landing", "s3://bucket/landing/a.parquet")
    assert contains("s3://bucket/landing/", "s3://bucket/landing/a.parquet")
    assert not contains("s3://bucket/landing", "s3://bucket/landing/sub/a.parquet")
    assert not contains("s3://bucket/landing", "s3://other/landing/a.parquet")
    assert not contains("s3://bucket/landing", "gs://bucket/landing/a.parquet")
    assert not contains("s3://bucket/landing", "/bucket/landing/a.parquet")
    assert not contains("/bucket/landing", "s3://bucket/landing/a.parquet")


def test_fingerprint_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # more than one of fingerprint's 1 MiB reads
    path = tmp_path / "big.parquet"
    path.write_bytes(data)

    assert fingerprint(str(path)) == hashlib.sha256(data).hexdigest()
    assert fingerprint(path.as_uri()) == hashlib.sha256(data).hexdigest()


def test_fingerprint_of_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")

    assert fingerprint(str(tmp_path / "empty.csv")) == hashlib.sha256(b"").hexdigest()


def test_fingerprint_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fingerprint(str(tmp_path / "gone.csv"))


# --- ledger: pending ------------------------------------------------------------------------------------


@pytest.fixture
def landed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Three snapshots landed in the order jan, feb, mar (names chosen so name order differs)."""
    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "home"))  # pending()'s fingerprint cache: not ./.rewarm
    contents = {"jan.csv": b"jan", "feb.csv": b"feb", "mar.csv": b"mar"}
    (tmp_path / "landing").mkdir()
    for name, data in contents.items():
        land(tmp_path / "landing" / name, data)
    return contents


def names(found: list[ledger.Pending]) -> list[str]:
    return [p.arrival.name for p in found]


def test_everything_settled_and_unseen_is_pending_oldest_first(tmp_path: Path, landed: dict[str, bytes]) -> None:
    found = ledger.pending(str(tmp_path / "landing"), {}, settle_seconds=0)

    assert names(found) == ["jan.csv", "feb.csv", "mar.csv"]
    assert [p.sha256 for p in found] == [sha(landed[n]) for n in names(found)]


def test_processed_content_is_not_pending(tmp_path: Path, landed: dict[str, bytes]) -> None:
    done = {sha(b"jan"): 1, sha(b"mar"): 3}

    assert names(ledger.pending(str(tmp_path / "landing"), done, settle_seconds=0)) == ["feb.csv"]


def test_files_still_settling_are_not_pending(tmp_path: Path, landed: dict[str, bytes]) -> None:
    assert ledger.pending(str(tmp_path / "landing"), {}, settle_seconds=3600) == []


def test_a_second_copy_of_the_same_content_is_pending_once(tmp_path: Path, landed: dict[str, bytes]) -> None:
    land(tmp_path / "landing" / "jan-again.csv", b"jan")

    found = ledger.pending(str(tmp_path / "landing"), {}, settle_seconds=0)

    assert names(found) == ["jan.csv", "feb.csv", "mar.csv"]


def test_before_keeps_only_snapshots_that_landed_earlier(tmp_path: Path, landed: dict[str, bytes]) -> None:
    feb = next(a for a in scan(str(tmp_path / "landing")) if a.name == "feb.csv")

    found = ledger.pending(str(tmp_path / "landing"), {}, settle_seconds=0, before=feb.order)

    assert names(found) == ["jan.csv"]


def test_pending_in_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert ledger.pending(str(tmp_path / "nowhere"), {}, settle_seconds=0) == []


def test_pending_in_an_fsspec_folder(memory_folder: str) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{memory_folder}/jan.csv", b"jan")

    found = ledger.pending(memory_folder, {}, settle_seconds=0)

    assert [(p.arrival.name, p.sha256) for p in found] == [("jan.csv", sha(b"jan"))]


def test_url_spellings_of_one_file_are_the_same_file() -> None:
    # fsspec lists memory:///landing as /landing; the configured spelling may have two slashes or three.
    assert same_file("memory://landing/a.parquet", "memory:///landing/a.parquet")
    assert contains("memory://landing", "memory:///landing/a.parquet")
    assert contains("memory:///landing/", "memory://landing/a.parquet")
    assert not same_file("memory:///landing/a.parquet", "memory:///landing/b.parquet")
