"""Idempotent registration: a round's version is created under a key derived from the round (model, snapshot
content, parent version; --force adds its own nonce), written in the same create request, so a create request
sent twice, or whose response was lost, leaves exactly one version.

The seam is MLflow's registry client, the call that becomes one HTTP POST on the production profile (a tracking
server) or one SQL insert embedded: the first request goes through to the real store and then its answer is
lost or the request is sent again, as MLflow's HTTP retries do. The loss itself is simulated because no
network fault can be injected between this process and a store on loopback otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient
from mlflow.tracking._model_registry.client import ModelRegistryClient

from rewarm import ledger, registry
from rewarm.flows.retrain import retrain

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
MODEL = "keyed-model"


@pytest.fixture
def month(tmp_path: Path, flights: pd.DataFrame) -> Path:
    path = tmp_path / "landing" / "m1.parquet"
    path.parent.mkdir()
    small_month(flights, 1, rows=600).to_parquet(path, index=False)
    return path


def _versions() -> list:
    return sorted(MlflowClient().search_model_versions(f"name = '{MODEL}'"), key=lambda v: int(v.version))


@pytest.mark.parametrize("fault", ["sent twice", "answer lost"])
def test_a_repeated_create_request_leaves_one_version(
    fault: str, tmp_path: Path, home: Path, month: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ModelRegistryClient.create_model_version
    sent: list[str] = []

    def faulty(self, *args, **kwargs):
        version = original(self, *args, **kwargs)  # the store made it
        sent.append(version.version)
        if fault == "answer lost":
            raise ConnectionError("connection reset by peer (the create's response was lost)")
        sent.append(original(self, *args, **kwargs).version)  # the retry made another
        return version

    monkeypatch.setattr(ModelRegistryClient, "create_model_version", faulty)
    result = retrain(str(month), config=str(write_config(tmp_path, name=MODEL)))

    assert len(sent) == (2 if fault == "sent twice" else 1), sent  # the fault really happened
    [version] = _versions()
    assert result.version == int(version.version) == int(sent[0])
    assert version.tags["rewarm.complete"] == "true" and version.tags["rewarm.applied"] != "no"
    assert registry.current_version(MlflowClient(), MODEL, registry.CHAMPION) == result.version
    assert ledger.processed(MlflowClient(), MODEL) == {version.tags["rewarm.snapshot_sha256"]: result.version}


def test_the_key_names_the_round_and_force_makes_a_new_one(tmp_path: Path, home: Path, month: Path) -> None:
    config = str(write_config(tmp_path, name=MODEL))
    first = retrain(str(month), config=config)
    forced = retrain(str(month), config=config, force=True)
    one, two = _versions()
    assert (first.version, forced.version) == (int(one.version), int(two.version))
    sha = one.tags["rewarm.snapshot_sha256"]
    assert one.tags["rewarm.round_key"] == registry.round_key(MODEL, sha, "none")
    # The forced round has the first version as its parent and a nonce of its own: not the first's key.
    assert two.tags["rewarm.round_key"] not in (one.tags["rewarm.round_key"], registry.round_key(MODEL, sha, 1))
    # The round's parent run carries its key too: the run that produced a version can be found from it.
    run = MlflowClient().get_run(MlflowClient().get_model_version(MODEL, one.version).run_id)
    parent = MlflowClient().get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["rewarm.round_key"] == one.tags["rewarm.round_key"]
