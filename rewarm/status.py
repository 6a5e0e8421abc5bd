"""`rewarm status`: the champion, its metrics and lineage, the challenger, and the last decisions."""

from __future__ import annotations

import os

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from rewarm import audits, landing, ledger, links, quarantine
from rewarm.config import Settings
from rewarm.registry import CHALLENGER, CHAMPION, TAG, current_version
from rewarm.tracking import KIND_TAG

SKIPPED = "not trained unless the round's holdout gives evidence (cold_between_audits skip)"


def collect(
    client: MlflowClient,
    name: str,
    last: int = 5,
    cold_every: int | None = None,
    between: str = "race",
    backoff: float = 1.0,
) -> dict:
    """Everything status shows, as plain data (so it is testable without a terminal); with COLD_EVERY, what
    the next retrain does with cold (rewarm/audits.py; BETWEEN: train.cold_between_audits; BACKOFF:
    train.audit_backoff, which widens the evidence margin)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return {"model": name, "registered": False}
    out: dict = {"model": name, "registered": True, "last_event": model.tags.get(TAG + "last_event")}
    for alias in (CHAMPION, CHALLENGER):
        version = current_version(client, name, alias)
        out[alias] = None if version is None else _version(client, name, version)
    out["decisions"] = _decisions(client, name, last)
    out["links"] = _links(client, name, out[CHAMPION])
    if out[CHAMPION] is not None:
        out["python"] = python_line(name, mlflow.get_tracking_uri())
    if cold_every is not None:
        complete = [dict(v.tags) for v in ledger.versions(client, name) if v.tags.get(TAG + "complete") == "true"]
        otherwise = {"race": "races (stopped once it cannot catch up)", "skip": SKIPPED}[between]
        out["next_cold"] = audits.planned(complete, cold_every) or otherwise
        fruitless = audits.fruitless(complete)
        if backoff > 1 and fruitless:
            out["evidence_margin"] = (
                f"audit_margin {audits.widening((backoff, fruitless))} (train.audit_backoff {backoff:g}); back to "
                "audit_margin once cold wins an audit"
            )
    return out


def python_line(name: str, tracking_uri: str) -> str:
    """The line that loads NAME's champion in a user's own Python. A local store (rewarm's SQLite file) is named,
    since a fresh process would look in its own folder; a server's address, which may hold a password, is not
    printed: it is read from MLFLOW_TRACKING_URI, as rewarm read it."""
    load = f"model = mlflow.pyfunc.load_model({f'models:/{name}@{CHAMPION}'!r})"
    if tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri:
        return f"import mlflow; mlflow.set_tracking_uri({tracking_uri!r}); {load}"
    return f"import os, mlflow; mlflow.set_tracking_uri(os.environ['MLFLOW_TRACKING_URI']); {load}"


def _links(client: MlflowClient, name: str, champion: dict | None) -> dict[str, str]:
    """Where to look in the MLflow UI: the model, its champion, the runs and the history chart."""
    base = links.ui_base(mlflow.get_tracking_uri())
    out = {"model": links.model(base, name)}
    if champion is not None:
        out["champion"] = links.version(base, name, champion["version"])
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        out["runs"] = links.runs(base, experiment.experiment_id)
        history = client.search_runs([experiment.experiment_id], f"tags.`{KIND_TAG}` = 'history'", max_results=1)
        if history:
            out["history"] = links.chart(base, experiment.experiment_id, history[0].info.run_id)
    return out


def _version(client: MlflowClient, name: str, version: int) -> dict:
    tags = client.get_model_version(name, str(version)).tags
    mine = {k.removeprefix(TAG): v for k, v in tags.items() if k.startswith(TAG)}
    return {"version": version, **mine}


def _decisions(client: MlflowClient, name: str, last: int) -> list[dict]:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{KIND_TAG}` = 'retrain'",
        order_by=["attributes.start_time DESC"],
        max_results=last,
    )
    return [
        {
            "run_id": r.info.run_id,
            "status": r.info.status,
            "snapshot": r.data.tags.get("rewarm.snapshot"),
            "decision": r.data.tags.get("rewarm.decision", "(unfinished)"),
            "reason": r.data.tags.get("rewarm.reason", ""),
        }
        for r in runs
    ]


def render(status: dict) -> str:
    """Plain-text status for the terminal."""
    name = status["model"]
    if not status["registered"]:
        return f"model {name!r} has no registered versions yet: run `rewarm retrain SNAPSHOT` or `rewarm demo`"
    lines = [f"model {name}"]
    for alias in (CHAMPION, CHALLENGER):
        v = status[alias]
        if v is None:
            lines.append(f"  {alias}: (none)")
            continue
        metrics = ", ".join(
            f"{k.removeprefix('holdout_')} {float(x):.4f}" for k, x in v.items() if k.startswith("holdout_")
        )
        lines.append(f"  {alias}: v{v['version']} ({v.get('strategy', '?')}) holdout {metrics}")
        lines.append(
            f"    lineage: snapshot {v.get('snapshot', '?')} (sha256 {v.get('snapshot_sha256', '?')[:12]}), "
            f"parent v{v.get('parent_version', '?')}, {v.get('rows_train', '?')} training rows, "
            f"round {v.get('round', '?')}"
        )
        if alias == CHAMPION and status.get("python"):
            lines.append(f"    in Python: {status['python']}")
    if status.get("last_event"):
        lines.append(f"  last alias event: {status['last_event']}")
    if status.get("next_cold"):
        lines.append(f"  next retrain, cold: {status['next_cold']}")
    if status.get("evidence_margin"):
        lines.append(f"  evidence margin: {status['evidence_margin']}")
    lines.append("last decisions (newest first):")
    for d in status["decisions"]:
        lines.append(f"  {d['snapshot']}: {d['decision']} [{d['status']}] {d['reason']}")
    if status.get("links"):
        lines.append("in the MLflow UI:")
        lines += [f"  {what}: {url}" for what, url in status["links"].items()]
    return "\n".join(lines)


def service(settings: Settings, last: int = 5) -> dict:
    """The service side: snapshots waiting in the landing location, quarantined ones, the last Prefect runs."""
    name = settings.model.name
    waiting = ledger.pending(
        settings.data.landing, ledger.processed(MlflowClient(), name), settings.service.settle_seconds
    )
    held = quarantine.records(settings.data.quarantine_location)
    return {
        "landing": settings.data.landing,
        "pending": [p.arrival.name for p in waiting],
        "unread": landing.unread(settings.data.landing),
        "absent": landing.absent_note(settings.data.landing),
        "quarantine": settings.data.quarantine_location,
        "quarantined": [{"name": r.name, "reason": r.reason} for r in held],
        "runs": _flow_runs(name, last) if os.environ.get("PREFECT_API_URL") else None,
    }


def _flow_runs(name: str, last: int) -> list[dict]:
    """The retrain deployment's last flow runs, newest first (needs a running Prefect server)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=last,
        )
    return [
        {"name": r.name, "state": r.state_name, "start": str(r.start_time or r.expected_start_time)[:19]} for r in runs
    ]


def render_service(service: dict) -> str:
    """Plain-text service status for the terminal."""
    pending = service["pending"]
    lines = [f"landing {service['landing']}: {len(pending)} pending snapshot(s)" + (f": {pending}" if pending else "")]
    lines[0] += service.get("absent", "")
    if note := landing.unread_note(service.get("unread", [])):
        lines.append(f"  {note}")
    if service["quarantined"]:
        lines.append(f"quarantine {service['quarantine']}: {len(service['quarantined'])} snapshot(s)")
    for r in service["quarantined"]:
        lines.append(f"  {r['name']}: {r['reason']}")
    if service["quarantined"]:
        lines.append("  fix a file in place, then: rewarm quarantine retry NAME")
    if service["runs"] is None:
        lines.append("last runs: set PREFECT_API_URL to the service's Prefect server to list them")
    else:
        lines.append("last runs (newest first):")
        lines += [f"  {r['start']} {r['name']}: {r['state']}" for r in service["runs"]] or ["  (none yet)"]
    return "\n".join(lines)
