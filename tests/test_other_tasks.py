"""Regression and multiclass retrains end to end on real flight data (the demo covers binary)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from flight_snapshots import small_month
from mlflow import MlflowClient

from rewarm.flows.retrain import retrain

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

CONFIG = """
[model]
name = "{name}"
hidden = [16]
embedding_dim = 4
[data]
target = "{target}"
task = "{task}"
numeric = {numeric}
categorical = {categorical}
extra_columns = "ignore"
[train]
max_epochs = 8
patience = 3
batch_size = 128
[gate]
metric = "{metric}"
bootstrap = 200
"""


def _months(tmp_path: Path, flights: pd.DataFrame, fmt: str) -> list[Path]:
    paths = []
    for month in (1, 2):
        frame = small_month(flights, month, rows=1000)
        path = tmp_path / f"m{month}.{fmt}"
        frame.to_parquet(path) if fmt == "parquet" else frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def _config(tmp_path: Path, **values: object) -> str:
    path = tmp_path / "rewarm.toml"
    path.write_text(CONFIG.format(**{k: str(v).replace("'", '"') for k, v in values.items()}))
    return str(path)


def test_regression_scores_and_gates_in_the_targets_units(tmp_path: Path, home: Path, flights) -> None:
    # Temperature (degrees F, std ~17) from the other weather readings and the airport.
    config = _config(
        tmp_path,
        name="temp-model",
        target="temp",
        task="regression",
        metric="rmse",
        numeric=["dewp", "humid", "wind_speed", "pressure"],
        categorical=["origin"],
    )
    jan, feb = _months(tmp_path, flights, "csv")
    retrain(str(jan), config=config)
    second = retrain(str(feb), config=config)
    rmse = second.strategies["cold"]["rmse"]
    assert 0.5 < rmse < 15, "RMSE must be in degrees, not standard deviations"
    assert second.champion["mae"] < 30 and "holdout rmse" in second.reason
    rows = pd.read_csv(feb)
    predicted = mlflow.pyfunc.load_model("models:/temp-model@champion").predict(rows.drop(columns="temp"))
    assert abs(predicted["prediction"].mean() - rows["temp"].mean()) < 10
    version = MlflowClient().get_model_version("temp-model", str(second.version))
    assert float(version.tags["rewarm.holdout_rmse"]) == pytest.approx(second.strategies[second.winner]["rmse"])


def test_multiclass_predicts_labels_and_class_probabilities(tmp_path: Path, home: Path, flights) -> None:
    # Which of the three NYC airports a flight leaves from, given route, carrier and schedule.
    config = _config(
        tmp_path,
        name="origin-model",
        target="origin",
        task="multiclass",
        metric="log_loss",
        numeric=["distance", "sched_dep_hour"],
        categorical=["carrier", "dest"],
    )
    jan, feb = _months(tmp_path, flights, "parquet")
    first = retrain(str(jan), config=config)
    second = retrain(str(feb), config=config, strategies=["shrink_perturb", "warm", "cold"])
    assert first.decision == "first_model" and set(second.strategies) == {"shrink_perturb", "warm", "cold"}
    assert second.strategies["cold"]["accuracy"] > 0.45  # a third would be chance
    rows = pd.read_parquet(feb).head(50)
    predicted = mlflow.pyfunc.load_model("models:/origin-model@champion").predict(rows.drop(columns="origin"))
    assert list(predicted.columns) == ["prediction", "probability_EWR", "probability_JFK", "probability_LGA"]
    assert set(predicted["prediction"]) <= {"EWR", "JFK", "LGA"}
    assert predicted.filter(like="probability_").sum(axis=1).round(4).eq(1).all()
