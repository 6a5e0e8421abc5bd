"""Retrain on a new snapshot: challengers from the champion and from scratch, scored side by side.

A round reads as its steps: fetch -> triage (processed, recover, or train) -> validate -> prepare -> train the
candidates -> score the champion -> decide -> register -> promote -> report. Every MLflow and Prefect write of
the round happens inside a task, with that task's failure policy (opening the store, and creating the GPU limit
for Prefect's temporary server on a CUDA machine, are the setup before it).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

from mlflow import MlflowClient
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from rewarm import landing as landing_files
from rewarm import lease, ledger, quarantine
from rewarm.config import Settings, load_settings
from rewarm.errors import RewarmError, SnapshotRejected
from rewarm.models.strategies import COLD, strategy
from rewarm.registry import LoadedModel
from rewarm.results import RoundResult
from rewarm.store import Store, open_store, resolve_store
from rewarm.tasks.candidates import plan_race, score_champion, train_candidates
from rewarm.tasks.gpu import gpu_slot, upsert_gpu_limit
from rewarm.tasks.policy import one_line_errors
from rewarm.tasks.promotion import decide, load_champion, move_aliases, register_model
from rewarm.tasks.queue import cancel_queued
from rewarm.tasks.round import (
    failed_on_error,
    no_training,
    open_round,
    prepare_round,
    report_round,
    skipped,
    triage_snapshot,
)
from rewarm.tasks.snapshot import Fetched, fetch_snapshot, keep_snapshot, quarantine_snapshot, read_snapshot
from rewarm.training import pick_device

from .catch_up import catch_up, pending_before


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
) -> RoundResult:
    """Admit SNAPSHOT, train challengers, score them and the champion on one holdout, promote the winner.

    Without SNAPSHOT (the scheduled run), every pending snapshot in data.landing is retrained, oldest first.
    A SNAPSHOT inside data.landing comes after every earlier pending one there (catch-up), so queued runs keep
    landing order whichever starts first. Content already processed is skipped unless FORCE. Settings come
    from CONFIG (or ./rewarm.toml) unless given whole; STRATEGIES and WINDOW override them. IN_ORDER=False skips
    catch-up (the caller keeps the order). SHA256, when given (the landed event's), is the content expected: a
    file rewritten since is left to its own event.
    """
    one_line_errors()  # a rejected snapshot is logged as its one-line reason, not a traceback
    settings = (settings or load_settings(config)).with_overrides(strategies, window)
    if snapshot is not None and (sha256 is not None or _deployment_run()):
        landing_files.check_announced(snapshot, settings.data.landing)  # announced, not the user's own shell
    store = open_store(resolve_store())
    # One writer per model, whatever started this run; the catch-up rounds inside find it held here.
    with lease.hold(settings.model.name, store.home, get_run_logger().warning):
        pending = pending_before(settings, snapshot) if in_order else []
        earlier = catch_up(settings, pending) if pending else []
        if earlier:
            cancel_queued({p.sha256 for p in pending})
        if snapshot is None:
            return RoundResult("caught_up", settings.model.name, processed=tuple(earlier))
        result = run_round(settings, store, snapshot, force, sha256)
        return replace(result, processed=tuple(earlier)) if earlier else result


def run_round(settings: Settings, store: Store, snapshot: str, force: bool, expected: str | None) -> RoundResult:
    """One round on SNAPSHOT, step by step; a skip or a recovery returns before anything is trained."""
    name, history = settings.model.name, settings.data.history_location(store.home, settings.model.name)
    fetched = _fetch(settings, snapshot, expected)
    if isinstance(fetched, RoundResult):
        return fetched
    triage = triage_snapshot(settings, store, fetched, force, expected)
    if triage.result is not None:
        return triage.result
    champion = load_champion(name)
    landed, data = _admit(settings, fetched, champion, history)
    info = keep_snapshot(landed, data.split_scheme)  # only a snapshot the round accepted joins the history
    nonce = uuid.uuid4().hex if force else ""  # --force makes a new version on purpose: a key of its own
    run = open_round(settings, triage.experiment_id, info, champion, data, landed, history, nonce)
    saved, before = triage.checkpoints, champion.version if champion else None
    choices = _choices(settings, champion)
    with failed_on_error(run):
        with gpu_slot(data.train.y.device):  # every model's trainings share the GPUs: the global limit, strict
            incumbent = score_champion(champion, data, run)
            plan = plan_race(name, settings.train, choices, incumbent, settings.metric)
            candidates = train_candidates(choices, data, champion, settings.train, run, saved, plan)
        skipped = tuple(c.name for c in choices if c.name not in candidates)  # cold between audits
        decision = decide(
            settings.gate, settings.metric, data, candidates, incumbent, before, settings.train.seed, skipped
        )
        version = register_model(name, candidates, decision, data, run.lineage)
        replaced = move_aliases(name, version, decision)
        return report_round(settings, run, info, decision, version, replaced, candidates, incumbent, data, saved)


def _fetch(settings: Settings, snapshot: str, expected: str | None) -> Fetched | RoundResult:
    """The snapshot's bytes; a file announced but gone because its content was dealt with is a skip; an
    unreadable one (no permission) is quarantined: it can never be read as it is."""
    try:
        return fetch_snapshot(snapshot)
    except SnapshotRejected:
        if expected is not None and (gone := _gone(settings, snapshot, expected)) is not None:
            return gone
        raise
    except PermissionError as exc:  # not the data's fault, but it can never be read as it is: quarantined
        rejected = SnapshotRejected(
            f"{snapshot}: cannot be read ({exc}); give rewarm read access to it", kind="unreadable"
        )
        raise _quarantine(settings, snapshot, ledger.UNREADABLE + snapshot, rejected) from exc


def _admit(settings: Settings, fetched: Fetched, champion: LoadedModel | None, history: str):
    """Validate the snapshot and build the round's data; a rejected one goes to the quarantine."""
    try:
        _check_name(fetched.uri)
        classes = champion.preprocessor.classes if champion else ()
        landed = read_snapshot(fetched, settings.data, history, classes, settings.model.name)
        parent = (champion.preprocessor, champion.arch) if champion else None
        device = pick_device(settings.train.device)
        if device.type == "cuda" and not os.environ.get("PREFECT_API_URL"):
            upsert_gpu_limit(settings.service.gpu_slots)  # Prefect's temporary server: nobody else made it
        return landed, prepare_round(settings, landed.info, landed.frame, history, parent, device)
    except SnapshotRejected as exc:
        raise _quarantine(settings, fetched.uri, fetched.sha256, exc) from exc


def _choices(settings: Settings, champion: LoadedModel | None) -> list:
    """The first model is always a cold start; afterwards every configured strategy."""
    if champion is None:
        return [COLD]
    return [strategy(n, settings.train.shrink, settings.train.perturb) for n in settings.train.strategies]


def _deployment_run() -> bool:
    from prefect.runtime import deployment

    return deployment.id is not None


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


def _gone(settings: Settings, snapshot: str, expected: str) -> RoundResult | None:
    """A skip when the announced file is gone because its content was dealt with already."""
    name = settings.model.name
    done = ledger.processed(MlflowClient(), name).get(expected)
    if done is not None:
        return skipped(name, snapshot, expected, done)
    if quarantine.holds(settings.data.quarantine_location, expected):
        reason = f"{Path(snapshot).name}: already quarantined (see `rewarm quarantine list`); nothing retrained"
        return no_training("skipped", name, snapshot, expected, reason)
    return None
