"""The suite's two profiles: the store and Prefect server a test gets are the ones the profile names, and on
the production profile a fresh store really is empty (the tracking server's database, emptied between tests)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from conftest import PROFILE, Stores
from mlflow import MlflowClient

from rewarm.store import open_store, resolve_store

production_only = pytest.mark.skipif(PROFILE != "production", reason="REWARM_TEST_PROFILE=production only")


def test_a_test_gets_the_store_of_its_profile(home: Path, stores: Stores) -> None:
    store = open_store(resolve_store())
    if PROFILE == "embedded":
        assert store.local and store.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
        return
    assert not store.local and store.tracking_uri == stores.stack.tracking_uri
    # Written through the server, read back from its PostgreSQL database: the tests' writes land there.
    experiment = MlflowClient().create_experiment("profile-check")
    import psycopg

    with psycopg.connect(stores.stack.database_url("mlflow")) as db:
        names = [r[0] for r in db.execute("SELECT name FROM experiments WHERE experiment_id = %s", (int(experiment),))]
    assert names == ["profile-check"]


@pytest.mark.usefixtures("prefect_server")
def test_flows_run_against_the_profiles_prefect_server(stores: Stores) -> None:
    from prefect.settings import PREFECT_API_URL

    if PROFILE == "embedded":
        assert PREFECT_API_URL.value().startswith("http://127.0.0.1:")  # the test harness's server
    else:
        assert PREFECT_API_URL.value() == stores.stack.prefect_api


@production_only
def test_a_fresh_store_forgets_the_last_tests_registry(
    home: Path, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(resolve_store())
    client = MlflowClient()
    client.create_registered_model("left-behind")
    with mlflow.start_run(experiment_id=client.create_experiment("left-behind")):
        pass
    stores.fresh(monkeypatch)
    assert client.search_registered_models() == []
    assert [e.name for e in client.search_experiments()] == ["Default"]  # what a new server starts with
    with mlflow.start_run():  # the Default experiment still works
        mlflow.log_param("after", 1)
