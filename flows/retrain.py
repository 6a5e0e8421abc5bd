"""Retrain on a new snapshot: challengers from the champion and from scratch, scored side by side."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from rewarm import gate, ledger, quarantine, tracking
from rewarm import landing as landing_files
from rewarm.config import Settings, load_settings
from rewarm.errors import RewarmError, SnapshotRejected
from rewarm.models.strategies import COLD, Strategy, strategy
from rewarm.registry import LoadedModel
from rewarm.report import decision_markdown, round_summary
from rewarm.rounds import RoundData
from rewarm.snapshots import SnapshotInfo
from rewarm.store import Store, experiment_id, open_store, resolve_store
from rewarm.tasks.data import fetch_snapshot, keep_snapshot, prepare_round, quarantine_snapshot, read_snapshot
from rewarm.tasks.registry import load_champion, move_aliases, recover_round, register_model
from rewarm.tasks.training import Outcome, score_champion, train_candidate
from rewarm.training import ensure_gpu_limit, gpu_slot, pick_device


def _run_name() -> str:
    snapshot = flow_run.parameters.get("snapshot")
    return f"retrain-{Path(str(snapshot)).name}" if snapshot else "retrain-pending"


@flow(name="retrain", flow_run_name=_run_name, log_prints=True)
def retrain(
    snapshot: str | None = None,
    config: str | None = None,
    strategies: list[str] | None = None,
    window: int | None = None,
    force: bool = False,
    settings: Settings | None = None,
    in_order: bool = True,
    sha256: str | None = None,
) -> dict:
    """Admit SNAPSHOT, train challengers, score them and the champion on one holdout, promote the winner.

    Without SNAPSHOT (the scheduled run), every pending snapshot in data.landing is retrained, oldest first.
    A SNAPSHOT inside data.landing comes after every earlier pending one there, so queued runs keep landing
    order whichever starts first. A snapshot whose content was already processed is skipped unless FORCE.
    Settings come from CONFIG (or ./rewarm.toml) unless given whole; STRATEGIES and WINDOW override them.
    IN_ORDER=False skips the landing-order check (the caller already keeps the order). SHA256, when given
    (the landed event's), is the content expected: a file rewritten since is left to its own event.
    """
    settings = (settings or load_settings(config)).with_overrides(strategies, window)
    if snapshot is not None and sha256 is None and _deployment_run():
        landing_files.check_announced(snapshot, settings.data.landing)  # a parameter, not the user's own shell
    store = open_store(resolve_store())
    pending = _pending_before(settings, store, snapshot) if in_order else []
    earlier = [_retrain_earlier(p, settings) for p in pending]
    if pending:
        _cancel_queued({p.sha256 for p in pending})
    if snapshot is None:
        return {"model": settings.model.name, "processed": earlier}
    return run_retrain(settings, snapshot, force, sha256)


def _pending_before(settings: Settings, store: Store, snapshot: str | None) -> list[ledger.Pending]:
    """Pending snapshots in the landing location that landed before SNAPSHOT (all of them when None)."""
    landing = settings.data.landing
    if snapshot is not None and not landing_files.contains(landing, snapshot):
        return []  # a file from elsewhere, named on the command line: no landing order to keep
    before = None
    if snapshot is not None:
        mine = [a for a in landing_files.scan(landing) if landing_files.same_file(a.uri, snapshot)]
        if not mine:
            return []
        before = mine[0].order
    name = settings.model.name
    found = ledger.pending(landing, ledger.processed(MlflowClient(), name), settings.service.settle_seconds, before)
    if found:
        get_run_logger().info(
            "%d pending snapshot(s) to retrain first, oldest first: %s", len(found), [p.arrival.name for p in found]
        )
    return found


def _deployment_run() -> bool:
    from prefect.runtime import deployment

    return deployment.id is not None


def _cancel_queued(handled: set[str]) -> None:
    """Cancel this deployment's queued runs for snapshots this run has just handled (in a burst, each landed
    file queued its own run): otherwise each would start a process only to find its snapshot done."""
    from prefect.runtime import deployment, flow_run

    if deployment.id is None:
        return  # not a deployment run: nothing is queued behind it
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled

    queued = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
    )
    note = f"its snapshot was handled by flow run {flow_run.name} ({flow_run.id}), which came first in landing order"
    try:
        with get_client(sync_client=True) as client:
            for run in client.read_flow_runs(flow_run_filter=queued):
                if run.parameters.get("sha256") in handled and str(run.id) != str(flow_run.id):
                    # Not forced: a run the runner has meanwhile begun to start keeps going (and skips its snapshot).
                    result = client.set_flow_run_state(run.id, Cancelled(message=note))
                    if result.status == SetStateStatus.ACCEPT:
                        get_run_logger().info("cancelled queued run %s: %s", run.name, note)
    except Exception as exc:  # an optimisation only: a run left queued skips its snapshot when it starts
        get_run_logger().warning("could not cancel queued runs already handled here: %s", exc)


def _retrain_earlier(pending: ledger.Pending, settings: Settings) -> dict:
    """Retrain one earlier snapshot as a subflow. A rejected one (moved to the quarantine) is passed over;
    any other failure stops this run, so nothing later is trained before that snapshot."""
    state = retrain(snapshot=pending.arrival.uri, settings=settings, in_order=False, return_state=True)
    if not state.is_failed():
        return state.result()
    moved = quarantine.records(settings.data.quarantine_location)
    if not any(landing_files.same_file(r.source, pending.arrival.uri) for r in moved):  # quarantined just now
        raise RewarmError(f"{pending.arrival.name} failed and comes first in landing order: {state.message}")
    get_run_logger().warning("%s was rejected, passed over: %s", pending.arrival.name, state.message)
    return {"snapshot": pending.arrival.name, "sha256": pending.sha256, "failed": True, "reason": state.message}


def run_retrain(settings: Settings, snapshot: str, force: bool = False, expected: str | None = None) -> dict:
    """The retrain itself, on validated settings; content already processed is skipped unless FORCE.

    Crash safety comes from the order of writes and from recovery here, on the next run of the same
    content (no hook runs when a process is killed): runs a dead process left open are closed; a version
    registered but whose aliases never moved has its recorded decision applied, with no retraining; a
    training that was cut short resumes from its epoch checkpoint.
    """
    store = open_store(resolve_store())
    client, name = MlflowClient(), settings.model.name
    if expected is not None:  # announced by an event or a deployment parameter: only files in data.landing
        landing_files.check_announced(snapshot, settings.data.landing)
    try:
        raw, sha = fetch_snapshot(snapshot)
    except SnapshotRejected:
        if expected is not None and (gone := _gone(settings, client, snapshot, expected)) is not None:
            return gone
        raise
    except PermissionError as exc:  # not the data's fault, but it can never be read as it is: quarantined
        rejected = SnapshotRejected(
            f"{snapshot}: cannot be read ({exc}); give rewarm read access to it", kind="unreadable"
        )
        raise _quarantine(settings, snapshot, ledger.UNREADABLE + snapshot, rejected) from exc
    if expected is not None and sha != expected:
        return _changed(name, snapshot, expected, sha)
    experiment = experiment_id(store, name)
    closed = tracking.close_abandoned(client, experiment, sha, f"its process died; closed by a rerun at {_now()}")
    if closed:
        get_run_logger().warning(
            "closed %d run(s) a killed retrain of this snapshot left open: %s", len(closed), closed
        )
    checkpoints = store.home / "checkpoints" / name / sha[:16]
    for version in ledger.unapplied(client, name, sha):
        return _recovered(name, snapshot, sha, int(version.version), checkpoints)
    done = ledger.processed(client, name).get(sha)
    if done is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)  # left by a kill after the round's last write
        if not force:
            return _skipped(name, snapshot, sha, done)
    champion = load_champion(name)
    history = settings.data.history_location(store.home, name)
    try:
        _check_name(snapshot)
        classes = champion.preprocessor.classes if champion else ()
        landed = read_snapshot(snapshot, raw, settings.data, history, classes)
        parent = (champion.preprocessor, champion.arch) if champion else None
        device = pick_device(settings.train.device)
        data = prepare_round(settings, landed.info, landed.frame, history, parent, device)
    except SnapshotRejected as exc:
        raise _quarantine(settings, snapshot, sha, exc) from exc
    info = keep_snapshot(landed, data.split_scheme)  # only a snapshot the round accepted joins the training history
    lineage = _lineage(info, champion, data)
    with tracking.run(client, experiment, f"retrain {info.name}", {tracking.KIND_TAG: "retrain", **lineage}) as run_id:
        tracking.log(client, run_id, params=_round_params(settings), tags=lineage, metrics=_unseen(champion, landed))
        tracking.log_dataset(
            client,
            run_id,
            data.train_frame,
            f"{name}-train-r{info.sequence}",
            history,
            settings.data.target,
            [u.sha256 for u in data.used],
        )
        if device.type == "cuda" and not os.environ.get("PREFECT_API_URL"):
            ensure_gpu_limit(settings.service.gpu_slots)  # Prefect's temporary server: nobody else made it
        with gpu_slot(device):  # every model's trainings share the GPUs: the global limit, strict
            outcomes = _train_all(client, experiment, run_id, settings, data, champion, checkpoints)
            champ = _score_champion(client, experiment, run_id, champion, data, lineage)
        decision = gate.decide(
            settings.gate,
            settings.metric,
            data.y_holdout,
            {o.name: o.predictions for o in outcomes.values()},
            champ.predictions if champ else None,
            champion.version if champion else None,
            seed=settings.train.seed,
        )
        get_run_logger().info(decision.reason)
        version = _register(name, outcomes[decision.winner], decision, data, lineage)
        replaced = move_aliases(name, version, decision)
        summary = round_summary(name, info, decision, version, replaced, outcomes, champ, data)
        _report(client, run_id, summary, outcomes)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return summary


def _check_name(snapshot: str) -> None:
    name = snapshot.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    try:
        landing_files.safe_name(name)
    except RewarmError as exc:
        raise SnapshotRejected(f"{snapshot}: {exc}; rename the file", kind="unsafe_name") from exc


def _quarantine(settings: Settings, snapshot: str, sha: str, exc: SnapshotRejected) -> SnapshotRejected:
    """Move a rejected snapshot from the landing location to the quarantine; return the error to raise.
    A file named from elsewhere on the command line stays where it is: the user sees the error at once."""
    if not landing_files.contains(settings.data.landing, snapshot):
        return exc
    record = quarantine_snapshot(settings.data.quarantine_location, snapshot, sha, settings.model.name, exc)
    return SnapshotRejected(
        f"{exc}; moved to {record.location} (fix it, then `rewarm quarantine retry {record.name}`)",
        exc.problems,
        exc.kind,
    )


def _unseen(champion: LoadedModel | None, landed) -> dict[str, float]:
    """Rows (and distinct values) of the new snapshot whose category the champion never saw: they reach its
    unknown bucket, not an error. Logged with the round."""
    if champion is None:
        return {}
    counts = champion.preprocessor.unseen(landed.frame)
    out = {f"unseen_rows_{c}": float(rows) for c, (rows, _) in counts.items()}
    return out | {f"unseen_values_{c}": float(values) for c, (_, values) in counts.items()}


def _gone(settings: Settings, client: MlflowClient, snapshot: str, expected: str) -> dict | None:
    """A skip record when the announced file is gone because its content was dealt with already."""
    name = settings.model.name
    done = ledger.processed(client, name).get(expected)
    if done is not None:
        return _skipped(name, snapshot, expected, done)
    if quarantine.holds(settings.data.quarantine_location, expected):
        reason = f"{Path(snapshot).name}: already quarantined (see `rewarm quarantine list`); nothing retrained"
        return _outcome(name, snapshot, expected, reason, skipped=True)
    return None


def _recovered(name: str, snapshot: str, sha: str, version: int, checkpoints: Path) -> dict:
    """Finish a round that a killed process left registered but unapplied: no retraining, no new version."""
    done, previous = recover_round(name, version)
    shutil.rmtree(checkpoints, ignore_errors=True)
    reason = {
        "promoted": f"v{version} made champion",
        "challenger": f"v{version} kept as challenger",
        "stale": f"v{version} left as it is: the champion moved since its round compared against it",
    }[done]
    reason = f"{Path(snapshot).name}: finished the round a killed run left at v{version} registered: {reason}"
    return _outcome(name, snapshot, sha, reason, logging.WARNING, version=version, recovered=done, replaced=previous)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _outcome(name: str, snapshot: str, sha: str, reason: str, level: int = logging.INFO, **extra: object) -> dict:
    """The flow's result when it trains nothing (a skip, a recovery): logged, with the REASON for the user."""
    get_run_logger().log(level, reason)
    return {"model": name, "snapshot": Path(snapshot).name, "sha256": sha, **extra, "reason": reason}


