"""Tasks that frame a round: what to do with a snapshot, its data, its MLflow run, its report."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
import torch
from mlflow import MlflowClient
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from rewarm import ledger, links, registry, rounds, snapshots, tracking
from rewarm.config import DataSection, Settings
from rewarm.gate import Decision
from rewarm.models.network import ArchConfig
from rewarm.models.preprocess import Preprocessor
from rewarm.registry import LoadedModel
from rewarm.results import RoundResult
from rewarm.round_report import decision_markdown, history_metrics, round_summary
from rewarm.snapshots import SnapshotInfo
from rewarm.store import Store, experiment_id

from .candidates import Outcome, RoundRun
from .promotion import REGISTRY
from .snapshot import IN_MEMORY, Fetched


@dataclass(frozen=True)
class Triage:
    """What a run does with a fetched snapshot: train it (RESULT None), or hand back RESULT (skipped, recovered)."""

    experiment_id: str
    checkpoints: Path  # this snapshot's epoch checkpoints
    result: RoundResult | None = None


@task(name="triage-snapshot", **REGISTRY)
def triage_snapshot(settings: Settings, store: Store, fetched: Fetched, force: bool, expected: str | None) -> Triage:
    """Already processed, a round to recover, or a round to train: one decision, from the registry's record.

    Crash safety comes from here: runs a dead process left open are closed; a version registered but whose
    aliases never moved has its recorded decision applied, with no retraining.
    """
    name, sha, client = settings.model.name, fetched.sha256, MlflowClient()
    experiment = experiment_id(store, name)
    checkpoints = store.home / "checkpoints" / name / sha[:16]
    if expected is not None and sha != expected:
        return Triage(experiment, checkpoints, changed(name, fetched.uri, expected, sha))
    note = f"its process died; closed by a rerun at {datetime.now(UTC).isoformat(timespec='seconds')}"
    closed = tracking.close_abandoned(client, experiment, sha, note)
    if closed:
        get_run_logger().warning(
            "closed %d run(s) a killed retrain of this snapshot left open: %s", len(closed), closed
        )
    for version in ledger.unapplied(client, name, sha):
        shutil.rmtree(checkpoints, ignore_errors=True)  # the round was trained; only its aliases move now
        return Triage(experiment, checkpoints, _recover(name, fetched.uri, sha, int(version.version)))
    done = ledger.processed(client, name).get(sha)
    if done is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)  # left by a kill after the round's last write
        if not force:
            return Triage(experiment, checkpoints, skipped(name, fetched.uri, sha, done))
    return Triage(experiment, checkpoints)


def _recover(name: str, snapshot: str, sha: str, version: int) -> RoundResult:
    """Finish a round that a killed process left registered but unapplied: no retraining, no new version."""
    from rewarm import registry

    done, previous = registry.recover(MlflowClient(), name, version)
    get_run_logger().warning(
        "recovered %s v%d, registered by a run that died before its aliases moved: %s", name, version, done
    )
    reason = {
        "promoted": f"v{version} made champion",
        "challenger": f"v{version} kept as challenger",
        "stale": f"v{version} left as it is: the champion moved since its round compared against it",
    }[done]
    reason = f"{Path(snapshot).name}: finished the round a killed run left at v{version} registered: {reason}"
    get_run_logger().warning(reason)
    return RoundResult("recovered", name, reason, Path(snapshot).name, sha, version, recovered=done, replaced=previous)


def skipped(name: str, snapshot: str, sha: str, version: int) -> RoundResult:
    reason = (
        f"{Path(snapshot).name}: content already processed as {name} v{version} (sha256 {sha[:12]}); "
        "nothing retrained (pass force=True, or --force, to retrain on it again)"
    )
    return no_training("skipped", name, snapshot, sha, reason, version=version)


def changed(name: str, snapshot: str, expected: str, found: str) -> RoundResult:
    reason = (
        f"{Path(snapshot).name}: rewritten since it landed (sha256 {expected[:12]} announced, {found[:12]} now); "
        "nothing retrained here: the watcher announces the new content once it is complete"
    )
    return no_training("skipped", name, snapshot, found, reason, logging.WARNING)


def no_training(
    status, name: str, snapshot: str, sha: str, reason: str, level: int = logging.INFO, **extra
) -> RoundResult:
    """The result of a run that trains nothing: logged, with the REASON for the user."""
    get_run_logger().log(level, reason)
    return RoundResult(status, name, reason, Path(snapshot).name, sha, **extra)


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


@task(name="open-round-run", **IN_MEMORY)
def open_round(
    settings: Settings,
    experiment: str,
    info: SnapshotInfo,
    champion: LoadedModel | None,
    data: rounds.RoundData,
    landed: snapshots.Landed,
    history: str,
    nonce: str = "",
) -> RoundRun:
    """Open the round's parent MLflow run: lineage tags, settings, unseen categories and the training dataset."""
    client, name = MlflowClient(), settings.model.name
    lineage = {
        "rewarm.snapshot": info.name,
        "rewarm.snapshot_sha256": info.sha256,
        "rewarm.parent_version": champion.version if champion else "none",
        "rewarm.rows_train": len(data.train) + len(data.val),
        "rewarm.round": info.sequence,
        "rewarm.split_scheme": data.split_scheme,
        # One version per (model, content, parent): a retried or duplicated create is reconciled to it.
        "rewarm.round_key": registry.round_key(name, info.sha256, champion.version if champion else "none", nonce),
    }
    tags = {tracking.KIND_TAG: "retrain", **lineage}
    all_tags = {k: str(v) for k, v in tags.items()} | {"mlflow.runName": f"retrain {info.name}"}
    run_id = client.create_run(experiment, run_name=f"retrain {info.name}", tags=all_tags).info.run_id
    unseen = champion.preprocessor.unseen(landed.frame) if champion else {}
    new_classes = rounds.new_classes(champion.preprocessor if champion else None, data.preprocessor, landed.frame)
    metrics = _unseen_metrics(unseen) | _unlabelled_metric(settings.data, landed)
    if settings.data.task == "multiclass":  # a class the champion lacks is appended to the output layer
        metrics |= {"new_classes": float(len(new_classes)), "new_class_rows": float(sum(new_classes.values()))}
    tracking.log(client, run_id, params=_round_params(settings), metrics=metrics)
    if new_classes:
        get_run_logger().warning(
            "%s: target %r gains %d class(es) the champion never saw (%s): the output layer grows by appending; "
            "the champion gives them probability 0 on the holdout, and a candidate learns those its training rows hold",
            *(
                info.name,
                settings.data.target,
                len(new_classes),
                ", ".join(f"{c!r}: {n} row(s)" for c, n in new_classes.items()),
            ),
        )
    for column, (rows, values) in unseen.items():
        if rows:
            get_run_logger().info(
                "%s: %d row(s) of %r hold %d category(ies) the champion never saw: it scores them as unknown, and "
                "this round's candidates learn them (vocabularies grow by appending)",
                *(info.name, rows, column, values),
            )
    hashes = [u.sha256 for u in data.used]
    tracking.log_dataset(
        client, run_id, data.train_frame, f"{name}-train-r{info.sequence}", history, settings.data.target, hashes
    )
    return RoundRun(run_id, experiment, lineage)


