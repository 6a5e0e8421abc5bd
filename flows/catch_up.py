"""Catch up: retrain the snapshots still pending in the landing location, oldest first, so rounds keep landing
order whichever queued run starts first."""

from __future__ import annotations

from mlflow import MlflowClient
from prefect import flow, get_run_logger

from rewarm import landing as landing_files
from rewarm import ledger, quarantine
from rewarm.config import Settings
from rewarm.errors import RewarmError
from rewarm.results import RoundResult
from rewarm.tasks.policy import one_line_errors


def pending_before(settings: Settings, snapshot: str | None) -> list[ledger.Pending]:
    """Pending snapshots in data.landing that landed before SNAPSHOT (all of them when None), oldest first."""
    landing = settings.data.landing
    if snapshot is not None and not landing_files.contains(landing, snapshot):
        return []  # a file from elsewhere, named on the command line: no landing order to keep
    before = None
    if snapshot is not None:
        mine = [a for a in landing_files.scan(landing) if landing_files.same_file(a.uri, snapshot)]
        if not mine:
            return []
        before = mine[0].order
    done = ledger.processed(MlflowClient(), settings.model.name)
    return ledger.pending(landing, done, settings.service.settle_seconds, before)


@flow(name="catch-up", validate_parameters=False)
def catch_up(settings: Settings, pending: list[ledger.Pending]) -> list[RoundResult]:
    """Retrain each PENDING snapshot, oldest first, each as a retrain subflow. A rejected one (moved to the
    quarantine) is passed over; any other failure stops here, so nothing later is trained before it."""
    one_line_errors()
    get_run_logger().info(
        "%d pending snapshot(s) to retrain first, oldest first: %s", len(pending), [p.arrival.name for p in pending]
    )
    return [_retrain_one(p, settings) for p in pending]


def _retrain_one(pending: ledger.Pending, settings: Settings) -> RoundResult:
    from rewarm.flows.retrain import retrain  # the round's flow runs catch-up first: imported when needed

    state = retrain(snapshot=pending.arrival.uri, settings=settings, in_order=False, return_state=True)
    if not state.is_failed():
        return state.result()
    moved = quarantine.records(settings.data.quarantine_location)
    if not any(landing_files.same_file(r.source, pending.arrival.uri) for r in moved):  # quarantined just now
        raise RewarmError(f"{pending.arrival.name} failed and comes first in landing order: {state.message}")
    error = state.result(raise_on_failure=False)  # the rejection itself, without Prefect's "Flow run ..." wrapper
    reason = (str(error) if isinstance(error, BaseException) else "") or state.message or ""
    get_run_logger().warning("%s was rejected, passed over: %s", pending.arrival.name, reason)
    return RoundResult("rejected", settings.model.name, reason, pending.arrival.name, pending.sha256)