def _skipped(name: str, snapshot: str, sha: str, version: int) -> dict:
    reason = (
        f"{Path(snapshot).name}: content already processed as {name} v{version} (sha256 {sha[:12]}); "
        "nothing retrained (pass force=True, or --force, to retrain on it again)"
    )
    return _outcome(name, snapshot, sha, reason, skipped=True, version=version)


def _changed(name: str, snapshot: str, expected: str, found: str) -> dict:
    reason = (
        f"{Path(snapshot).name}: rewritten since it landed (sha256 {expected[:12]} announced, {found[:12]} now); "
        "nothing retrained here: the watcher announces the new content once it is complete"
    )
    return _outcome(name, snapshot, found, reason, logging.WARNING, skipped=True)


def _lineage(info: SnapshotInfo, champion: LoadedModel | None, data: RoundData) -> dict[str, object]:
    """Tags that say where a model came from: the snapshot, its hash, the parent version, rows used."""
    return {
        "rewarm.snapshot": info.name,
        "rewarm.snapshot_sha256": info.sha256,
        "rewarm.parent_version": champion.version if champion else "none",
        "rewarm.rows_train": len(data.train) + len(data.val),
        "rewarm.round": info.sequence,
        "rewarm.split_scheme": data.split_scheme,
    }


def _score_champion(
    client: MlflowClient,
    experiment: str,
    run_id: str,
    champion: LoadedModel | None,
    data: RoundData,
    lineage: dict[str, object],
) -> Outcome | None:
    """Score the untouched champion in its own nested run; None before the first model."""
    if champion is None:
        return None
    tags = {tracking.KIND_TAG: "champion", **lineage}
    with tracking.run(client, experiment, "champion", tags, parent=run_id) as child:
        return score_champion(champion.module, champion.preprocessor, data, child)