@contextmanager
def failed_on_error(run: RoundRun) -> Iterator[None]:
    """Close the round's run (and nested runs still open) FAILED if the body raises, KILLED if the process is
    being stopped; the next rerun closes them otherwise."""
    try:
        yield
    except BaseException as exc:
        fail_round(run, tracking.ended_as(exc))
        raise


def fail_round(run: RoundRun, status: str = "FAILED") -> None:
    """Mark a round's MLflow run and its nested runs still RUNNING as STATUS. Not a task: it runs while an error
    (perhaps Prefect's own) propagates, and the store may be what failed, so a failure here is only logged and
    never hides the first error."""
    client = MlflowClient()
    try:
        query = f"tags.`{tracking.PARENT_TAG}` = '{run.run_id}' and attributes.status = 'RUNNING'"
        nested = [r.info.run_id for r in client.search_runs([run.experiment_id], query)]
    except Exception:
        nested = []
    for run_id in [*nested, run.run_id]:  # the parent last, and always tried
        try:
            client.set_terminated(run_id, status)
        except Exception as exc:
            logging.getLogger("rewarm.round").warning(
                "could not mark run %s %s (%s); the next retrain of it will", run_id, status, exc
            )


@task(name="report-round", **REGISTRY)
def report_round(
    settings: Settings,
    run: RoundRun,
    info: SnapshotInfo,
    decision: Decision,
    version: int,
    replaced: int | None,
    candidates: dict[str, Outcome],
    incumbent: Outcome | None,
    data: rounds.RoundData,
    checkpoints: Path,
) -> RoundResult:
    """Decision tags, compute saved and learning curves in MLflow, the decision as a Prefect artifact; close the run."""
    client = MlflowClient()
    result = round_summary(settings.model.name, info, decision, version, replaced, candidates, incumbent, data)
    decision_tags = {"rewarm.decision": result.decision, "rewarm.reason": result.reason, "rewarm.version": version}
    tracking.log(
        client, run.run_id, metrics=result.parent_metrics, tags=decision_tags | {"mlflow.note.content": result.reason}
    )
    trained = {n: o.result for n, o in candidates.items() if o.result is not None}
    client.log_figure(
        run.run_id, tracking.learning_curves(trained, f"round {info.sequence}: {info.name}"), "learning_curves.png"
    )
    # The round's parent run, which people open, lists the model it produced and the version registered from it.
    tracking.link_output(client, run.run_id, settings.model.name, version, info.sequence)
    name, experiment = settings.model.name, run.experiment_id
    history = tracking.log_history(client, experiment, name, info.sequence, history_metrics(result))
    base = links.ui_base(mlflow.get_tracking_uri())
    shown = {
        f"version {version}": links.version(base, name, version),
        "this round's run": links.run(base, experiment, run.run_id),
        "history over rounds": links.chart(base, experiment, history),
        "the model": links.model(base, name),
    }
    create_markdown_artifact(
        key=f"{result.model_key}-decision", markdown=decision_markdown(result, shown), description=result.reason
    )
    client.set_terminated(run.run_id, "FINISHED")
    shutil.rmtree(checkpoints, ignore_errors=True)
    return result


