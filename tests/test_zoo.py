"""The dataset zoo through the real CLI and flow: a bootstrap and two retrains per dataset, each dataset with only
a rewarm.toml, then its champion (loaded as users load it, by alias) beats the trivial predictor on the holdout.

Rows per snapshot are capped here (full sizes in `rewarm benchmark --zoo`); the tier runs on the embedded
profile only (it checks datasets, not stores).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import PROFILE
from mlflow import MlflowClient

from rewarm.benchmarks.zoo import DATASETS, ZooDataset
from rewarm.cli import main
from rewarm.config import load_settings
from rewarm.snapshots import list_history, load
from rewarm.splits import holdout_mask

pytestmark = [
    pytest.mark.slow,
    pytest.mark.zoo,
    pytest.mark.skipif(PROFILE != "embedded", reason="the zoo tier checks datasets; it runs on the embedded profile"),
]
ROWS = 400  # per snapshot in this tier
ROUNDS = 3
TRAIN = {"max_epochs": 12, "seed": 0}  # small and fixed: a heavier default must not slow the suite


def _write(dataset: ZooDataset, folder: Path) -> tuple[Path, list[Path]]:
    landing = folder / "landing"
    landing.mkdir(parents=True)
    paths = []
    for name, frame in dataset.snapshots(ROWS)[:ROUNDS]:
        path = landing / f"{name}.{dataset.fmt}"
        if dataset.fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        paths.append(path)
    config = folder / "rewarm.toml"
    config.write_text(dataset.toml("landing", list(frame.columns), train=TRAIN))
    return config, paths


def _trivial_and_model(settings, champion, holdout: pd.DataFrame, train: pd.DataFrame) -> tuple[float, float]:
    """The holdout metric of the trivial predictor (training prior or mean) and of the champion, computed here
    with scikit-learn; both higher-is-better (negated losses)."""
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

    spec = settings.data
    out = champion.predict(holdout.drop(columns=spec.target))
    y = holdout[spec.target]
    if spec.task == "regression":
        mean = float(train[spec.target].mean())
        return -mean_squared_error(y, np.full(len(y), mean)), -mean_squared_error(y, out["prediction"])
    # scikit-learn's log_loss takes the columns in its own sorted order of the labels: select them in that order
    labels = sorted(c.removeprefix("probability_") for c in out.columns if c.startswith("probability_"))
    text = y.astype(str).str.replace(r"\.0$", "", regex=True)
    if spec.task == "binary":  # 'probability' is the chance of the second label in sorted order
        second = sorted(pd.unique(train[spec.target]))[1]
        return 0.5, roc_auc_score(y == second, out["probability"])
    prior = train[spec.target].astype(str).str.replace(r"\.0$", "", regex=True).value_counts(normalize=True)
    trivial = np.tile([prior.get(c, 0.0) for c in labels], (len(y), 1))
    probs = out[[f"probability_{c}" for c in labels]].to_numpy()
    return -log_loss(text, trivial, labels=labels), -log_loss(text, probs, labels=labels)


@pytest.mark.parametrize("dataset", DATASETS, ids=[d.name for d in DATASETS])
def test_a_zoo_dataset_goes_through_bootstrap_and_two_retrains(
    dataset: ZooDataset, tmp_path: Path, home: Path, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, paths = _write(dataset, tmp_path)
    monkeypatch.chdir(tmp_path)
    for path in paths:
        assert main(["retrain", str(path), "--config", str(config)]) == 0, f"{dataset.name}: {path.name} failed"

    settings = load_settings(config)
    name = settings.model.name
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    assert len(versions) == ROUNDS  # one version per snapshot, each round's winner
    parents = [v.tags["rewarm.parent_version"] for v in versions]
    assert parents[0] == "none" and all(p != "none" for p in parents[1:])  # a lineage: each from a champion
    assert all(v.tags["rewarm.split_scheme"] == "2" for v in versions)
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.tags["rewarm.complete"] == "true"

    history = list_history(home / "snapshots" / name)
    assert [h.name for h in history] == [p.name for p in paths]
    spec = settings.data
    columns = [spec.target, *spec.numeric, *spec.categorical]
    newest = load(history[-1], spec)[columns]
    held = holdout_mask(
        newest, spec.holdout_fraction, spec.holdout_split, 2, spec.target if spec.task != "regression" else None
    )
    train = pd.concat([*(load(h, spec)[columns] for h in history[:-1]), newest[~held]])
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    trivial, score = _trivial_and_model(settings, model, newest[held].reset_index(drop=True), train)
    assert score > trivial, f"{dataset.name}: the champion scores {score:.4f}, the trivial predictor {trivial:.4f}"
