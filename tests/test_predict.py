"""`rewarm predict FILE`: a file of rows scored by the champion (or a version), read as snapshots are read, with
the metrics where the file holds the target (rewarm/scoring.py, through the real CLI and MLflow store)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from sklearn.metrics import roc_auc_score

from rewarm.cli import main


@pytest.fixture
def trained(tmp_path: Path, home: Path, flights: pd.DataFrame, prefect_server: None) -> tuple[Path, pd.DataFrame]:
    """A model bootstrapped on January and retrained on February (v1, v2); March's rows to score, as a CSV in
    which one carrier is written 'NA', a category of its own as in a snapshot (pandas would read a null)."""
    config = write_config(tmp_path, name="predict-test")
    (tmp_path / "landing").mkdir()
    for month in (1, 2):
        path = tmp_path / "landing" / f"m{month}.parquet"
        small_month(flights, month, rows=600).to_parquet(path, index=False)
        assert main(["retrain", str(path), "--config", str(config)]) == 0
    march = small_month(flights, 3, rows=300)
    march.loc[:9, "carrier"] = "NA"
    return config, march


def test_predict_writes_every_row_with_the_champions_predictions_and_scores_the_labelled(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, march = trained
    source, out = tmp_path / "march.csv", tmp_path / "scored.parquet"
    march.to_csv(source, index=False)
    assert main(["predict", str(source), "--out", str(out), "--config", str(config)]) == 0
    line = capsys.readouterr().out
    scored = pd.read_parquet(out)
    assert len(scored) == len(march) and list(scored.columns) == [*march.columns, "prediction", "probability"]
    assert scored["carrier"].head(10).eq("NA").all()  # read as written, as a snapshot's category is

    champion = mlflow.pyfunc.load_model("models:/predict-test@champion")
    rows = march.astype({"carrier": object})
    expected = champion.predict(rows)["probability"].to_numpy()
    np.testing.assert_allclose(scored["probability"].to_numpy(), expected, rtol=1e-6)
    auc = roc_auc_score(march["late"], expected)
    assert f"scored 300 row(s) of {source} with models:/predict-test@champion (v" in line
    assert f"300 row(s) hold 'late': roc_auc {auc:.4f}" in line and f"wrote {out}" in line

    # a gzipped CSV in, a gzipped CSV out: the same rows and predictions
    packed, packed_out = tmp_path / "march.csv.gz", tmp_path / "scored.csv.gz"
    march.to_csv(packed, index=False, compression="gzip")
    assert main(["predict", str(packed), "--out", str(packed_out), "--config", str(config)]) == 0
    assert packed_out.read_bytes()[:2] == b"\x1f\x8b"  # gzip's magic number: compressed as its name says
    again = pd.read_csv(packed_out, keep_default_na=False)
    np.testing.assert_allclose(again["probability"].to_numpy(), scored["probability"].to_numpy(), rtol=1e-6)
    assert f"300 row(s) hold 'late': roc_auc {auc:.4f}" in capsys.readouterr().out

    # a .tsv out is tab-separated, as a snapshot of that name is read; a name rewarm does not read is refused first
    assert main(["predict", str(source), "--out", str(tmp_path / "scored.tsv"), "--config", str(config)]) == 0
    tabbed = pd.read_csv(tmp_path / "scored.tsv", sep="\t", keep_default_na=False)
    np.testing.assert_allclose(tabbed["probability"].to_numpy(), scored["probability"].to_numpy(), rtol=1e-6)
    capsys.readouterr()
    assert main(["predict", str(source), "--out", str(tmp_path / "scored.xlsx"), "--config", str(config)]) == 2
    assert "--out " in capsys.readouterr().err and not (tmp_path / "scored.xlsx").exists()


def test_predict_to_stdout_with_a_version_and_without_the_target(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, march = trained
    source = tmp_path / "march.parquet"
    march.drop(columns="late").to_parquet(source, index=False)
    assert main(["predict", str(source), "--version", "1", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    printed = pd.read_csv(pd.io.common.StringIO(captured.out))
    assert len(printed) == 300 and "probability" in printed.columns
    first = mlflow.pyfunc.load_model("models:/predict-test/1").predict(march)["probability"].to_numpy()
    np.testing.assert_allclose(printed["probability"].to_numpy(), first, rtol=1e-5)
    assert "with models:/predict-test/1 (v1)" in captured.err and "hold 'late'" not in captured.err


def test_predict_says_what_is_missing(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, march = trained
    source = tmp_path / "partial.parquet"
    march.drop(columns=["dest", "temp"]).to_parquet(source, index=False)
    assert main(["predict", str(source), "--config", str(config)]) == 2
    assert "missing column(s) ['temp', 'dest'] that models:/predict-test@champion reads" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "march.parquet"), "--version", "9", "--config", str(config)]) == 2
    assert "no such file" in capsys.readouterr().err
    march.to_parquet(source, index=False)
    assert main(["predict", str(source), "--version", "9", "--config", str(config)]) == 2
    assert "models:/predict-test/9: not found in the MLflow store" in capsys.readouterr().err
    march.astype({"temp": object}).assign(temp=["warm"] * len(march)).to_parquet(source, index=False)
    assert main(["predict", str(source), "--config", str(config)]) == 2  # refused as a snapshot is, one line
    assert "column 'temp' must hold finite numbers but 300 of 300 row(s) hold other values" in capsys.readouterr().err
