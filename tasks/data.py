"""Tasks that admit snapshots and build a round's data."""

from __future__ import annotations

import hashlib

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from rewarm import quarantine, rounds, snapshots
from rewarm.config import DataSection, Settings
from rewarm.errors import SnapshotRejected
from rewarm.models.network import ArchConfig
from rewarm.models.preprocess import Preprocessor
from rewarm.snapshots import SnapshotInfo

from .policy import BACKOFF, retry_on

# Frames and tensors stay in memory: no cache key is computed over them and no result is persisted.
IN_MEMORY = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="fetch-snapshot", retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=retry_on(OSError), **IN_MEMORY)
def fetch_snapshot(uri: str) -> tuple[bytes, str]:
    """Read the landed file's bytes and their SHA-256, the snapshot's identity."""
    data = snapshots.read_bytes(uri)
    return data, hashlib.sha256(data).hexdigest()


@task(name="read-snapshot", **IN_MEMORY)
def read_snapshot(uri: str, data: bytes, spec: DataSection, history: str, classes: tuple = ()) -> snapshots.Landed:
    """Parse and validate the landed bytes; nothing is written until the round accepts them."""
    landed = snapshots.inspect(uri, spec, history, classes, data)
    info = landed.info
    state = f"already kept as round {info.sequence}" if landed.kept else f"round {info.sequence}"
    get_run_logger().info("%s: %d rows, sha256 %s, %s", info.name, info.rows, info.sha256[:12], state)
    return landed


@task(name="keep-snapshot", retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=retry_on(OSError), **IN_MEMORY)
def keep_snapshot(landed: snapshots.Landed, split_scheme: int) -> SnapshotInfo:
    """Keep the accepted snapshot in the history (never deleted), so any round can be rebuilt."""
    info = snapshots.keep(landed, split_scheme)
    get_run_logger().info("kept %s as %s", info.name, info.stored)
    return info


@task(
    name="quarantine-snapshot",
    retries=3,
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_on(OSError),
    **IN_MEMORY,
)
def quarantine_snapshot(location: str, uri: str, sha256: str, model: str, error: SnapshotRejected) -> quarantine.Record:
    """Move a rejected snapshot out of the landing location into LOCATION, its reason beside it."""
    from prefect.runtime import flow_run

    record = quarantine.put(location, uri, sha256, model, error, flow_run.get_id())
    get_run_logger().error("quarantined %s as %s: %s", uri, record.location, error)
    return record


@task(name="prepare-round", **IN_MEMORY)
def prepare_round(
    settings: Settings,
    info: SnapshotInfo,
    frame: pd.DataFrame,
    history: str,
    parent: tuple[Preprocessor, ArchConfig] | None,
    device: torch.device,
) -> rounds.RoundData:
    """Split the holdout, gather the training history and build tensors on the device, once."""
    data = rounds.prepare(settings, info, frame, snapshots.list_history(history), parent, device)
    get_run_logger().info("round data from %d snapshot(s): %s rows on %s", len(data.used), data.rows, device)
    return data
