"""Tasks that admit snapshots and build a round's data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from rewarm import rounds, snapshots
from rewarm.config import DataSection, Settings
from rewarm.models.network import ArchConfig
from rewarm.models.preprocess import Preprocessor
from rewarm.snapshots import SnapshotInfo

from .policy import BACKOFF, retry_on

# Frames and tensors stay in memory: no cache key is computed over them and no result is persisted.
IN_MEMORY = {"cache_policy": NO_CACHE, "persist_result": False}


@task(
    name="admit-snapshot",
    retries=3,
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_on(OSError),
    **IN_MEMORY,
)
def admit_snapshot(
    uri: str, spec: DataSection, history: Path, classes: tuple = ()
) -> tuple[SnapshotInfo, pd.DataFrame]:
    """Validate the landed file and keep a copy in the snapshot history."""
    info, frame = snapshots.admit(uri, spec, history, classes)
    get_run_logger().info(
        "admitted %s: %d rows, sha256 %s, kept as %s", info.name, info.rows, info.sha256[:12], info.stored
    )
    return info, frame


@task(name="prepare-round", **IN_MEMORY)
def prepare_round(
    settings: Settings,
    info: SnapshotInfo,
    frame: pd.DataFrame,
    history: Path,
    parent: tuple[Preprocessor, ArchConfig] | None,
    device: torch.device,
) -> rounds.RoundData:
    """Split the holdout, gather the training history and build tensors on the device, once."""
    data = rounds.prepare(settings, info, frame, snapshots.list_history(history), parent, device)
    get_run_logger().info("round data from %d snapshot(s): %s rows on %s", len(data.used), data.rows, device)
    return data
