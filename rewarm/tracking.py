"""MLflow runs for a retrain: one parent, one nested run per strategy and one for the champion.

Every run logs the same metric keys so the UI's compare views line up. Metrics go in one batch per
run, by run id (MLflow's active run is thread-local, and Prefect tasks may run in other threads).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, LoggedModelOutput, Metric, Param, RunTag

from rewarm.training import TrainResult

KIND_TAG = "rewarm.kind"  # retrain | candidate | champion | history
PARENT_TAG = "mlflow.parentRunId"

log_ = logging.getLogger("rewarm.tracking")


@contextmanager
def run(
    client: MlflowClient, experiment_id: str, name: str, tags: dict[str, object], parent: str | None = None
) -> Iterator[str]:
    """Open a run (nested under PARENT if given) and close it FINISHED, FAILED if the body raises, or KILLED if
    the process is being stopped (Ctrl-C, a cancellation, SIGTERM)."""
    # Text values: a tracking server (the REST store) refuses anything else, where SQLite would coerce.
    all_tags = {k: str(v) for k, v in tags.items()} | {"mlflow.runName": name}
    all_tags |= {PARENT_TAG: parent} if parent else {}
    run_id = client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id
    try:
        yield run_id
    except BaseException as exc:
        try:
            client.set_terminated(run_id, ended_as(exc))
        except Exception as exc:  # the store may be what failed; the next retrain closes this run
            log_.warning("could not close run %s (%s); the next retrain of this snapshot will", run_id, exc)
        raise
    client.set_terminated(run_id, "FINISHED")


def ended_as(exc: BaseException) -> str:
    """The MLflow status of a run its body left with EXC: KILLED when the process is being stopped (an
    interrupt, Prefect's cancellation or termination signal, which are not Exceptions), FAILED otherwise."""
    return "FAILED" if isinstance(exc, Exception) else "KILLED"


def close_abandoned(client: MlflowClient, experiment_id: str, sha256: str, note: str) -> list[str]:
    """Mark KILLED the runs a dead process left RUNNING for snapshot SHA256 (parents and their nested runs);
    no hook runs when a process is killed, so the next retrain of the snapshot does it. Returns the parents."""
    query = f"tags.`rewarm.snapshot_sha256` = '{sha256}' and attributes.status = 'RUNNING'"
    parents = [r.info.run_id for r in client.search_runs([experiment_id], query, max_results=100)]
    for parent in parents:
        children = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'", max_results=100)
        for run_id in [parent, *(c.info.run_id for c in children if c.info.status == "RUNNING")]:
            client.set_tag(run_id, "rewarm.abandoned", note)
            client.set_terminated(run_id, "KILLED")
    return parents


def log(
    client: MlflowClient,
    run_id: str,
    metrics: dict[str, float] | None = None,
    params: dict[str, object] | None = None,
    tags: dict[str, object] | None = None,
) -> None:
    """Log metrics, params and tags in a single request."""
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def link_output(client: MlflowClient, run_id: str, name: str, version: int, step: int) -> None:
    """List the logged model that version VERSION of NAME was registered from as an output of run RUN_ID, so the
    run's page shows it under "Logged models" and the version under "Registered models" (MLflow 3). A SQLite
    store leaves a version's model_id empty; its source (models:/m-...) names the model then."""
    found = client.get_model_version(name, str(version))
    source = found.source or ""
    model_id = found.model_id or (source.removeprefix("models:/") if source.startswith("models:/m-") else None)
    listed = {o.model_id for o in client.get_run(run_id).outputs.model_outputs}
    if model_id and model_id not in listed:  # a retried report must not list it twice (a unique key)
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step)])


def log_history(client: MlflowClient, experiment_id: str, model: str, step: int, metrics: dict[str, float]) -> str:
    """Log a round's figures at STEP (the round) in the model's history run, which MLflow's charts draw as lines
    over rounds; the run is made on first use and stays FINISHED between rounds. Returns its id."""
    found = client.search_runs([experiment_id], f"tags.`{KIND_TAG}` = 'history'", max_results=1)
    if found:
        run_id = found[0].info.run_id
    else:
        note = f"Each round of {model}: every strategy's holdout metric and training seconds (step = round)."
        tags = {KIND_TAG: "history", "mlflow.runName": f"history: {model}", "mlflow.note.content": note}
        run_id = client.create_run(experiment_id, run_name=f"history: {model}", tags=tags).info.run_id
        client.set_terminated(run_id, "FINISHED")
    first = next(iter(metrics), None)
    if first is not None and any(m.step == step for m in client.get_metric_history(run_id, first)):
        return run_id  # a retried report: this round is in the history already
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
    return run_id


