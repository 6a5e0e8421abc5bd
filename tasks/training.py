"""Tasks that train candidates and score models on the holdout."""

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
from rewarm.rounds import RoundData
from rewarm.training import Checkpoint, Tensors, TrainResult, score_holdout, train

from .data import IN_MEMORY


@dataclass
class Outcome:
    """A trained candidate (or the champion) with its holdout predictions and metrics."""

    name: str
    module: TabularMLP
    predictions: np.ndarray
    metrics: dict[str, float]
    result: TrainResult | None = None  # None for the champion, which is scored untouched
    run_id: str = ""  # the nested MLflow run it was logged in


@task(name="train-candidate", task_run_name="train-{choice.name}", **IN_MEMORY)
def train_candidate(
    choice: Strategy,
    data: RoundData,
    parent: TabularMLP | None,
    cfg: TrainSection,
    run_id: str,
    checkpoints: Path | None = None,
    parent_version: int | None = None,
) -> Outcome:
    """Initialise from the parent by CHOICE, train to early stopping, score on the holdout, log to RUN_ID.

    With CHECKPOINTS (a folder for this snapshot), every epoch is saved there and a rerun after a crash
    resumes from the last one.
    """
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
    outcome.result = result
    client = MlflowClient()
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
def score_champion(module: TabularMLP, pre: Preprocessor, data: RoundData, run_id: str) -> Outcome:
    """Score the untouched champion on the same holdout rows, through its own preprocessing."""
    device = data.holdout.y.device
    x_num, x_cat = pre.features(data.holdout_frame)
    holdout = Tensors.build(x_num, x_cat, data.y_holdout, device)
    outcome = _score("champion", module.to(device), holdout, data.y_holdout, pre)
    tracking.log(
        MlflowClient(),
        run_id,
        params={"strategy": "champion"},
        metrics=_holdout_keys(outcome.metrics) | tracking.training_summary(None),
    )
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
        repr(data.arch.to_dict()),
        data.train.y.device.type,  # a CUDA run's optimizer and generator state do not resume on the CPU
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _train_params(cfg: TrainSection, data: Tensors) -> dict[str, object]:
    return {
        "max_epochs": cfg.max_epochs,
        "patience": cfg.patience,
        "batch_size": cfg.batch_size,
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
