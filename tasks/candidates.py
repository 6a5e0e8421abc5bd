"""Tasks that train the round's candidates and score the champion, each model in its own nested MLflow run."""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from mlflow import MlflowClient
from prefect import get_run_logger, task

from rewarm import audits, gate, ledger, tracking
from rewarm.config import TrainSection
from rewarm.models.network import TabularMLP
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import Strategy, initialise
from rewarm.racing import Outcome, RaceRule, contest, progress_line
from rewarm.registry import LoadedModel
from rewarm.rounds import RoundData
from rewarm.training import Checkpoint, Tensors, Training, score_holdout

from .policy import BACKOFF, TRANSIENT, retry_on
from .snapshot import IN_MEMORY

REGISTRY = {"retries": 3, "retry_delay_seconds": BACKOFF, "retry_condition_fn": retry_on(*TRANSIENT), **IN_MEMORY}


@dataclass(frozen=True)
class RoundRun:
    """The round's parent MLflow run: where every candidate's nested run goes."""

    run_id: str
    experiment_id: str
    lineage: dict[str, object]  # tags saying where the round's models come from


@dataclass(frozen=True)
class Race:
    """How this round's candidates race: which train in full whatever the race says, and why."""

    audit: str = ""  # why cold trains in full this round ('' when it races)
    incumbent: Outcome | None = None  # the champion scored on this holdout: evidence for an audit mid-round
    metric: str = ""  # the gate's metric, which the evidence is read in
    fruitless: int = 0  # champion-trails audits in a row that cold lost (audits.fruitless): widens the margin


@task(name="plan-race", **REGISTRY)
def plan_race(name: str, cfg: TrainSection, choices: list[Strategy], incumbent: Outcome | None, metric: str) -> Race:
    """Whether cold trains in full this round (an audit), from the model's complete versions in the registry;
    never when cold is not a candidate."""
    if "cold" not in [c.name for c in choices]:
        return Race("", incumbent, metric)
    versions = [dict(v.tags) for v in ledger.versions(MlflowClient(), name)]
    complete = [t for t in versions if t.get("rewarm.complete") == "true"]
    audit = audits.planned(complete, cfg.cold_every)
    if audit:
        get_run_logger().info("cold audit: %s", audit)
    return Race(audit, incumbent, metric, audits.fruitless(complete))


@task(name="train-candidates", **IN_MEMORY)
def train_candidates(
    choices: list[Strategy],
    data: RoundData,
    champion: LoadedModel | None,
    cfg: TrainSection,
    run: RoundRun,
    checkpoints: Path | None = None,
    plan: Race = Race(),
) -> dict[str, Outcome]:
    """Train the candidates on the same data and device, each from the champion by its strategy (or cold),
    side by side an epoch at a time (train.racing), each in a nested run of RUN; a candidate that can no
    longer catch up is stopped. With train.cold_between_audits 'skip', cold (and its run) is made only on an
    audit or this round's evidence. With CHECKPOINTS, every epoch is saved and a rerun resumes from the last."""
    logger, client = get_run_logger(), MlflowClient()
    parent, parent_version = (champion.module, champion.version) if champion else (None, None)
    with ExitStack() as stack:
        run_ids, seeds = {}, {}

        def start(choice: Strategy) -> Training:  # the candidate's nested run opens as it starts training
            tags = {tracking.KIND_TAG: "candidate"}
            run_ids[choice.name] = stack.enter_context(
                tracking.run(client, run.experiment_id, choice.name, tags, parent=run.run_id)
            )
            training, seeds[choice.name] = _start(choice, data, parent, cfg, checkpoints, parent_version, plan.metric)
            return training

        # cold_between_audits 'skip': cold is made only if an audit or mid-round evidence asks for it
        later = [c for c in choices if cfg.skips_cold(len(choices)) and c.name == "cold"]
        trainings = {c.name: start(c) for c in choices if c not in later}
        cold = partial(start, later[0]) if later else None
        rule = RaceRule.configured(cfg)
        score = partial(_holdout, data)
        logged: dict[str, int] = {}  # epochs already in each candidate's run: a long training's live curves

        def progress(name: str, training: Training) -> None:
            logger.info(progress_line(name, training))
            logged[name] = tracking.log_curves(client, run_ids[name], training.result, logged.get(name, 0))

        evidence = partial(_evidence, cfg, plan, data)
        outcomes = contest(trainings, score, rule, plan.audit, evidence, cold, progress)
        for choice in choices:
            if choice.name not in outcomes:
                logger.info("%s %s", choice.name, gate.NOT_TRAINED)
                continue
            outcome = outcomes[choice.name]
            outcome.run_id, outcome.module = run_ids[choice.name], outcome.module.cpu()
            _log(client, choice, outcome, data, cfg, seeds[choice.name], logged.get(choice.name, 0))
    for outcome in outcomes.values():
        if outcome.stopped:
            logger.info(outcome.stopped)
    return outcomes


