"""Tasks that train the round's candidates and score the champion, each model in its own nested MLflow run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mlflow import MlflowClient
from prefect import get_run_logger, task

from rewarm import tracking
from rewarm.config import TrainSection
from rewarm.models.network import TabularMLP
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import Strategy, initialise
from rewarm.registry import LoadedModel
from rewarm.rounds import RoundData
from rewarm.training import Checkpoint, Tensors, TrainResult, effective_batch_size, score_holdout, train

from .snapshot import IN_MEMORY


@dataclass
class Outcome:
    """A trained candidate (or the champion) with its holdout predictions and metrics."""

    name: str
    module: TabularMLP
    predictions: np.ndarray
    metrics: dict[str, float]
    result: TrainResult | None = None  # None for the champion, which is scored untouched
    run_id: str = ""  # the nested MLflow run it was logged in


@dataclass(frozen=True)
class RoundRun:
    """The round's parent MLflow run: where every candidate's nested run goes."""

    run_id: str
    experiment_id: str
    lineage: dict[str, object]  # tags saying where the round's models come from


@task(name="train-candidates", **IN_MEMORY)
def train_candidates(
    choices: list[Strategy],
    data: RoundData,
    champion: LoadedModel | None,
    cfg: TrainSection,
    run: RoundRun,
    checkpoints: Path | None = None,
) -> dict[str, Outcome]:
    """Train every candidate on the same data and device, each from the champion by its strategy (or cold),
    each in a nested run of RUN; with CHECKPOINTS, every epoch is saved and a rerun resumes from the last."""
    client, outcomes = MlflowClient(), {}
    parent, parent_version = (champion.module, champion.version) if champion else (None, None)
    for choice in choices:
        tags = {tracking.KIND_TAG: "candidate"}
        with tracking.run(client, run.experiment_id, choice.name, tags, parent=run.run_id) as child:
            outcomes[choice.name] = _train_one(client, choice, data, parent, cfg, child, checkpoints, parent_version)
    return outcomes


def _train_one(
    client: MlflowClient,
    choice: Strategy,
    data: RoundData,
    parent: TabularMLP | None,
    cfg: TrainSection,
    run_id: str,
    checkpoints: Path | None,
    parent_version: int | None,
) -> Outcome:
    """Initialise from the parent by CHOICE, train to early stopping, score on the holdout, log to RUN_ID."""
    logger = get_run_logger()
    init_seed = cfg.seed + data.snapshot.sequence  # a new fresh copy (and cold start) every round, reproducibly
    module = initialise(choice, data.arch, parent, init_seed)
    saved = None
    if checkpoints is not None:
        saved = Checkpoint(checkpoints / f"{choice.name}.pt", _checkpoint_key(choice, data, cfg, parent_version))
    result = train(module, data.train, data.val, data.preprocessor.task, cfg, checkpoint=saved)
    if result.resumed_at:
        logger.warning("%s: resumed from the epoch-%d checkpoint of an earlier run", choice.name, result.resumed_at)
    outcome = _score(choice.name, module, data.holdout, data.y_holdout, data.preprocessor)
    outcome.result, outcome.run_id = result, run_id
    params = {**choice.params(), **_train_params(cfg, data.train), "init_seed": init_seed}
    tracking.log(client, run_id, params=params, tags={"rewarm.resumed_from_epoch": result.resumed_at})
    tracking.log_training(client, run_id, result)
    tracking.log(client, run_id, metrics=_holdout_keys(outcome.metrics))
    logger.info(
        "%s: %d epochs (best %d), %.1f s, %s",
        choice.name,
        result.epochs,
        result.best_epoch,
        result.seconds,
        _fmt(outcome.metrics),
    )
    return outcome


@task(name="score-champion", **IN_MEMORY)
def score_champion(champion: LoadedModel | None, data: RoundData, run: RoundRun) -> Outcome | None:
    """Score the untouched champion on the same holdout rows, through its own preprocessing, in its own nested
    run; None before the first model."""
    if champion is None:
        return None
    device = data.holdout.y.device
    x_num, x_cat = champion.preprocessor.features(data.holdout_frame)
    holdout = Tensors.build(x_num, x_cat, data.y_holdout, device)
    client = MlflowClient()
    tags = {tracking.KIND_TAG: "champion", **run.lineage}
    with tracking.run(client, run.experiment_id, "champion", tags, parent=run.run_id) as child:
        outcome = _score("champion", champion.module.to(device), holdout, data.y_holdout, champion.preprocessor)
        metrics = _holdout_keys(outcome.metrics) | tracking.training_summary(None)
        tracking.log(client, child, params={"strategy": "champion"}, metrics=metrics)
    get_run_logger().info("champion: %s", _fmt(outcome.metrics))
    return outcome


def _score(name: str, module: TabularMLP, holdout: Tensors, y: np.ndarray, pre: Preprocessor) -> Outcome:
    """Score MODULE on the holdout and keep it, on the CPU, with its predictions and metrics."""
    p, scores = score_holdout(module, holdout, y, pre)
    return Outcome(name, module.cpu(), p, scores)


def _checkpoint_key(choice: Strategy, data: RoundData, cfg: TrainSection, parent_version: int | None) -> str:
    """Everything a candidate's training depends on: a checkpoint from other inputs is never resumed."""
    parts = [
        data.snapshot.sha256,
        repr(choice.params()),
        str(parent_version),
        cfg.model_dump_json(),
        f"{len(data.train)}/{len(data.val)}/{len(data.holdout)}",
        f"batch {effective_batch_size(len(data.train), cfg.batch_size)}",
        repr(data.arch.to_dict()),
        data.train.y.device.type,  # a CUDA run's optimizer and generator state do not resume on the CPU
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _train_params(cfg: TrainSection, data: Tensors) -> dict[str, object]:
    return {
        "max_epochs": cfg.max_epochs,
        "patience": cfg.patience,
        "batch_size": effective_batch_size(len(data), cfg.batch_size),  # as trained: smaller for small sets
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "warmup_fraction": cfg.warmup_fraction,
        "seed": cfg.seed,
        "device": str(data.y.device),
        "torch_threads": torch.get_num_threads(),
    }


def _holdout_keys(values: dict[str, float]) -> dict[str, float]:
    return {f"holdout_{k}": v for k, v in values.items()}


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items())