def _unlabelled_metric(spec: DataSection, landed: snapshots.Landed) -> dict[str, float]:
    """Rows of the snapshot left out for a missing target, where data.unlabelled lets them be dropped."""
    return {"unlabelled_rows": float(landed.unlabelled)} if spec.unlabelled == "drop" else {}


def _unseen_metrics(counts: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Rows (and distinct values) of the new snapshot whose category the champion never saw, per column (COUNTS:
    Preprocessor.unseen): they reach its unknown bucket, not an error. Logged with the round."""
    out = {f"unseen_rows_{c}": float(rows) for c, (rows, _) in counts.items()}
    return out | {f"unseen_values_{c}": float(values) for c, (_, values) in counts.items()}


def _round_params(settings: Settings) -> dict[str, object]:
    t, g = settings.train, settings.gate
    return {
        "strategies": ",".join(t.strategies),
        "cold_between_audits": t.cold_between_audits,
        "cold_every": t.cold_every,
        "audit_margin": "default" if t.audit_margin is None else t.audit_margin,
        "audit_backoff": t.audit_backoff,
        "shrink": t.shrink,
        "perturb": t.perturb,
        "max_epochs": t.max_epochs,
        "patience": t.patience,
        "batch_size": t.batch_size,
        "lr": t.lr,
        "seed": t.seed,
        "window": settings.data.window,
        "replay_fraction": settings.data.replay_fraction,
        "metric": settings.metric,
        "min_delta": g.min_delta,
        "holdout_fraction": settings.data.holdout_fraction,
        "unlabelled": settings.data.unlabelled,
    }
