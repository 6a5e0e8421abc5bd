"""Replay a snapshot stream and train every strategy at every round on the same data, over several seeds.

Each strategy keeps its own lineage (round r+1 starts from that strategy's round-r model, as in Ash & Adams'
online setting); the first round is one shared cold start per seed. Within a round every strategy trains as a
retrain trains it (docs/how-it-works.md, the budget rule: cold on every training row, warm-started ones on the
newest snapshot plus a replay sample, each under its budget; the same validation rows), without racing,
interleaved in one process (the order rotates every round), so their seconds are measured side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from rewarm import rounds
from rewarm.config import Settings
from rewarm.models.network import ArchConfig, TabularMLP
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import COLD, Strategy, initialise
from rewarm.snapshots import SnapshotInfo
from rewarm.training import score_holdout, train


@dataclass(frozen=True)
class Arm:
    """One way of starting each round: a strategy (with its λ, σ) under a display name."""

    label: str
    strategy: Strategy


@dataclass(frozen=True)
class Row:
    """One training: which stream, arm, seed and round, and what it cost and scored."""

    stream: str
    arm: str
    strategy: str
    shrink: float
    perturb: float
    seed: int
    round: int
    snapshot: str
    rows_train: int
    metric: str
    value: float
    seconds: float
    epochs: int
    best_epoch: int
    samples_seen: int

    def to_dict(self) -> dict:
        return asdict(self)


def stage(stream: list[tuple[str, pd.DataFrame]], folder: Path) -> list[tuple[SnapshotInfo, pd.DataFrame]]:
    """Write the stream's snapshots as Parquet files, as a history the round builder can read back."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for sequence, (name, frame) in enumerate(stream, start=1):
        path = folder / f"{sequence:05d}-{name}.parquet"
        frame.to_parquet(path, index=False)
        staged.append((SnapshotInfo(name, str(path), "", len(frame), str(path), sequence, "", None), frame))
    return staged


def replay(
    settings: Settings,
    stream_name: str,
    staged: list[tuple[SnapshotInfo, pd.DataFrame]],
    arms: list[Arm],
    seeds: list[int],
    device: torch.device,
    on_row: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    """Train every arm at every round for every seed; return one Row per training."""
    rows: list[Row] = []
    parent: tuple[Preprocessor, ArchConfig] | None = None
    models: dict[tuple[str, int], TabularMLP] = {}  # (arm, seed) -> that lineage's latest model
    for index, (info, frame) in enumerate(staged):
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, device)
        parent = (data.preprocessor, data.arch)
        order = arms[index % len(arms) :] + arms[: index % len(arms)]  # rotate: no arm always goes first
        for seed in seeds:
            if index == 0:  # the bootstrap: one cold start per seed, shared by every arm
                module, row = _train(settings, data, Arm("bootstrap", COLD), None, seed, stream_name)
                models |= {(arm.label, seed): module for arm in arms}
                rows.extend(Row(**{**row.to_dict(), "arm": arm.label}) for arm in arms)
                continue
            for arm in order:
                module, row = _train(settings, data, arm, models[(arm.label, seed)], seed, stream_name)
                models[(arm.label, seed)] = module
                rows.append(row)
                on_row(row)
    return rows


def _train(
    settings: Settings, data: rounds.RoundData, arm: Arm, parent: TabularMLP | None, seed: int, stream: str
) -> tuple[TabularMLP, Row]:
    """One training, seeded like a retrain (the fresh copy and cold start use seed + round), on the rows and
    under the budget a retrain gives its strategy (warm-started ones: the newest snapshot plus a replay sample)."""
    warm = arm.strategy.from_parent and parent is not None
    cfg = settings.train.for_candidate(warm).model_copy(update={"seed": seed})
    module = initialise(arm.strategy, data.arch, parent, seed + data.snapshot.sequence)
    result = train(module, data.train_for(warm), data.val, data.preprocessor.task, cfg)
    _, scores = score_holdout(module, data.holdout, data.y_holdout, data.preprocessor)
    row = Row(
        stream=stream,
        arm=arm.label,
        strategy=arm.strategy.name,
        shrink=arm.strategy.shrink,
        perturb=arm.strategy.perturb,
        seed=seed,
        round=data.snapshot.sequence,
        snapshot=data.snapshot.name,
        rows_train=len(data.train_for(warm)) + len(data.val),
        metric=settings.metric,
        value=float(scores[settings.metric]),
        seconds=result.seconds,
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        samples_seen=result.samples_seen,
    )
    return module, row
