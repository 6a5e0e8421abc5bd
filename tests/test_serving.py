"""A registered version is self-contained: it loads and predicts where rewarm is not importable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from flight_snapshots import small_month
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from rewarm import registry
from rewarm.models.network import ArchConfig, build_model
from rewarm.models.preprocess import Preprocessor
from rewarm.store import experiment_id, open_store, resolve_store

FEATURES = (["distance", "temp"], ["carrier", "dest"])

# Runs in a fresh interpreter in which `import rewarm` fails, as on a serving host without rewarm.
LOAD_WITHOUT_REWARM = """
import json, sys
sys.modules["rewarm"] = None
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
out = model.predict(pd.read_parquet(sys.argv[3]))
assert not any(name == "rewarm" or name.startswith("rewarm.") for name in sys.modules if sys.modules[name])
print(json.dumps({"rows": len(out), "columns": list(out.columns), "p0": float(out["probability"][0])}))
"""


@pytest.fixture
def registered(home: Path, flights: pd.DataFrame) -> tuple[str, pd.DataFrame, float]:
    """Register one small untrained model directly through rewarm.registry; return (uri, rows, p0)."""
    store = open_store(resolve_store())
    frame = small_month(flights, 1, rows=300)
    pre = Preprocessor.fit(frame, "binary", "late", *FEATURES)
    module = build_model(ArchConfig(2, pre.cardinalities, 3, (8,), 1), seed=0)
    client = MlflowClient()
    run_id = client.create_run(experiment_id(store, "serve-test")).info.run_id
    version = registry.log_model(run_id, module, pre, {"strategy": "cold"}, "serve-test")
    registry.tag_version(client, "serve-test", version, {"strategy": "cold"})
    registry.promote(client, "serve-test", version, "test")
    rows = frame.drop(columns="late")
    expected = float(mlflow.pyfunc.load_model("models:/serve-test@champion").predict(rows)["probability"][0])
    return store.tracking_uri, rows, expected


def test_champion_loads_without_rewarm_installed(tmp_path: Path, registered) -> None:
    uri, rows, expected = registered
    rows_file = tmp_path / "rows.parquet"
    rows.to_parquet(rows_file)
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_REWARM, uri, "models:/serve-test@champion", str(rows_file)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == len(rows) and result["columns"] == ["prediction", "probability"]
    assert result["p0"] == pytest.approx(expected, abs=1e-6)


def test_logged_model_declares_requirements_and_signature(registered) -> None:
    local = Path(mlflow.artifacts.download_artifacts("models:/serve-test@champion"))
    requirements = (local / "requirements.txt").read_text()
    assert "torch==" in requirements and "mlflow==" in requirements and "rewarm" not in requirements
    info = mlflow.models.get_model_info("models:/serve-test@champion")
    assert info.signature.inputs.input_names() == [*FEATURES[0], *FEATURES[1]]
    assert (local / "code" / "rewarm_models" / "serving.py").is_file()
    # Models from code: the entry point is a file the model carries; no pickled Python object is logged.
    flavor = info.flavors["python_function"]
    assert flavor["model_code_path"].endswith("rewarm_model.py") and (local / "rewarm_model.py").is_file()
    assert not list(local.rglob("*.pkl"))


def logged_model(source: str) -> str:
    """The id of the logged model a version's `models:/m-...` source names (a REST store's versions do not
    carry it in `model_id`)."""
    return source.removeprefix("models:/")


def test_incomplete_version_is_never_promoted(registered) -> None:
    client = MlflowClient()
    run = client.search_model_versions("name = 'serve-test'")[0]
    # Registered again, never tagged (a tracking server wants the logged model named with its source).
    copy = client.create_model_version("serve-test", run.source, run.run_id, model_id=logged_model(run.source))
    with pytest.raises(registry.RegistryError, match="not marked complete"):
        registry.promote(client, "serve-test", int(copy.version), "should refuse")
    assert registry.current_version(client, "serve-test", registry.CHAMPION) == 1


def test_a_retried_promotion_keeps_the_lineage(registered) -> None:
    client = MlflowClient()
    first = client.get_model_version("serve-test", "1")
    copy = client.create_model_version("serve-test", first.source, first.run_id, model_id=logged_model(first.source))
    registry.tag_version(client, "serve-test", int(copy.version), {"strategy": "cold"})
    assert registry.promote(client, "serve-test", 2, "better") == 1
    assert registry.promote(client, "serve-test", 2, "better, retried") == 1  # the alias had already moved
    assert client.get_model_version("serve-test", "2").tags["rewarm.previous_champion"] == "1"
    assert registry.rollback(client, "serve-test") == (2, 1)


def test_logging_the_same_run_twice_registers_one_version(registered) -> None:
    client = MlflowClient()
    run_id = client.get_model_version("serve-test", "1").run_id
    module = build_model(ArchConfig(2, (3, 3), 3, (8,), 1), seed=0)
    again = registry.log_model(run_id, module, None, {}, "serve-test")
    assert again == 1  # nothing was logged: the run already has its version
    assert len(client.search_model_versions("name = 'serve-test'")) == 1


def test_switching_stores_points_mlflow_at_the_last_one(tmp_path: Path) -> None:
    from rewarm.store import Store

    a = Store(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}")
    b = Store(tmp_path / "b", f"sqlite:///{tmp_path / 'b.db'}")
    for store in (a, b, a):
        open_store(store)
        assert mlflow.get_tracking_uri() == store.tracking_uri
        assert mlflow.get_registry_uri() == store.tracking_uri


def test_a_users_tracking_uri_is_respected_and_rewarms_own_is_not_mistaken_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "one"))
    first = open_store(resolve_store())  # MLflow now holds this default URI in MLFLOW_TRACKING_URI
    assert first.local
    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "two"))
    second = resolve_store()
    assert second.local and second.tracking_uri.endswith("two/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'team.db'}")
    theirs = resolve_store()
    assert not theirs.local and theirs.tracking_uri.endswith("team.db")


def test_raw_rows_with_other_types_and_gaps_still_score(registered) -> None:
    _, rows, _ = registered
    odd = rows.head(4).copy()
    odd["distance"] = odd["distance"].round().astype("int64")  # JSON sends whole numbers as integers
    odd["temp"] = [None, "NA", "nan", 41.5]  # missing (null, a CSV's word for it, NaN): the training mean stands in
    odd["carrier"] = [None, "AA", "ZZ", "UA"]  # missing or unseen: the unknown bucket
    model = mlflow.pyfunc.load_model("models:/serve-test@champion")
    out = model.predict(odd)
    assert out["probability"].notna().all() and out["probability"].between(0, 1).all()
    assert model.predict(odd.assign(temp=None))["probability"].notna().all()  # a column of nulls


@pytest.mark.parametrize(
    ("values", "count", "quoted"),
    [
        (["n/a", 40.0, "12,5", 41.5], 1, "'12,5'"),  # 'n/a' is a missing value, as in a CSV snapshot
        (["warm", "warm", None, "41.5"], 2, "'warm'"),
        (["inf", 40.0, [1, 2], 41.5], 2, "'inf', '[1, 2]'"),  # infinite, or not a value at all
    ],
)
def test_text_in_a_numeric_column_is_refused_naming_column_count_and_values(
    registered, values: list, count: int, quoted: str
) -> None:
    _, rows, _ = registered
    odd = rows.head(4).astype({"temp": object}).assign(temp=values)
    with pytest.raises(MlflowException) as refused:
        mlflow.pyfunc.load_model("models:/serve-test@champion").predict(odd)
    message = refused.value.message
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"column 'temp' must hold finite numbers but {count} of 4 row(s) hold other values ({quoted})" in message
    assert "null for a missing value" in message


def test_switching_from_a_users_store_back_to_the_default_moves_the_registry_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'team.db'}")
    theirs = open_store(resolve_store())
    name = experiment_id(theirs, "artifact-test")
    location = MlflowClient().get_experiment(name).artifact_location
    assert location.startswith(theirs.artifacts.as_uri())  # under the home, not ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "mine"))
    mine = open_store(resolve_store())
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == mine.tracking_uri


def test_the_serving_package_copy_is_removed_when_the_process_ends() -> None:
    code = "from rewarm import registry; print(registry._serving_package()[0])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    package = Path(done.stdout.strip().splitlines()[-1])
    assert package.name == registry.SERVING_PACKAGE and package.parent.name.startswith("rewarm-serving-")
    assert not package.parent.exists()  # made in a temporary folder, gone at exit (it was left behind before)


def test_the_training_dataset_is_logged_without_mlflows_integer_column_hint(home: Path, flights: pd.DataFrame) -> None:
    """The round logs its training rows as an MLflow dataset; MLflow infers their schema lazily, and the hint it
    gives for integer columns (what snapshots hold) printed once a round in the demo until it was filtered there."""
    import warnings

    from rewarm import tracking

    store = open_store(resolve_store())
    client = MlflowClient()
    run_id = client.create_run(experiment_id(store, "dataset-test")).info.run_id
    frame = small_month(flights, 1, rows=50)
    assert any(pd.api.types.is_integer_dtype(t) for t in frame.dtypes)  # what makes MLflow hint
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracking.log_dataset(client, run_id, frame, "dataset-test-r1", str(home), "late", ["abc"])
    assert not [w for w in caught if "integer column" in str(w.message)]
    [logged] = client.get_run(run_id).inputs.dataset_inputs
    assert logged.dataset.name == "dataset-test-r1" and "late" in logged.dataset.schema
