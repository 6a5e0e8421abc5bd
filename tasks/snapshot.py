"""Tasks that fetch, check, keep and quarantine a landed snapshot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from rewarm import advice, quarantine, snapshots
from rewarm.config import DataSection
from rewarm.errors import SnapshotRejected
from rewarm.snapshots import SnapshotInfo

from .policy import BACKOFF, retry_on

# Frames, bytes and tensors stay in memory: no cache key is computed over them and no result is persisted.
IN_MEMORY = {"cache_policy": NO_CACHE, "persist_result": False}
STORAGE = {"retries": 3, "retry_delay_seconds": BACKOFF, "retry_condition_fn": retry_on(OSError), **IN_MEMORY}


@dataclass(frozen=True)
class Fetched:
    """A landed file's bytes and their SHA-256, the snapshot's identity (computed once, here)."""

    uri: str
    data: bytes
    sha256: str


@task(name="fetch-snapshot", **STORAGE)
def fetch_snapshot(uri: str) -> Fetched:
    """Read the landed file's bytes and hash them."""
    data = snapshots.read_bytes(uri)
    return Fetched(uri, data, hashlib.sha256(data).hexdigest())


@task(name="read-snapshot", **IN_MEMORY)
def read_snapshot(
    fetched: Fetched, spec: DataSection, history: str, classes: tuple = (), model: str | None = None
) -> snapshots.Landed:
    """Parse and validate the landed bytes; nothing is written until the round accepts them. MODEL, when given,
    must own HISTORY (or nobody yet): another model's history is refused before anything is read."""
    landed = snapshots.inspect(fetched.uri, spec, history, classes, fetched.data, fetched.sha256, model)
    info = landed.info
    state = f"already kept as round {info.sequence}" if landed.kept else f"round {info.sequence}"
    get_run_logger().info("%s: %d rows, sha256 %s, %s", info.name, info.rows, info.sha256[:12], state)
    for column, (distinct, rows) in advice.identifiers(landed.frame, spec).items():
        get_run_logger().warning(advice.identifier_note(info.name, column, distinct, rows))
    if one := advice.one_class(landed.frame, spec, classes):
        get_run_logger().warning("%s: %s", info.name, one)
    if landed.unlabelled:
        without = f"{info.name}: {landed.unlabelled} row(s) have no {spec.target!r}{landed.unlabelled_words}"
        get_run_logger().warning('%s (data.unlabelled = "drop"): left out of training and scoring', without)
    return landed


@task(name="keep-snapshot", **STORAGE)
def keep_snapshot(landed: snapshots.Landed, split_scheme: int) -> SnapshotInfo:
    """Keep the accepted snapshot in the history (never deleted), so any round can be rebuilt."""
    info = snapshots.keep(landed, split_scheme)
    get_run_logger().info("kept %s as %s", info.name, info.stored)
    return info


@task(name="quarantine-snapshot", **STORAGE)
def quarantine_snapshot(location: str, uri: str, sha256: str, model: str, error: SnapshotRejected) -> quarantine.Record:
    """Move a rejected snapshot out of the landing location into LOCATION, its reason beside it."""
    from prefect.runtime import flow_run

    record = quarantine.put(location, uri, sha256, model, error, flow_run.get_id())
    get_run_logger().error("quarantined %s as %s: %s", uri, record.location, error)
    return record
