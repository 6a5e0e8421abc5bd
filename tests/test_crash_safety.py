"""Crash safety: a real retrain process killed with SIGKILL at each point of a round, then run again.

After the rerun the registry must be consistent (champion on a complete, evaluated version), the
snapshot processed exactly once (one version, its decision applied), and no run left RUNNING. The kill
points are patched in by tests/crash_driver.py; the rest is the real `rewarm retrain`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient

from rewarm import ledger, registry
from rewarm.flows.retrain import retrain
from rewarm.landing import fingerprint
from rewarm.store import open_store, resolve_store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

DRIVER = Path(__file__).with_name("crash_driver.py")
MODEL = "crash-test"


@pytest.fixture
def setup(tmp_path: Path, home: Path, flights: pd.DataFrame) -> tuple[Path, list[Path]]:
    """A config that always promotes (so every alias move happens), two months landed, v1 from January."""
    config = write_config(tmp_path, name=MODEL, min_delta="-1.0")
    landing = tmp_path / "landing"
    landing.mkdir()
    months = []
    for month in (1, 2):
        path = landing / f"flights-2013-{month:02d}.parquet"
        small_month(flights, month, rows=1500).to_parquet(path, index=False)
        months.append(path)
    assert retrain(str(months[0]), config=str(config)).version == 1
    return config, months


def run_driver(point: str, *args: str, env: dict[str, str] | None = None, timeout: float = 240):
    """Run the retrain in a child process with the fault armed; it shares this test's stores."""
    from prefect.settings import PREFECT_API_URL

    child_env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), **(env or {})}
    return subprocess.run(
        [sys.executable, str(DRIVER), point, *args],
        env=child_env,
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def versions(client: MlflowClient, sha: str | None = None) -> list:
    found = client.search_model_versions(f"name = '{MODEL}'")
    return sorted((v for v in found if sha is None or v.tags.get(ledger.SHA_TAG) == sha), key=lambda v: int(v.version))


def open_runs(client: MlflowClient) -> list[str]:
    experiment = client.get_experiment_by_name(MODEL)
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    return [r.info.run_name for r in runs]


def assert_consistent(client: MlflowClient, sha: str) -> int:
    """Champion on a complete, evaluated version whose decision is applied; SHA processed exactly once."""
    [version] = versions(client, sha)  # exactly one version for the snapshot: no duplicate
    tags = client.get_model_version(MODEL, version.version).tags
    champion = registry.current_version(client, MODEL, registry.CHAMPION)
    assert champion == int(version.version)  # min_delta -1: the decision was to promote, and it was applied
    assert tags["rewarm.complete"] == "true" and tags["rewarm.decision"] == "promote"
    assert tags[registry.APPLIED_TAG] != registry.NOT_APPLIED
    assert "rewarm.holdout_roc_auc" in tags  # evaluated
    assert tags["rewarm.previous_champion"] == "1"  # the lineage a rollback follows
    assert registry.current_version(client, MODEL, registry.CHALLENGER) is None
    assert ledger.processed(client, MODEL)[sha] == int(version.version)
    assert open_runs(client) == []
    return int(version.version)


@pytest.mark.parametrize("point", ["registered", "between-aliases", "before-applied"])
def test_killed_after_registering_is_finished_by_the_rerun_without_retraining(
    setup: tuple[Path, list[Path]], point: str
) -> None:
    config, months = setup
    sha = fingerprint(str(months[1]))
    killed = run_driver(point, str(months[1]), "--config", str(config))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    open_store(resolve_store())
    client = MlflowClient()
    [left] = versions(client, sha)  # registered, with every tag, before the kill
    assert left.tags["rewarm.complete"] == "true" and left.tags[registry.APPLIED_TAG] == registry.NOT_APPLIED
    champion = registry.current_version(client, MODEL, registry.CHAMPION)
    assert champion == (1 if point == "registered" else int(left.version))  # always a complete version
    assert sha not in ledger.processed(client, MODEL)  # not processed: the decision is not yet applied
    assert open_runs(client)  # the killed process could not close its runs

    rerun = retrain(str(months[1]), config=str(config))

    assert rerun.recovered == "promoted" and rerun.version == int(left.version)
    assert rerun.replaced == 1
    assert assert_consistent(client, sha) == int(left.version)
    killed_runs = client.search_runs(
        [client.get_experiment_by_name(MODEL).experiment_id], "attributes.status = 'KILLED'"
    )
    assert {r.info.run_name for r in killed_runs} >= {f"retrain {months[1].name}"}
    again = retrain(str(months[1]), config=str(config))  # exactly once: a third run changes nothing
    assert again.status == "skipped" and len(versions(client)) == 2


def test_a_rollback_after_the_kill_is_not_undone_by_the_rerun(setup: tuple[Path, list[Path]]) -> None:
    config, months = setup
    sha = fingerprint(str(months[1]))
    killed = run_driver("between-aliases", str(months[1]), "--config", str(config))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    open_store(resolve_store())
    client = MlflowClient()
    [left] = versions(client, sha)
    assert registry.rollback(client, MODEL) == (int(left.version), 1)  # the operator takes the new model back

    rerun = retrain(str(months[1]), config=str(config))

    assert registry.current_version(client, MODEL, registry.CHAMPION) == 1  # the rollback stands
    assert rerun.status == "skipped" and rerun.version == int(left.version)  # processed once: no second version
    assert len(versions(client, sha)) == 1
    assert "rolled back" in client.get_model_version(MODEL, left.version).tags[registry.APPLIED_TAG]


def test_killed_mid_training_resumes_from_the_epoch_checkpoint(setup: tuple[Path, list[Path]], home: Path) -> None:
    config, months = setup
    sha = fingerprint(str(months[1]))
    killed = run_driver("training", str(months[1]), "--config", str(config))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    open_store(resolve_store())
    client = MlflowClient()
    assert versions(client, sha) == []  # nothing registered
    assert registry.current_version(client, MODEL, registry.CHAMPION) == 1
    saved = list((home / "checkpoints" / MODEL).rglob("*.pt"))
    # the candidates race, an epoch each in turn: two checkpoint writes are each one epoch in
    assert sorted(p.name for p in saved) == ["cold.pt", "shrink_perturb.pt"]

    rerun = retrain(str(months[1]), config=str(config))

    assert rerun.decision == "promote"
    version = assert_consistent(client, sha)
    run_id = client.get_model_version(MODEL, str(version)).run_id
    parent = client.get_run(run_id).data.tags["mlflow.parentRunId"]
    children = client.search_runs(
        [client.get_experiment_by_name(MODEL).experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'"
    )
    resumed = {r.info.run_name: r.data.tags.get("rewarm.resumed_from_epoch") for r in children}
    assert resumed["shrink_perturb"] == "1" and resumed["cold"] == "1"  # picked up where the kill left it
    sp = next(r for r in children if r.info.run_name == "shrink_perturb")
    assert sp.data.metrics["epochs"] > 1
    assert len(client.get_metric_history(sp.info.run_id, "val_loss")) == sp.data.metrics["epochs"]
    assert not (home / "checkpoints" / MODEL / sha[:16]).exists()  # removed once the round was applied
