"""Links into the MLflow UI that open on what they name, in its model-training view.

MLflow 3's UI opens an experiment in its GenAI view unless the link (or the browser's stored choice) says
otherwise: every link here carries `workflowType=machine_learning`, so a fresh browser lands on the runs, the
model or the version named. A tracking server serves its own UI; a local store's UI is `mlflow ui`, on port
5000 as the README starts it.
"""

from __future__ import annotations

import os
from urllib.parse import quote

MODEL_TRAINING = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # `mlflow ui --backend-store-uri ... --port 5000`


def ui_base(tracking_uri: str) -> str:
    """Where the MLflow UI of TRACKING_URI answers: REWARM_MLFLOW_UI_URL if set (a UI behind a proxy, or `mlflow
    ui` on another port), else the tracking server itself, or `mlflow ui` on port 5000 for a local store."""
    if os.environ.get("REWARM_MLFLOW_UI_URL"):
        return os.environ["REWARM_MLFLOW_UI_URL"].rstrip("/")
    if tracking_uri.split(":", 1)[0] in ("http", "https"):
        return tracking_uri.rstrip("/")
    return LOCAL_UI


def runs(base: str, experiment_id: str) -> str:
    """The experiment's training runs."""
    return f"{base}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}"


def run(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"


def chart(base: str, experiment_id: str, run_id: str) -> str:
    """A run's metric charts (the history run's lines over rounds)."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics?{MODEL_TRAINING}"


def model(base: str, name: str) -> str:
    """The registered model: its versions and aliases."""
    return f"{base}/#/models/{quote(name, safe='')}?{MODEL_TRAINING}"


def version(base: str, name: str, number: int | str) -> str:
    return f"{base}/#/models/{quote(name, safe='')}/versions/{number}?{MODEL_TRAINING}"