def _register(name: str, winner: Outcome, decision: gate.Decision, data: RoundData, lineage: dict[str, object]) -> int:
    """Register the round's winner with its lineage, metrics and the decision; aliases move afterwards."""
    tags = {k.removeprefix("rewarm."): v for k, v in lineage.items()}
    tags |= {"strategy": winner.name, "decision": decision.action, "reason": decision.reason}
    tags |= {f"holdout_{k}": f"{v:.6f}" for k, v in winner.metrics.items()}
    meta = {
        "strategy": winner.name,
        "parent_version": lineage["rewarm.parent_version"],
        "snapshot": data.snapshot.to_dict(),
        "decision": decision.to_dict(),
    }
    return register_model(name, winner.run_id, winner.module, data.preprocessor, meta, tags)


def _train_all(
    client: MlflowClient,
    experiment: str,
    run_id: str,
    settings: Settings,
    data: RoundData,
    champion: LoadedModel | None,
    checkpoints: Path | None = None,
) -> dict[str, Outcome]:
    """Train every strategy in its own nested run; the first model is always a cold start."""
    outcomes: dict[str, Outcome] = {}
    parent, parent_version = (champion.module, champion.version) if champion else (None, None)
    for choice in _strategies(settings, champion is not None):
        with tracking.run(client, experiment, choice.name, {tracking.KIND_TAG: "candidate"}, parent=run_id) as child:
            outcome = train_candidate(choice, data, parent, settings.train, child, checkpoints, parent_version)
            outcome.run_id = child
            outcomes[choice.name] = outcome
    return outcomes


