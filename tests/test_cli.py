"""The `rewarm` front door: exit codes and one-line messages, and the demo on real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient

from rewarm import registry, status
from rewarm.cli import main


def test_status_before_any_model(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, name="empty-model")
    assert main(["status", "--config", str(config)]) == 0
    assert "has no registered versions yet" in capsys.readouterr().out


def test_missing_config_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rewarm: error: no configuration file at") and "nope.toml" in err


def test_the_python_line_status_prints_never_shows_a_servers_password() -> None:
    local = status.python_line("m", "sqlite:////srv/rewarm/mlflow.db")
    assert local == (
        "import mlflow; mlflow.set_tracking_uri('sqlite:////srv/rewarm/mlflow.db'); "
        "model = mlflow.pyfunc.load_model('models:/m@champion')"
    )
    remote = status.python_line("m", "https://rewarm:s3cret@mlflow.example:5000")
    assert "s3cret" not in remote and "MLFLOW_TRACKING_URI" in remote and "load_model('models:/m@champion')" in remote


def test_rollback_without_champion(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, name="nothing-yet")
    assert main(["rollback", "--config", str(config)]) == 2
    assert "has no champion" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_retrain_status_rollback(
    tmp_path: Path, home: Path, flights: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, name="cli-model", min_delta="-1.0")
    files = []
    for month in (1, 2):
        path = tmp_path / f"m{month}.csv"  # CSV snapshots work as well as Parquet
        small_month(flights, month).to_csv(path, index=False)
        files.append(path)
    assert main(["retrain", str(files[0]), "--config", str(config)]) == 0
    assert main(["retrain", str(files[1]), "--config", str(config), "--strategies", "warm,cold"]) == 0
    out = capsys.readouterr().out
    assert "cli-model v1: first model" in out and "cli-model v2: promote" in out
    assert main(["status", "--config", str(config)]) == 0
    assert "champion: v2" in capsys.readouterr().out
    assert main(["rollback", "--config", str(config)]) == 0
    assert "from v2 to v1" in capsys.readouterr().out
    assert registry.current_version(MlflowClient(), "cli-model", registry.CHAMPION) == 1
    assert main(["retrain", str(tmp_path / "missing.csv"), "--config", str(config)]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("named", [False, True], ids=["every-pending", "named-after-it"])
def test_retrain_exits_2_when_a_pending_snapshot_is_rejected(
    tmp_path: Path, home: Path, flights: pd.DataFrame, capsys: pytest.CaptureFixture[str], named: bool
) -> None:
    config = write_config(tmp_path, name="cli-pending")
    config.write_text(config.read_text() + "\n[service]\nsettle_seconds = 0\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    land(landing / "m1.csv", small_month(flights, 1).drop(columns="carrier").to_csv(index=False).encode())
    land(landing / "m2.csv", small_month(flights, 2).to_csv(index=False).encode())

    # The broken first one is quarantined and passed over, the next still trains, and the command fails (also
    # when the command names the next one: the broken one comes first in landing order)
    assert main(["retrain", *([str(landing / "m2.csv")] if named else []), "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "m1.csv: not retrained: " in out and "'carrier'" in out and "quarantine retry" in out
    assert "Flow run encountered an exception" not in out  # the rejection's own words, not Prefect's wrapper
    assert "cli-pending v1: first model" in out
    assert not (landing / "m1.csv").exists() and (tmp_path / "quarantine" / "m1.csv").is_file()
    assert main(["retrain", "--config", str(config)]) == 0  # nothing left pending
    assert "no pending snapshots" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_demo_two_months(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no rewarm.toml here: the built-in demo settings apply
    assert main(["demo", "--months", "2"]) == 0
    out = capsys.readouterr().out
    assert "flights-2013-01.parquet" in out and "flights-2013-02.parquet" in out
    assert "models:/flight-delay@champion loaded with mlflow.pyfunc.load_model scores flights-2013-03.parquet" in out
    # Links that open the model-training view; a local store also needs `mlflow ui` started (a tracking server,
    # on the production profile, serves its own UI).
    assert "Open the MLflow UI on this store" in out and "/#/models/flight-delay?workflowType=machine_learning" in out
    local = not os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http")
    assert ("mlflow ui --backend-store-uri" in out) == local
    landed = sorted(p.name for p in (tmp_path / "data" / "landing").iterdir())
    assert landed == ["flights-2013-01.parquet", "flights-2013-02.parquet", "flights-2013-03.parquet"]
    assert registry.current_version(MlflowClient(), "flight-delay", registry.CHAMPION) in (1, 2)
    raw = json.loads((home / "demo" / "summary.json").read_text())
    assert main(["demo", "--months", "2"]) == 0  # again: the store already holds both months
    assert json.loads((home / "demo" / "summary.json").read_text()) == raw  # earlier numbers are kept
    again = capsys.readouterr().out
    assert "flights-2013-01.parquet: already trained on in this store (flight-delay v1); skipped" in again
    assert "Nothing new to train on" in again
    assert [r["snapshot"] for r in raw] == ["flights-2013-01.parquet", "flights-2013-02.parquet"]
    assert raw[1]["strategies"]["cold"]["samples_seen"] > 0 and raw[1]["wall_seconds"] > 0


@pytest.mark.slow
def test_retrain_in_ephemeral_mode_without_a_server(tmp_path: Path, flights: pd.DataFrame) -> None:
    """No PREFECT_API_URL: the command starts Prefect's temporary server itself, as a first-time user's would."""
    config = write_config(tmp_path, name="ephemeral-model")
    snapshot = tmp_path / "jan.parquet"
    small_month(flights, 1).to_parquet(snapshot)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "REWARM_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "rewarm.cli", "retrain", str(snapshot), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ephemeral-model v1: first model" in done.stdout
    assert (tmp_path / "home" / "mlflow.db").is_file()
    assert any((tmp_path / "home" / "snapshots" / "ephemeral-model").glob("*-jan.parquet"))


def test_status_lists_pending_snapshots(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, name="pending-model")
    config.write_text(config.read_text() + "\n[service]\nsettle_seconds = 0\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_text("late,distance\n0,100\n")
    (landing / "b.csv.partial").write_text("late,distance\n")  # still being written: not pending yet
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 pending snapshot(s): ['a.csv']" in out
    assert "set PREFECT_API_URL" in out  # no server named: says how to see the last runs


def test_the_stack_still_runs_by_its_old_module_name() -> None:
    """The stack moved to rewarm.stack; `python -m rewarm.deployments.stack` in users' scripts still runs it."""
    import rewarm.deployments.stack as old
    import rewarm.stack as new

    assert (old.stack, old.postgres_bin, old.main) == (new.stack, new.postgres_bin, new.main)
    shown = subprocess.run(
        [sys.executable, "-m", "rewarm.deployments.stack", "--help"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "--folder" in shown.stdout and "The production profile on one machine" in shown.stdout
