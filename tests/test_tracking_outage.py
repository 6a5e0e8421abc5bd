"""A tracking-server outage mid-run: a real `mlflow server` on loopback, stopped while a retrain is between
training and registering. The retrain must fail within a bounded time with one clear line, promote
nothing and leave the snapshot pending; once the server is back, the next run processes it once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient
from waiting import start_server

from rewarm import ledger, quarantine, registry
from rewarm.config import load_settings
from rewarm.flows.retrain import retrain
from rewarm.landing import fingerprint
from rewarm.processes import free_port, stop_group

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

DRIVER = Path(__file__).with_name("crash_driver.py")
MODEL = "outage-test"


def start_mlflow(folder: Path, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1 with a SQLite backend and served artifacts; waits until /health answers."""
    folder.mkdir(exist_ok=True)
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "art")),
    ]
    return start_server(command, folder / "server.log", f"http://127.0.0.1:{port}", timeout=90, interval=0.25)


def test_a_tracking_server_stopped_mid_run_fails_cleanly_and_the_snapshot_stays_pending(
    tmp_path: Path, home: Path, flights: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    port, served = free_port(), tmp_path / "mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    # Short MLflow-level retries keep the test quick; the registry tasks still retry with their own backoff.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    config = write_config(tmp_path, name=MODEL, min_delta="-1.0")
    landing = tmp_path / "landing"
    landing.mkdir()
    jan = land(landing / "flights-2013-01.parquet", small_month(flights, 1, rows=1000).to_parquet(index=False))
    feb = land(landing / "flights-2013-02.parquet", small_month(flights, 2, rows=1000).to_parquet(index=False))
    server = start_mlflow(served, port)
    try:
        assert retrain(str(jan), config=str(config)).version == 1
        pause = tmp_path / "pause"
        pause.mkdir()
        child = subprocess.Popen(
            [sys.executable, str(DRIVER), f"pause-before-register:{pause}", str(feb), "--config", str(config)],
            env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
            cwd=Path(__file__).parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 180
        while not (pause / "paused").exists():  # trained, scored and decided; about to register
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()[1][-3000:]
            time.sleep(0.2)
        # The server and its workers (uvicorn, the job runner) killed at once: an outage, not a shutdown.
        stop_group(server, grace=0, reap=30)
        (pause / "go").touch()
        began = time.monotonic()
        _, stderr = child.communicate(timeout=300)
        failed_after = time.monotonic() - began
        print(f"the retrain failed {failed_after:.1f} s after the tracking server went away")

        assert child.returncode == 3, stderr[-3000:]
        [line] = [x for x in stderr.splitlines() if x.startswith("rewarm: error:")]
        assert f"http://127.0.0.1:{port} did not answer" in line
        assert "the champion is still a complete version" in line and "stays pending" in line
        assert "Traceback" not in stderr.split("rewarm: error:")[-1]

        server = start_mlflow(served, port)  # the outage ends
        client = MlflowClient()
        sha = fingerprint(str(feb))
        assert registry.current_version(client, MODEL, registry.CHAMPION) == 1  # no partial promotion
        assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1
        settings = load_settings(config)
        waiting = ledger.pending(str(landing), ledger.processed(client, MODEL), settle_seconds=0)
        assert [p.arrival.name for p in waiting] == [feb.name]  # still pending: retried later
        assert quarantine.records(settings.data.quarantine_location) == []  # an outage is not bad data

        caught_up = retrain(config=str(config))  # the next scheduled run

        [done] = caught_up.processed
        assert done.version == 2 and done.decision == "promote"
        assert ledger.processed(client, MODEL)[sha] == 2
        assert registry.current_version(client, MODEL, registry.CHAMPION) == 2
        experiment = client.get_experiment_by_name(MODEL).experiment_id
        assert client.search_runs([experiment], "attributes.status = 'RUNNING'") == []  # the dead run was closed
    finally:
        stop_group(server, grace=0, reap=30)
