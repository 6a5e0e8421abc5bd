"""Links into the MLflow UI (rewarm/links.py) and what a round adds to the model's history run."""

from __future__ import annotations

import pytest

from rewarm import links
from rewarm.results import RoundResult
from rewarm.round_report import history_metrics


def test_a_tracking_server_serves_its_own_ui_and_a_local_store_the_one_the_readme_starts(monkeypatch) -> None:
    monkeypatch.delenv("REWARM_MLFLOW_UI_URL", raising=False)
    assert links.ui_base("http://mlflow.internal:5000/") == "http://mlflow.internal:5000"
    assert links.ui_base("sqlite:////home/me/.rewarm/mlflow.db") == "http://127.0.0.1:5000"
    monkeypatch.setenv("REWARM_MLFLOW_UI_URL", "https://ml.example.com/mlflow/")
    assert links.ui_base("http://mlflow.internal:5000") == "https://ml.example.com/mlflow"


def test_every_link_opens_the_model_training_view_on_what_it_names() -> None:
    base = "http://127.0.0.1:5000"
    assert links.runs(base, "7") == f"{base}/#/experiments/7/runs?workflowType=machine_learning"
    assert links.run(base, "7", "abc").endswith("/#/experiments/7/runs/abc?workflowType=machine_learning")
    assert links.chart(base, "7", "abc").endswith("/runs/abc/model-metrics?workflowType=machine_learning")
    assert (
        links.model(base, "team/flight delay") == f"{base}/#/models/team%2Fflight%20delay?workflowType=machine_learning"
    )
    assert links.version(base, "m", 3) == f"{base}/#/models/m/versions/3?workflowType=machine_learning"


def _round(decision: str, champion: dict | None, stopped_cold: bool = False) -> RoundResult:
    strategies = {
        "shrink_perturb": {"roc_auc": 0.71, "train_seconds": 1.0},
        "cold": {"roc_auc": 0.70, "train_seconds": 3.0, "stopped": stopped_cold},
    }
    parent = {"train_seconds_total": 4.0} | ({} if stopped_cold else {"compute_saved_vs_cold": 2 / 3})
    return RoundResult(
        status="trained", model="m", decision=decision, winner="shrink_perturb", metric="roc_auc",
        strategies=strategies, champion=champion, parent_metrics=parent,
    )  # fmt: skip


@pytest.mark.parametrize(("decision", "after"), [("promote", 0.71), ("keep", 0.69)])
def test_history_holds_each_strategy_and_the_champion_before_and_after(decision: str, after: float) -> None:
    shown = history_metrics(_round(decision, {"roc_auc": 0.69}))
    assert shown["roc_auc/shrink_perturb"] == 0.71 and shown["roc_auc/cold"] == 0.70
    assert shown["train_seconds/cold"] == 3.0 and shown["compute_saved_vs_cold"] == pytest.approx(2 / 3)
    assert shown["roc_auc/champion_before"] == 0.69 and shown["roc_auc/champion_after"] == after


def test_a_first_model_has_no_champion_before_and_a_stopped_cold_no_saving() -> None:
    shown = history_metrics(_round("first_model", None, stopped_cold=True))
    assert "roc_auc/champion_before" not in shown and shown["roc_auc/champion_after"] == 0.71
    assert "compute_saved_vs_cold" not in shown and shown["train_seconds_total"] == 4.0
