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
    version = registry.log_model(run_id, module, pre, {"strategy": "cold"}, frame, "serve-test")
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


def test_incomplete_version_is_never_promoted(registered) -> None:
    client = MlflowClient()
    run = client.search_model_versions("name = 'serve-test'")[0]
    copy = client.create_model_version("serve-test", run.source, run.run_id)  # registered, never tagged
    with pytest.raises(registry.RegistryError, match="not marked complete"):
        registry.promote(client, "serve-test", int(copy.version), "should refuse")
    assert registry.current_version(client, "serve-test", registry.CHAMPION) == 1
