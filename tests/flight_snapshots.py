"""Helpers for the flow tests: small real monthly snapshots and a tiny-model rewarm.toml."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd


def small_month(flights: pd.DataFrame, month: int, rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A reproducible sample of one month, without the helper 'month' column."""
    part = flights[flights["month"] == month].drop(columns="month")
    return part.sample(n=rows, random_state=seed).reset_index(drop=True)


TINY_TOML = """
[model]
name = "{name}"
hidden = [16]
embedding_dim = 4

[data]
landing = "{landing}"
target = "late"
task = "binary"
numeric = ["distance", "sched_dep_hour", "temp", "visib"]
categorical = ["carrier", "origin", "dest"]
extra_columns = "ignore"  # the sampled months carry every demo column; the tiny model uses a few

[train]
max_epochs = 6
patience = 2
batch_size = 256
cold_between_audits = "race"  # flow tests see cold race in every round; "skip" (the default) has its own

[gate]
bootstrap = 200
"""


def write_config(folder: Path, name: str = "flights-test", **extra: str) -> Path:
    """A tiny-model rewarm.toml for fast flow tests; EXTRA appends 'key = value' lines to [gate]."""
    text = TINY_TOML.format(name=name, landing=folder / "landing")
    text += "".join(f"{k} = {v}\n" for k, v in extra.items())
    path = folder / "rewarm.toml"
    path.write_text(text)
    return path


def land(path: Path, data: bytes) -> Path:
    """Write DATA to PATH, then wait until the clock has moved past the file's change time, so that the
    next file landed has a later one (the kernel stamps files from a clock that ticks every few ms)."""
    path.write_bytes(data)
    stamp = path.stat().st_ctime
    while time.time() < stamp + 0.05:
        time.sleep(0.01)
    return path


def two_months(landing: Path, flights: pd.DataFrame) -> list[Path]:
    """January and February in LANDING, 900 rows each."""
    landing.mkdir()
    paths = [landing / f"m{month}.parquet" for month in (1, 2)]
    for month, path in zip((1, 2), paths, strict=True):
        small_month(flights, month, rows=900).to_parquet(path, index=False)
    return paths
