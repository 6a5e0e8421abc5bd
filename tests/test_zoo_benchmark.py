"""`rewarm benchmark --zoo`: rewarm's rounds and default LightGBM on the same rows, and what the report says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rewarm import metrics, rounds
from rewarm.benchmarks import trees, zoo_bench
from rewarm.benchmarks.replay import stage
from rewarm.benchmarks.zoo import BY_NAME, DATASETS, resolve
from rewarm.cli import main


def test_the_zoo_covers_what_it_promises() -> None:
    """The fixed list: at least ten datasets, every kind of table the issue names (checked on the data)."""
    assert len(DATASETS) >= 10 and len(BY_NAME) == len(DATASETS)
    tasks = {d.data["task"] for d in DATASETS}
    assert tasks == {"binary", "multiclass", "regression"}
    first = {d.name: d.snapshots()[0][1] for d in DATASETS}
    assert all(len(d.snapshots()) >= 3 for d in DATASETS)
    assert max(sum(len(f) for _, f in d.snapshots()) for d in DATASETS) >= 100_000  # large
    assert min(len(f) for f in first.values()) <= 200  # tiny
    assert max(len(resolve(d.data, list(first[d.name].columns)).get("numeric", ())) for d in DATASETS) >= 50  # wide
    assert any(not d.data.get("numeric") for d in DATASETS)  # all-categorical
    assert any(not d.data.get("categorical") for d in DATASETS)  # all-numeric
    dtypes = {str(t) for f in first.values() for t in f.dtypes}
    assert {"bool", "string"} <= dtypes and any(t.startswith("datetime64") for t in dtypes)
    assert any(f.isna().any().any() for f in first.values())  # nulls
    assert max(f[c].nunique() for d in DATASETS for c in d.data.get("categorical", ()) for f in [first[d.name]]) > 500
    regression = [d for d in DATASETS if d.data["task"] == "regression"]
    levels = [[f[d.data["target"]].mean() for _, f in d.snapshots()] for d in regression]
    assert any(m[-1] > 1.5 * m[0] and sorted(m[:3]) == m[:3] for m in levels)  # a target trending up
    unlabelled = [d for d in DATASETS if d.data.get("unlabelled") == "drop"]  # rows whose label is missing
    assert unlabelled and all(any(f[d.data["target"]].isna().any() for _, f in d.snapshots()) for d in unlabelled)


def test_trees_fit_the_rounds_rows_and_score_its_holdout(tmp_path: Path) -> None:
    dataset = BY_NAME["default"]
    settings = zoo_bench.settings_for(dataset)
    [(info, frame)] = stage(dataset.snapshots(600)[:1], tmp_path)
    data = rounds.prepare(settings, info, frame, [], None, torch.device("cpu"))
    x = trees.features(data.preprocessor, data.holdout_frame)
    assert list(x.columns) == ["balance", "income", "student"]
    assert set(np.unique(x["student"])) <= {1, 2}  # rewarm's append-only codes (0 = unknown)
    result = trees.fit_and_score(data, seed=0)
    assert result.predictions.shape == (len(data.holdout_frame),)
    expected = metrics.roc_auc(data.y_holdout, result.predictions)
    assert result.scores["roc_auc"] == pytest.approx(expected) and result.scores["roc_auc"] > 0.5


def test_the_zoo_benchmark_reports_every_dataset_beside_the_trees(tmp_path: Path) -> None:
    table, files = zoo_bench.run(tmp_path, ["iris", "titanic"], max_rows=90, log_mlflow=False, train={"max_epochs": 3})
    assert [f.name for f in files] == ["zoo_rows.csv", "zoo.csv", "report.md", "zoo.png"]
    assert list(table["dataset"]) == ["iris", "titanic"]
    raw = pd.read_csv(files[0])
    assert set(raw["round"]) == {1, 2, 3} and (raw["trees_seconds"] > 0).all()
    # The lead is rewarm minus trees, losses negated: iris is scored on log_loss (lower is better).
    iris = raw[(raw["dataset"] == "iris") & (raw["round"] > 1)]
    assert table.set_index("dataset").loc["iris", "lead"] == pytest.approx((iris["trees"] - iris["champion"]).mean())
    report = files[2].read_text()
    behind = [r.dataset for r in table.itertuples() if r.lead < 0]
    assert f"at least matches the trees on {2 - len(behind)} of 2 datasets" in report
    assert all(name in report.rsplit("behind:", 1)[1] for name in behind)


@pytest.mark.parametrize("architecture", ["tabm", "mlp_plr"])
def test_the_zoo_runs_with_another_architecture(tmp_path: Path, architecture: str) -> None:
    """Multiclass iris (numbers only) and all-categorical titanic (no number to bin) through the rounds."""
    table, files = zoo_bench.run(
        tmp_path, ["iris", "titanic"], max_rows=90, log_mlflow=False, train={"max_epochs": 2}, architecture=architecture
    )
    assert list(table["dataset"]) == ["iris", "titanic"] and table["rewarm"].notna().all()
    assert f"architecture: {architecture}" in files[2].read_text()
    assert zoo_bench.settings_for(zoo_bench.DATASETS[0], architecture=architecture).model.architecture == architecture


def test_an_unknown_zoo_dataset_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["benchmark", "--zoo", "--datasets", "iris,nope", "--out", str(tmp_path), "--no-mlflow"]) != 0
    err = capsys.readouterr().err
    assert "no zoo dataset named ['nope']" in err and "iris" in err
