"""The landing watcher (rewarm/watcher.py): one event per new, complete snapshot, on real files, a real MLflow
store and a real watchfiles watch; events are collected by an injected `emit` instead of a Prefect server."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import waiting
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient
from prefect.events import Event

from rewarm import ledger
from rewarm.config import Settings, load_settings, parse_settings
from rewarm.landing import same_file, scan
from rewarm.store import Store, open_store, resolve_store
from rewarm.watcher import LANDED, MODEL_LABEL, RESOURCE_PREFIX, Watcher

MODEL = "watched-model"
SETTLE = 0.5
LATER = 3600.0  # a `now` this far after every change: everything has settled


def settings_for(folder: Path, name: str = MODEL, **service: object) -> Settings:
    """A tiny-model rewarm.toml in FOLDER (landing: FOLDER/landing) with a [service] section."""
    path = write_config(folder, name=name)
    # No resend inside the LATER jumps the other tests make; resending has a test of its own.
    service = {"settle_seconds": SETTLE, "resend_seconds": 10 * LATER, **service}
    path.write_text(path.read_text() + "\n[service]\n" + "".join(f"{k} = {v}\n" for k, v in service.items()))
    return load_settings(path)


def parquet_bytes(flights: pd.DataFrame, month: int, rows: int = 300) -> bytes:
    return small_month(flights, month, rows=rows).to_parquet(index=False)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A watcher answers within milliseconds: look often, and give up sooner than on a server.
wait_for = functools.partial(waiting.wait_for, timeout=20.0, interval=0.05)


@pytest.fixture
def store(home: Path) -> Store:
    """This test's MLflow store, opened as the service opens it (the watcher asks it what was processed)."""
    return open_store(resolve_store())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "landing").mkdir()
    return settings_for(tmp_path)


@pytest.fixture
def landing(settings: Settings) -> Path:
    return Path(settings.data.landing)


@pytest.fixture
def events() -> list[dict]:
    return []


@pytest.fixture
def watcher(settings: Settings, store: Store, events: list[dict]) -> Watcher:
    return Watcher(settings, store.home, emit=events.append)


def names(events: list[dict]) -> list[str]:
    return [e["payload"]["name"] for e in events]


def register(name: str, sha256: str, complete: bool) -> None:
    """A real model version in the MLflow registry, tagged with the content it was trained on. Its source
    is a logged model without files (the watcher reads tags only); a tracking server refuses local paths."""
    client = MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    model = client.create_logged_model(experiment_id="0")
    tags = {ledger.SHA_TAG: sha256, "rewarm.complete": "true" if complete else "false"}
    client.create_model_version(name, f"models:/{model.model_id}", model_id=model.model_id, tags=tags)


# --- completeness ---------------------------------------------------------------------------------------