def _start(
    choice: Strategy,
    data: RoundData,
    parent: TabularMLP | None,
    cfg: TrainSection,
    checkpoints: Path | None,
    parent_version: int | None,
    metric: str = "",
) -> tuple[Training, int]:
    """Initialise a candidate from the parent by CHOICE, ready to train on its rows under its budget, racing on
    METRIC (the gate's; train.race_on)."""
    init_seed = cfg.seed + data.snapshot.sequence  # a new fresh copy (and cold start) every round, reproducibly
    warm = choice.from_parent and parent is not None
    module = initialise(choice, data.arch, parent, init_seed)
    scorer = data.race_scorer(metric) if cfg.racing and cfg.race_on == "metric" and metric else None
    saved = None
    if checkpoints is not None:
        key = _checkpoint_key(choice, data, cfg, parent_version, scorer.metric if scorer else "loss")
        saved = Checkpoint(checkpoints / f"{choice.name}.pt", key)
    budget = cfg.for_candidate(warm)
    training = Training(
        module, data.train_for(warm), data.val, data.preprocessor.task, budget, None, saved, data.race_val, scorer
    )
    if training.result.resumed_at:
        get_run_logger().warning(
            "%s: resumed from the epoch-%d checkpoint of an earlier run", choice.name, training.result.resumed_at
        )
    return training, init_seed


def _evidence(cfg: TrainSection, plan: Race, data: RoundData, outcomes: dict[str, Outcome]) -> str:
    """Evidence, on this holdout, that the warm lineage learned nothing or the data moved under the champion
    (rewarm/audits.py)."""
    champion = plan.incumbent.metrics if plan.incumbent is not None and plan.metric else None
    task, y = data.preprocessor.task, data.y_holdout
    widen = (cfg.audit_backoff, plan.fruitless)
    found = audits.evidence(plan.metric, cfg.audit_margin, champion, outcomes, task, y, widen, data.y_fit())
    if not found and champion is not None:
        warm = audits.warm_scores(plan.metric, outcomes)
        held = audits.widened_out(plan.metric, cfg.audit_margin, champion[plan.metric], warm, widen)
        if held:  # what audit_margin alone would have called evidence: the log says why it was not
            get_run_logger().info(held)
    return found


def _log(
    client: MlflowClient,
    choice: Strategy,
    outcome: Outcome,
    data: RoundData,
    cfg: TrainSection,
    seed: int,
    logged: int = 0,
) -> None:
    """A candidate's parameters, curves (after the LOGGED epochs already there), holdout metrics, and (stopped)
    why, in its nested run."""
    result, warm = outcome.result, choice.from_parent
    params = {**choice.params(), **_train_params(cfg.for_candidate(warm), data.train_for(warm)), "init_seed": seed}
    arch = data.arch  # what the network is and costs, to compare architectures side by side in MLflow
    params |= {"architecture": arch.architecture, "hidden": ",".join(map(str, arch.hidden)), "ensemble_size": arch.k}
    params |= {"parameters": sum(p.numel() for p in outcome.module.parameters())}
    tags: dict[str, object] = {"rewarm.resumed_from_epoch": result.resumed_at}
    if result.stopped:
        tags |= {"rewarm.stopped": result.stopped, "mlflow.note.content": result.stopped}
    if outcome.audit:
        tags |= {"rewarm.audit": outcome.audit}
    tracking.log(client, outcome.run_id, params=params, tags=tags)
    tracking.log_training(client, outcome.run_id, result, since=logged)
    tracking.log(client, outcome.run_id, metrics=_holdout_keys(outcome.metrics))
    get_run_logger().info(
        "%s: %d epochs (best %d), %.1f s, %s%s",
        choice.name,
        result.epochs,
        result.best_epoch,
        result.seconds,
        _fmt(outcome.metrics),
        " (stopped by the race)" if result.stopped else "",
    )


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
        pre = champion.preprocessor.scored_as(data.preprocessor)  # classes appended since give 0
        outcome = _score("champion", champion.module.to(device), holdout, data.y_holdout, pre)
        metrics = _holdout_keys(outcome.metrics) | tracking.training_summary(None)
        tracking.log(client, child, params={"strategy": "champion"}, metrics=metrics)
    get_run_logger().info("champion: %s", _fmt(outcome.metrics))
    return outcome


def _holdout(data: RoundData, module: TabularMLP) -> tuple[np.ndarray, dict[str, float]]:
    return score_holdout(module, data.holdout, data.y_holdout, data.preprocessor)


def _score(name: str, module: TabularMLP, holdout: Tensors, y: np.ndarray, pre: Preprocessor) -> Outcome:
    """Score MODULE on the holdout and keep it, on the CPU, with its predictions and metrics."""
    p, scores = score_holdout(module, holdout, y, pre)
    return Outcome(name, module.cpu(), p, scores)


def _checkpoint_key(
    choice: Strategy, data: RoundData, cfg: TrainSection, parent_version: int | None, race: str = "loss"
) -> str:
    """Everything a candidate's training depends on (RACE: what its race curve holds): a checkpoint from other
    inputs is never resumed."""
    warm = choice.from_parent and parent_version is not None
    rows = len(data.train_for(warm))
    parts = [
        data.snapshot.sha256,
        repr(choice.params()),
        str(parent_version),
        cfg.for_candidate(warm).model_dump_json(),
        f"{rows}/{len(data.val)}/{len(data.holdout)}",
        f"batch {cfg.batch_for(rows)}",
        repr(data.arch.to_dict()),
        repr(data.preprocessor.classes),  # which label each output is
        data.train.y.device.type,  # a CUDA run's optimizer and generator state do not resume on the CPU
        race,
        hashlib.sha256(np.packbits(data.val_rows).tobytes()).hexdigest() if data.val_rows is not None else "",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _train_params(cfg: TrainSection, data: Tensors) -> dict[str, object]:
    return {
        "max_epochs": cfg.max_epochs,
        "patience": cfg.patience,
        "batch_size": cfg.batch_for(len(data)),  # as trained: smaller for small sets
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
