"""Replay a snapshot stream and train every strategy at every round on the same data, over several seeds.

Each strategy keeps its own lineage (round r+1 starts from that strategy's round-r model, as in Ash & Adams'
online setting); the first round is one shared cold start per seed. Within a round every strategy trains as a
retrain trains it (docs/how-it-works.md, the budget rule: cold on every training row, warm-started ones on the
newest snapshot plus a replay sample, each under its budget; the same validation rows), without racing,
interleaved in one process (the order rotates every round), so their seconds are measured side by side.

Trees arms stand beside them on the same rows: default LightGBM refitted from scratch every round, and LightGBM
continued from the previous round's booster on the newest snapshot's rows (its own warm start). Every arm's
model of round r is also scored on all of snapshot r+1 (out of time, as production uses it: `next_value`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from rewarm import metrics, rounds
from rewarm.config import Settings
from rewarm.models.network import ArchConfig
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import COLD, Strategy, initialise
from rewarm.snapshots import SnapshotInfo
from rewarm.training import predict as predict_outputs
from rewarm.training import score_holdout, train

from . import trees


@dataclass(frozen=True)
class Arm:
    """One way of starting each round: a strategy (with its λ, σ), or trees (TREES: "cold" refits every round,
    "continued" boosts on from the last round's model), under a display name."""

    label: str
    strategy: Strategy
    trees: str = ""


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
    next_value: float = float("nan")  # the same model scored on all of the next snapshot (NaN at the last)
    parameters: int = 0  # the network's parameter count (0 for trees)

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
    models: dict[tuple[str, int], object] = {}  # (arm, seed) -> that lineage's latest model
    for index, (info, frame) in enumerate(staged):
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, device)
        parent = (data.preprocessor, data.arch)
        after = staged[index + 1][1] if index + 1 < len(staged) else None
        order = arms[index % len(arms) :] + arms[: index % len(arms)]  # rotate: no arm always goes first
        for seed in seeds:
            if index == 0:  # the bootstrap: one cold start per seed, shared by every network arm
                module, row = _train(settings, data, Arm("bootstrap", COLD), None, seed, stream_name)
                row = replace(row, next_value=forward(data.preprocessor, after, settings.metric, network(module)))
                for arm in (a for a in arms if not a.trees):
                    models[(arm.label, seed)] = module
                    rows.append(replace(row, arm=arm.label))
            for arm in order:
                if index == 0 and not arm.trees:
                    continue
                fit = _trees if arm.trees else _train
                model, row = fit(settings, data, arm, models.get((arm.label, seed)), seed, stream_name)
                predict = trees.predictor(model) if arm.trees else network(model)
                row = replace(row, next_value=forward(data.preprocessor, after, settings.metric, predict))
                models[(arm.label, seed)] = model
                rows.append(row)
                if index:  # the progress counts retrain rounds
                    on_row(row)
    return rows


def network(module: nn.Module) -> Callable[[Preprocessor, pd.DataFrame], np.ndarray]:
    """MODULE's predictions for a frame, on the metrics' scale."""

    def predict(pre: Preprocessor, frame: pd.DataFrame) -> np.ndarray:
        device = next(module.parameters()).device
        x_num, x_cat = (torch.as_tensor(a, device=device) for a in pre.features(frame))
        return pre.metric_outputs(predict_outputs(module, x_num, x_cat, pre.task))

    return predict


def forward(pre: Preprocessor, frame: pd.DataFrame | None, metric: str, predict) -> float:
    """METRIC of PREDICT on every row of FRAME, the snapshot after the round (NaN when there is none, or when it
    holds what the round's model cannot score, such as a class it never saw)."""
    if frame is None:
        return float("nan")
    try:
        y = pre.metric_targets(frame[pre.target])
        return float(metrics.score(pre.task, y, predict(pre, frame))[metric])
    except (KeyError, ValueError):
        return float("nan")


def _trees(settings: Settings, data: rounds.RoundData, arm: Arm, parent, seed: int, stream: str) -> tuple[object, Row]:
    """Default LightGBM on the round's rows: refitted on every training row ("cold"), or boosting on from the
    last round's model on the newest snapshot's training rows ("continued"; the first round fits afresh)."""
    continued = arm.trees == "continued" and parent is not None
    frame = data.train_frame.tail(data.newest_rows) if continued else data.train_frame
    model, seconds = trees.fit(data.preprocessor, frame, seed, init_model=parent if continued else None)
    value = metrics.score(
        data.preprocessor.task, data.y_holdout, trees.predict(model, data.preprocessor, data.holdout_frame)
    )
    row = Row(
        stream=stream,
        arm=arm.label,
        strategy=f"lightgbm_{arm.trees}",
        shrink=0.0,
        perturb=0.0,
        seed=seed,
        round=data.snapshot.sequence,
        snapshot=data.snapshot.name,
        rows_train=len(frame),
        metric=settings.metric,
        value=float(value[settings.metric]),
        seconds=seconds,
        epochs=0,
        best_epoch=0,
        samples_seen=len(frame) * model.n_estimators,  # every boosting iteration reads every row
    )
    return model, row


def _train(
    settings: Settings, data: rounds.RoundData, arm: Arm, parent: nn.Module | None, seed: int, stream: str
) -> tuple[nn.Module, Row]:
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
        parameters=sum(p.numel() for p in module.parameters()),
    )
    return module, row