def test_a_file_still_being_written_is_never_picked_up(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    data = parquet_bytes(flights, 1)
    step = len(data) // 40 + 1
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    target = landing / "2013-01.parquet"
    target.write_bytes(chunks[0])  # written in place, under its final name

    def append_slowly() -> None:
        with target.open("ab") as fh:
            for chunk in chunks[1:]:
                time.sleep(SETTLE / 10)  # ~2 s in all: four settle periods, never quiet for one
                fh.write(chunk)
                fh.flush()

    writer = threading.Thread(target=append_slowly)
    writer.start()
    sizes_seen = set()
    while writer.is_alive():
        watcher.check()
        sizes_seen.add(target.stat().st_size)
        time.sleep(0.02)
    writer.join()

    assert events == []
    assert len(sizes_seen) > 10  # the watcher did look while the file grew
    wait_for(watcher.check, "the finished file's event")
    assert [(e["payload"]["sha256"], e["payload"]["size"]) for e in events] == [(sha(data), len(data))]
    assert watcher.check(now=time.time() + LATER) == []


@pytest.mark.parametrize("temporary", ["2013-01.parquet.partial", ".2013-01.parquet"])
def test_a_file_under_a_temporary_name_waits_for_its_rename(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame, temporary: str
) -> None:
    data = parquet_bytes(flights, 1)
    (landing / temporary).write_bytes(data)

    assert watcher.check(now=time.time() + LATER) == []

    os.replace(landing / temporary, landing / "2013-01.parquet")
    [arrival] = scan(str(landing))
    assert watcher.check(now=arrival.changed_at) == []  # the rename is a change: it settles from there
    emitted = watcher.check(now=arrival.changed_at + SETTLE)

    assert names(emitted) == names(events) == ["2013-01.parquet"]
    assert events[0]["payload"]["sha256"] == sha(data)
    assert watcher.check(now=time.time() + LATER) == []


# --- once per content -----------------------------------------------------------------------------------


def test_a_second_copy_of_the_same_content_gives_no_second_event(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    land(landing / "2013-01.parquet", parquet_bytes(flights, 1))
    watcher.check(now=time.time() + LATER)

    shutil.copy(landing / "2013-01.parquet", landing / "january-again.parquet")

    assert watcher.check(now=time.time() + LATER) == []
    assert names(events) == ["2013-01.parquet"]


def test_two_copies_found_in_one_look_give_one_event(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    land(landing / "z-first.parquet", parquet_bytes(flights, 1))
    shutil.copy(landing / "z-first.parquet", landing / "a-second.parquet")

    watcher.check(now=time.time() + LATER)

    assert names(events) == ["z-first.parquet"]


def test_changed_content_under_the_same_name_is_a_new_snapshot(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    land(landing / "latest.parquet", parquet_bytes(flights, 1))
    watcher.check(now=time.time() + LATER)

    land(landing / "latest.parquet", parquet_bytes(flights, 2))
    watcher.check(now=time.time() + LATER)

    assert [e["payload"]["sha256"] for e in events] == [
        sha(parquet_bytes(flights, 1)),
        sha(parquet_bytes(flights, 2)),
    ]


def test_snapshots_are_emitted_in_landing_order(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    for month, name in [(1, "c.parquet"), (2, "a.parquet"), (3, "b.csv")]:
        frame = small_month(flights, month, rows=200)
        land(landing / name, frame.to_csv(index=False).encode() if name.endswith(".csv") else frame.to_parquet())

    emitted = watcher.check(now=time.time() + LATER)

    assert names(emitted) == names(events) == ["c.parquet", "a.parquet", "b.csv"]


# --- the ledger: processed and rejected content ---------------------------------------------------------


def test_content_already_processed_is_not_sent(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    jan, feb = parquet_bytes(flights, 1), parquet_bytes(flights, 2)
    register(MODEL, sha(jan), complete=True)
    land(landing / "2013-01.parquet", jan)
    land(landing / "2013-02.parquet", feb)

    watcher.check(now=time.time() + LATER)

    assert names(events) == ["2013-02.parquet"]


def test_an_incomplete_version_or_another_models_version_does_not_count(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    jan, feb = parquet_bytes(flights, 1), parquet_bytes(flights, 2)
    register(MODEL, sha(jan), complete=False)
    register("another-model", sha(feb), complete=True)
    land(landing / "2013-01.parquet", jan)
    land(landing / "2013-02.parquet", feb)

    watcher.check(now=time.time() + LATER)

    assert names(events) == ["2013-01.parquet", "2013-02.parquet"]


def test_processed_maps_content_to_its_first_complete_version(store: Store) -> None:
    register(MODEL, "a" * 64, complete=False)
    register(MODEL, "a" * 64, complete=True)
    register(MODEL, "a" * 64, complete=True)
    register(MODEL, "b" * 64, complete=True)

    assert ledger.processed(MlflowClient(), MODEL) == {"a" * 64: 2, "b" * 64: 4}
    assert ledger.processed(MlflowClient(), "never-registered") == {}


def test_content_landed_again_after_its_file_left_is_sent_again(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame, tmp_path: Path
) -> None:
    jan = parquet_bytes(flights, 1)
    first = land(landing / "2013-01.parquet", jan)
    watcher.check(now=time.time() + LATER)
    land(landing / "2013-01-copy.parquet", jan)
    watcher.check(now=time.time() + LATER)
    assert names(events) == ["2013-01.parquet"]  # the first file is still there: its event covers the copy

    first.rename(tmp_path / "quarantined.parquet")  # rejected and moved to the quarantine, say
    land(landing / "2013-01-again.parquet", jan)
    watcher.check(now=time.time() + LATER)

    assert names(events) == ["2013-01.parquet", "2013-01-again.parquet"]


# --- delivery -------------------------------------------------------------------------------------------


class FailsFirst:
    """An emit that cannot reach Prefect the first N times, then delivers."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.delivered: list[dict] = []

    def __call__(self, event: dict) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Prefect server unreachable")
        self.delivered.append(event)


def test_an_event_that_could_not_be_sent_is_sent_at_the_next_look(
    settings: Settings, store: Store, landing: Path, flights: pd.DataFrame
) -> None:
    emit = FailsFirst()
    watcher = Watcher(settings, store.home, emit=emit)
    data = parquet_bytes(flights, 1)
    land(landing / "2013-01.parquet", data)

    with pytest.raises(ConnectionError):
        watcher.check(now=time.time() + LATER)
    retried = watcher.check(now=time.time() + LATER)

    assert [e["payload"]["sha256"] for e in retried] == [sha(data)]
    assert emit.delivered == retried
    assert watcher.check(now=time.time() + LATER) == []


def test_the_event_names_the_model_and_describes_the_file(
    watcher: Watcher, landing: Path, events: list[dict], flights: pd.DataFrame
) -> None:
    data = parquet_bytes(flights, 1)
    land(landing / "2013-01.parquet", data)
    [arrival] = scan(str(landing))

    [event] = watcher.check(now=time.time() + LATER)

    assert event["event"] == LANDED == "rewarm.snapshot.landed"
    assert event["resource"]["prefect.resource.id"] == RESOURCE_PREFIX + sha(data)
    assert event["resource"]["prefect.resource.name"] == "2013-01.parquet"
    assert event["resource"][MODEL_LABEL] == MODEL
    assert event["payload"] == {
        "uri": str((landing / "2013-01.parquet").resolve()),
        "name": "2013-01.parquet",
        "size": len(data),
        "sha256": sha(data),
        "landed_at": datetime.fromtimestamp(arrival.changed_at, UTC).isoformat(),
    }
    # What send_to_prefect builds from it: a valid Prefect event, the model as a resource label.
    sent = Event(**event)
    assert sent.resource.id == RESOURCE_PREFIX + sha(data)
    assert sent.resource[MODEL_LABEL] == MODEL


# --- watching -------------------------------------------------------------------------------------------


def start(watcher: Watcher) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    """Run WATCHER in a thread until the returned event is set; errors it raises are kept."""
    stop, errors = threading.Event(), []

    def run() -> None:
        try:
            watcher.run(stop)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, errors


def test_run_watches_a_local_folder_until_stopped(
    settings: Settings, store: Store, events: list[dict], flights: pd.DataFrame, tmp_path: Path
) -> None:
    landing = Path(settings.data.landing)
    land(landing / "while-nobody-watched.parquet", parquet_bytes(flights, 1))
    source = tmp_path / "outbox" / "2013-02.parquet"
    source.parent.mkdir()
    source.write_bytes(parquet_bytes(flights, 2))
    thread, stop, errors = start(Watcher(settings, store.home, emit=events.append))
    try:
        wait_for(lambda: names(events) == ["while-nobody-watched.parquet"], "the file that was already there")
        shutil.copy2(source, landing / "2013-02.parquet")
        wait_for(lambda: len(events) >= 2, "the file copied in")
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert errors == []
    assert names(events) == ["while-nobody-watched.parquet", "2013-02.parquet"]
    assert events[1]["payload"]["sha256"] == sha(source.read_bytes())


def test_run_creates_a_missing_landing_folder(
    tmp_path: Path, store: Store, events: list[dict], flights: pd.DataFrame
) -> None:
    settings = settings_for(tmp_path)
    landing = Path(settings.data.landing)
    thread, stop, errors = start(Watcher(settings, store.home, emit=events.append))
    try:
        wait_for(landing.is_dir, "the landing folder")
        land(landing / "2013-01.parquet", parquet_bytes(flights, 1))
        wait_for(lambda: events, "the file written into the new folder")
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert errors == []
    assert names(events) == ["2013-01.parquet"]


@pytest.fixture
def memory_landing() -> Iterator[str]:
    """A landing folder in fsspec's (process-wide) memory filesystem, removed afterwards."""
    url = f"memory://rewarm-watch-{uuid.uuid4().hex}/landing"
    fs = fsspec.filesystem("memory")
    yield url
    if fs.exists(url.rsplit("/", 1)[0]):
        fs.rm(url.rsplit("/", 1)[0], recursive=True)


def remote_settings(tmp_path: Path, url: str) -> Settings:
    raw = settings_for(tmp_path, poll_seconds=0.2).model_dump()
    raw["data"]["landing"] = url
    return parse_settings(raw)


def test_run_polls_an_fsspec_location(
    tmp_path: Path, store: Store, memory_landing: str, events: list[dict], flights: pd.DataFrame
) -> None:
    settings = remote_settings(tmp_path, memory_landing)
    data = parquet_bytes(flights, 1)
    thread, stop, errors = start(Watcher(settings, store.home, emit=events.append))
    try:
        fsspec.filesystem("memory").pipe(f"{memory_landing}/2013-01.parquet", data)
        wait_for(lambda: events, "the file put into the memory filesystem")
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert errors == []
    assert [(e["payload"]["name"], e["payload"]["sha256"]) for e in events] == [("2013-01.parquet", sha(data))]
    assert same_file(events[0]["payload"]["uri"], f"{memory_landing}/2013-01.parquet")


def test_run_keeps_going_when_an_event_cannot_be_sent(
    tmp_path: Path, store: Store, memory_landing: str, flights: pd.DataFrame
) -> None:
    settings = remote_settings(tmp_path, memory_landing)
    emit = FailsFirst(failures=2)
    watcher = Watcher(settings, store.home, emit=emit)
    thread, stop, errors = start(watcher)
    try:
        fsspec.filesystem("memory").pipe(f"{memory_landing}/2013-01.parquet", parquet_bytes(flights, 1))
        wait_for(lambda: emit.delivered, "the event, once Prefect takes it")
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert errors == []
    assert emit.failures == 0
    assert watcher.check(now=time.time() + LATER) == []  # delivered, so not looked at again
    assert names(emit.delivered) == ["2013-01.parquet"]


def test_an_event_that_brought_no_retrain_is_sent_again(
    tmp_path: Path, store: Store, flights: pd.DataFrame, events: list[dict]
) -> None:
    settings = settings_for(tmp_path, resend_seconds=600)
    watcher = Watcher(settings, store.home, emit=events.append)
    landing = Path(settings.data.landing)
    landing.mkdir(parents=True)
    data = parquet_bytes(flights, 1)
    path = land(landing / "2013-01.parquet", data)
    start = path.stat().st_ctime + SETTLE
    [first] = watcher.check(now=start)
    assert watcher.check(now=start + 599) == []  # not yet overdue
    [again] = watcher.check(now=start + 600)  # no version and no rejection: announced again
    assert again["payload"]["sha256"] == first["payload"]["sha256"] == sha(data)
    assert watcher.check(now=start + 900) == []  # the clock restarted at the resend
    path.rename(tmp_path / "quarantined.parquet")  # rejected and moved to the quarantine meanwhile
    assert watcher.check(now=start + 1300) == []  # gone: never again
    assert len(events) == 2
    assert len(events) == 2
