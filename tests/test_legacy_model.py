"""Stored names are API: a version registered by an earlier rewarm still loads, serves and warm-starts.

The fixture (tests/fixtures/legacy-model) is a tiny flights model logged and registered by rewarm at commit
5d0fc4c, before split schemes, fingerprints and the flow's new layout: its model.json has no split_scheme and its
shipped model code is that commit's. Its history record is written here as that commit wrote it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient

from rewarm import registry
from rewarm.config import load_settings
from rewarm.flows.retrain import retrain
from rewarm.snapshots import list_history
from rewarm.splits import LEGACY
from rewarm.store import experiment_id, open_store, resolve_store

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-model"
pytestmark = pytest.mark.slow


def _model_files(folder: Path) -> Path:
    """The fixture's logged model as MLflow wrote it; its weights are kept as state_dict.pt.fixture in git
    (*.pt files are run output there, ignored), so they take their real name in a copy."""
    model = folder / "legacy-model"
    shutil.copytree(FIXTURE / "model", model)
    weights = model / "artifacts" / "state_dict.pt"
    Path(f"{weights}.fixture").rename(weights)
    return model


def _register_legacy(home: Path, folder: Path) -> str:
    """Put the fixture in today's store as it stood: version 1, champion, applied; January in the history."""
    meta = json.loads((FIXTURE / "version.json").read_text())
    name, tags = meta["name"], {k: v for k, v in meta["tags"].items() if k != registry.APPLIED_TAG}
    experiment = experiment_id(open_store(resolve_store()), name)
    client = MlflowClient()
    run_id = client.create_run(experiment, run_name="legacy").info.run_id
    client.log_artifacts(run_id, str(_model_files(folder)), "model")
    client.set_terminated(run_id)
    version = mlflow.register_model(f"runs:/{run_id}/model", name, tags=tags).version
    client.set_registered_model_alias(name, registry.CHAMPION, version)
    registry.mark_applied(client, name, int(version))
    history = home / "snapshots" / name
    history.mkdir(parents=True)
    stored = history / f"00001-{tags['rewarm.snapshot_sha256'][:12]}-flights-2013-01.parquet"
    shutil.copyfile(FIXTURE / "flights-2013-01.parquet", stored)
    record = {  # the record format of 5d0fc4c: no split_scheme, no row sketch beside it
        "name": "flights-2013-01.parquet",
        "source": "flights-2013-01.parquet",
        "sha256": tags["rewarm.snapshot_sha256"],
        "rows": 600,
        "stored": str(stored),
        "sequence": 1,
        "admitted_at": "2026-11-30T00:00:00+00:00",
    }
    Path(f"{stored}.json").write_text(json.dumps(record))
    return name


def test_a_version_registered_by_an_earlier_rewarm_loads_serves_and_warm_starts(
    tmp_path: Path, home: Path, prefect_server: None, flights: pd.DataFrame
) -> None:
    name = _register_legacy(home, tmp_path)
    config = write_config(tmp_path, name=name)
    client = MlflowClient()
    old = registry.load_version(client, name, 1)
    assert old.preprocessor.split_scheme == LEGACY  # model.json without the key: the first scheme

    feb = tmp_path / "flights-2013-02.parquet"
    rows = small_month(flights, 2, rows=600, seed=2)
    rows.to_parquet(feb, index=False)
    result = retrain(str(feb), config=str(config), strategies=["shrink_perturb"])

    assert result.status == "trained" and result.version == 2 and set(result.strategies) == {"shrink_perturb"}
    new = client.get_model_version(name, "2")
    assert new.tags["rewarm.parent_version"] == "1"  # warm-started from the legacy champion
    assert new.tags["rewarm.split_scheme"] == str(LEGACY)  # the lineage keeps its memberships
    assert registry.load_version(client, name, 2).preprocessor.split_scheme == LEGACY
    [january, february] = list_history(home / "snapshots" / name)
    assert january.split_scheme == LEGACY and february.split_scheme == LEGACY

    settings = load_settings(config)
    features = rows.drop(columns=[settings.data.target])
    for version in (1, 2):  # the old version through its own shipped code, the new one through today's
        predicted = mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(features)
        assert len(predicted) == len(rows) and predicted["probability"].between(0, 1).all()
