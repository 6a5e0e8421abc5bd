"""Helpers for the flow tests: small real monthly snapshots and a tiny-model rewarm.toml."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run


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


def latest_retrain_run(client: MlflowClient, name: str) -> Run:
    """The newest parent run of a retrain of model NAME."""
    experiment = client.get_experiment_by_name(name).experiment_id
    order = ["attributes.start_time DESC"]
    return client.search_runs([experiment], "tags.`rewarm.kind` = 'retrain'", order_by=order, max_results=1)[0]


@contextmanager
def logged_by(name: str) -> Iterator[list[str]]:
    """The messages logger NAME (and its children) logs inside the block."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger(name).addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger(name).removeHandler(handler)