CURVES = ("train_loss", "val_loss")  # a training's per-epoch metrics


def log_training(client: MlflowClient, run_id: str, result: TrainResult, since: int = 0) -> None:
    """Per-epoch curves (step = epoch) after epoch SINCE (those log_curves has logged) and the training summary,
    in one request."""
    now = int(time.time() * 1000)
    summary = [Metric(k, float(v), now, 0) for k, v in training_summary(result).items()]
    client.log_batch(run_id, metrics=_curves(result, since, now) + summary)


def log_curves(client: MlflowClient, run_id: str, result: TrainResult, since: int = 0) -> int:
    """The curves of the epochs after SINCE, while a long training goes on (MLflow's charts follow it); return
    the epochs logged in all, the SINCE of the next call."""
    client.log_batch(run_id, metrics=_curves(result, since, int(time.time() * 1000)))
    return len(result.val_loss)


def _curves(result: TrainResult, since: int, now: int) -> list[Metric]:
    return [
        Metric(name, value, now, step)
        for name in CURVES
        for step, value in enumerate(getattr(result, name)[since:], start=since + 1)
    ]


def training_summary(result: TrainResult | None) -> dict[str, float]:
    """The training figures every nested run carries (zeros for the untouched champion)."""
    if result is None:
        return {"train_seconds": 0.0, "epochs": 0, "best_epoch": 0, "samples_seen": 0, "stopped": 0.0}
    return {
        "train_seconds": result.seconds,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "samples_seen": result.samples_seen,
        "stopped": float(bool(result.stopped)),  # 1: the race stopped it (rewarm/racing.py)
    }


def log_dataset(
    client: MlflowClient,
    run_id: str,
    frame: pd.DataFrame,
    name: str,
    source: str,
    target: str,
    snapshot_hashes: list[str],
) -> None:
    """Record the training rows as the run's MLflow dataset input (schema, digest, row count).

    MLflow infers a schema by visiting every value of every text column (5 s for 300k rows here), so the
    schema comes from a sample (the columns' types are the same) and the digest from the snapshots' hashes.
    """
    import hashlib
    import json
    import warnings

    import mlflow.data
    from mlflow.entities import Dataset
    from mlflow.exceptions import MlflowException

    digest = hashlib.sha256("|".join([*snapshot_hashes, str(len(frame))]).encode()).hexdigest()[:10]
    with warnings.catch_warnings():
        # A local folder matches two equivalent source types (either is right); integer columns are what
        # the snapshots hold, not a schema mistake.
        warnings.filterwarnings("ignore", message=".*(interpreted in multiple ways|integer column).*")
        try:
            sample = mlflow.data.from_pandas(frame.head(1000), source=source, targets=target, name=name, digest=digest)
        except MlflowException:  # a location MLflow has no source type for (gcs://, az://, memory://): no source
            sample = mlflow.data.from_pandas(frame.head(1000), targets=target, name=name, digest=digest)
        fields = sample.to_dict()  # the schema is inferred here, lazily: inside the filter (it warned every round)
    fields["profile"] = json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)})
    entity = Dataset(**{k: fields[k] for k in ("name", "digest", "source_type", "source", "schema", "profile")})
    context = InputTag(key="mlflow.data.context", value="training")
    client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[context])])


def learning_curves(results: dict[str, TrainResult], title: str):
    """A figure of validation (solid) and training (dashed) loss per epoch, one colour per strategy."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry touched

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for i, (name, res) in enumerate(results.items()):
        epochs = range(1, len(res.val_loss) + 1)
        ax.plot(epochs, res.val_loss, color=f"C{i}", label=f"{name} validation")
        ax.plot(epochs, res.train_loss, color=f"C{i}", linestyle="--", alpha=0.6, label=f"{name} train")
        ax.axvline(res.best_epoch, color=f"C{i}", linestyle=":", alpha=0.5)
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