def _strategies(settings: Settings, have_champion: bool) -> list[Strategy]:
    if not have_champion:
        return [COLD]
    return [strategy(n, settings.train.shrink, settings.train.perturb) for n in settings.train.strategies]


def _round_params(settings: Settings) -> dict[str, object]:
    t, g = settings.train, settings.gate
    return {
        "strategies": ",".join(t.strategies),
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
    }


def _report(client: MlflowClient, run_id: str, summary: dict, outcomes: dict[str, Outcome]) -> None:
    """Decision tags, compute saved, learning curves in MLflow; the decision as a Prefect artifact."""
    tracking.log(
        client,
        run_id,
        metrics=summary["parent_metrics"],
        tags={
            "rewarm.decision": summary["decision"],
            "rewarm.reason": summary["reason"],
            "rewarm.version": summary["version"],
            "mlflow.note.content": summary["reason"],
        },
    )
    trained = {n: o.result for n, o in outcomes.items() if o.result is not None}
    fig = tracking.learning_curves(trained, f"round {summary['round']}: {summary['snapshot']}")
    client.log_figure(run_id, fig, "learning_curves.png")
    create_markdown_artifact(
        key=f"{summary['model_key']}-decision",
        markdown=decision_markdown(summary),
        description=summary["reason"],
    )
