"""The fingerprint cache (rewarm/fingerprints.py): finding pending snapshots hashes only new or changed files, on
real files in a temporary folder, fsspec's memory filesystem and moto's S3 server."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from flight_snapshots import land, write_config

from rewarm import fingerprints, landing, ledger
from rewarm.fingerprints import FRESH_SECONDS, cache_path
from rewarm.landing import Arrival, object_stamp, scan


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def aged(location: Path | str) -> None:
    """Wait until every file in LOCATION last changed more than FRESH_SECONDS ago, so that their hashes are
    cached (a file hashed sooner after a change is hashed again next time)."""
    newest = max(a.changed_at for a in scan(str(location)))
    time.sleep(max(0.0, newest + FRESH_SECONDS + 0.05 - time.time()))


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URIs read and hashed, in order. A counter around the real landing.fingerprint: the reads have no
    seam of their own to count them through."""
    calls: list[str] = []
    real = landing.fingerprint

    def counting(uri: str) -> str:
        calls.append(uri)
        return real(uri)

    monkeypatch.setattr(landing, "fingerprint", counting)
    return calls


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "landing").mkdir()
    return tmp_path / "landing"


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A landing folder holding jan.csv, changed long enough ago for its hash to be cached (waited for once);
    the tests given it only read it."""
    folder = tmp_path_factory.mktemp("settled")
    (folder / "jan.csv").write_bytes(b"jan")
    aged(folder)
    return folder


@pytest.fixture
def cache_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def pending(folder: Path | str, home: Path) -> dict[str, str]:
    """Pending snapshots in FOLDER, name -> sha256, with the fingerprint cache in HOME."""
    return {p.arrival.name: p.sha256 for p in ledger.pending(str(folder), {}, settle_seconds=0, home=home)}


def cached_names(folder: Path | str, home: Path) -> set[str]:
    return set(json.loads(cache_path(home, str(folder)).read_text())["files"])


# --- local files ----------------------------------------------------------------------------------------


def test_cached_hashes_equal_real_ones_and_a_second_pass_reads_nothing(
    folder: Path, cache_home: Path, hashed: list[str]
) -> None:
    contents = {f"2013-{m:02d}.csv": os.urandom(1000 * m) for m in range(1, 6)}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    aged(folder)

    first = pending(folder, cache_home)
    assert len(hashed) == 5
    second = pending(folder, cache_home)

    assert first == second == {name: sha(data) for name, data in contents.items()}
    assert len(hashed) == 5  # no file read again
    assert cached_names(folder, cache_home) == set(contents)


def test_a_same_size_rewrite_with_its_mtime_put_back_is_hashed_again(
    folder: Path, cache_home: Path, hashed: list[str]
) -> None:
    path = folder / "jan.csv"
    path.write_bytes(b"carrier\nUA\n")
    before = path.stat()
    aged(folder)
    assert pending(folder, cache_home) == {"jan.csv": sha(b"carrier\nUA\n")}

    path.write_bytes(b"carrier\nAA\n")  # the same size, the same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -r` or `rsync -t` would
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    aged(folder)  # past the freshness rule: only the stamp's ctime can tell the rewrite apart

    assert pending(folder, cache_home) == {"jan.csv": sha(b"carrier\nAA\n")}
    assert len(hashed) == 2


def test_a_file_hashed_within_a_clock_tick_of_its_last_change_is_not_cached(
    folder: Path, cache_home: Path, hashed: list[str]
) -> None:
    land(folder / "jan.csv", b"jan")  # hashed at once: a second write in the same clock tick would keep its stamp

    pending(folder, cache_home)
    assert not cache_path(cache_home, str(folder)).exists()  # nothing cached, so nothing written
    aged(folder)
    pending(folder, cache_home)
    pending(folder, cache_home)

    assert len(hashed) == 2  # hashed while fresh, then once more and cached


def test_a_deleted_file_is_pruned_and_one_still_listed_is_kept(folder: Path, cache_home: Path) -> None:
    for name in ("jan.csv", "feb.csv", "mar.csv"):
        land(folder / name, name.encode())
    aged(folder)
    pending(folder, cache_home)
    (folder / "jan.csv").unlink()
    mar = next(a for a in scan(str(folder)) if a.name == "mar.csv")

    found = ledger.pending(str(folder), {}, settle_seconds=0, before=mar.order, home=cache_home)  # mar not hashed

    assert [(p.arrival.name, p.sha256) for p in found] == [("feb.csv", sha(b"feb.csv"))]
    assert cached_names(folder, cache_home) == {"feb.csv", "mar.csv"}  # jan is gone; mar, still listed, is kept


@pytest.mark.parametrize(
    "text", ["{not json", "", "[]", '{"files": []}', '{"files": {"jan.csv": [1, 2]}}', "\udcff"], ids=repr
)
def test_a_corrupt_cache_is_survived_and_rewritten(
    settled: Path, cache_home: Path, hashed: list[str], caplog: pytest.LogCaptureFixture, text: str
) -> None:
    folder = settled
    path = cache_path(cache_home, str(folder))
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode(errors="surrogateescape"))

    with caplog.at_level(logging.WARNING, logger="rewarm.fingerprints"):
        assert pending(folder, cache_home) == {"jan.csv": sha(b"jan")}

    assert f"fingerprint cache {path} unreadable" in caplog.text
    assert cached_names(folder, cache_home) == {"jan.csv"}
    pending(folder, cache_home)
    assert len(hashed) == 1


def test_a_home_that_cannot_be_written_costs_only_the_cache(
    settled: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "home-file"
    not_a_folder.write_text("a file where the home should be")

    with caplog.at_level(logging.WARNING, logger="rewarm.fingerprints"):
        assert pending(settled, not_a_folder) == {"jan.csv": sha(b"jan")}

    assert "not written" in caplog.text


def test_the_cache_lives_in_rewarm_home_one_file_per_landing_location(
    settled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "rewarm-home"))

    ledger.pending(settled.as_uri(), {}, settle_seconds=0)  # no HOME given: REWARM_HOME's

    [written] = (tmp_path / "rewarm-home" / "fingerprints").iterdir()  # no temporary file left beside it
    assert written == cache_path(tmp_path / "rewarm-home", str(settled))
    assert json.loads(written.read_text())["location"] == str(settled.resolve())
    assert cache_path(tmp_path, "memory://landing") == cache_path(tmp_path, "memory:///landing/")
    assert cache_path(tmp_path, "memory://landing") != cache_path(tmp_path, "memory://landing-2")


def test_the_watcher_caches_the_hash_of_what_it_announces(
    folder: Path, tmp_path: Path, home: Path, hashed: list[str]
) -> None:
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store
    from rewarm.watcher import Watcher

    store = open_store(resolve_store())  # the watcher asks this test's MLflow store what was processed
    events: list[dict] = []
    watcher = Watcher(load_settings(write_config(tmp_path)), store.home, emit=events.append)
    (folder / "jan.csv").write_bytes(b"jan")
    aged(folder)

    watcher.check(now=time.time() + 3600)  # past the settle period
    waiting = ledger.pending(str(folder), {}, settle_seconds=0)

    assert [e["payload"]["sha256"] for e in events] == [p.sha256 for p in waiting] == [sha(b"jan")]
    assert len(hashed) == 1  # read by the watcher only


# --- object stores --------------------------------------------------------------------------------------


def test_an_object_listing_without_an_etag_is_hashed_every_time(
    memory_folder: str, cache_home: Path, hashed: list[str]
) -> None:
    fsspec.filesystem("memory").pipe(f"{memory_folder}/jan.csv", b"jan")
    [arrival] = scan(memory_folder)
    assert arrival.stamp is None  # a memory listing carries size and creation time only

    for _ in range(3):
        assert pending(memory_folder, cache_home) == {"jan.csv": sha(b"jan")}

    assert len(hashed) == 3
    assert not cache_path(cache_home, memory_folder).exists()


def test_object_stamps_come_from_the_etag_or_version_id_never_from_times() -> None:
    when = {"size": 3, "LastModified": "2024-01-01T00:00:00Z", "mtime": 1704067200.0}

    assert object_stamp(when) is None
    assert object_stamp({**when, "ETag": '"abc"'}) == 'size=3;ETag="abc"'
    assert object_stamp({**when, "ETag": '"abc"', "VersionId": "v2"}) == 'size=3;ETag="abc";VersionId=v2'
    assert object_stamp({**when, "generation": 17}) == "size=3;generation=17"  # GCS


def test_an_etag_is_cached_and_a_new_etag_hashes_again(memory_folder: str, cache_home: Path, hashed: list[str]) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{memory_folder}/jan.csv", b"jan")
    uri = f"{memory_folder}/jan.csv"
    hour_ago = time.time() - 3600
    tagged = Arrival(uri, "jan.csv", 3, hour_ago, stamp='size=3;ETag="1"')

    for _ in range(2):
        with fingerprints.cached(memory_folder, [tagged], cache_home) as sha256:
            assert sha256(tagged) == sha(b"jan")
    assert len(hashed) == 1
    fs.pipe(uri, b"feb")  # the same size: only the ETag tells
    with fingerprints.cached(memory_folder, [tagged], cache_home) as sha256:
        retagged = Arrival(uri, "jan.csv", 3, hour_ago, stamp='size=3;ETag="2"')
        assert sha256(retagged) == sha(b"feb")

    assert len(hashed) == 2


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[str]:
    """A bucket on moto's S3 server on a free loopback port (as tests/test_s3.py; no S3 can be reached here)."""
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()  # an instance cached by another test talks to that test's server
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**env, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            patch.setenv(key, value)
        fsspec.filesystem("s3").mkdir("rewarm-fingerprints")
        yield "s3://rewarm-fingerprints/landing"
        patch.undo()
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()  # nor may a later test reach this one's


def test_an_s3_listing_is_cached_by_etag(s3_bucket: str, cache_home: Path, hashed: list[str]) -> None:
    fs = fsspec.filesystem("s3")
    fs.pipe_file(f"{s3_bucket}/jan.csv", b"jan")
    [arrival] = scan(s3_bucket)
    assert arrival.stamp is not None and "ETag=" in arrival.stamp
    aged(s3_bucket)

    assert pending(s3_bucket, cache_home) == pending(s3_bucket, cache_home) == {"jan.csv": sha(b"jan")}
    assert len(hashed) == 1
    fs.pipe_file(f"{s3_bucket}/jan.csv", b"feb")  # the same size; only the ETag is in the stamp
    aged(s3_bucket)

    assert pending(s3_bucket, cache_home) == {"jan.csv": sha(b"feb")}
    assert len(hashed) == 2
