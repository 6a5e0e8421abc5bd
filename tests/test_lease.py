"""One writer per model: the lease every retrain round holds (rewarm/lease.py), between real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient
from waiting import wait_for

from rewarm import lease
from rewarm.landing import fingerprint
from rewarm.store import experiment_id, open_store, resolve_store

HOLDER = """
import sys, time
from pathlib import Path
from rewarm import lease
with lease.hold(sys.argv[1], Path(sys.argv[2])):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(model: str, home: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, model, str(home)], stdout=out, stderr=out)
    wait_for(lambda: "held" in log.read_text() or process.poll() is not None, "the holder to take the lease", 60)
    assert "held" in log.read_text(), log.read_text()
    return process


def _taker(model: str, home: Path, said: list[str]) -> tuple[threading.Thread, threading.Event]:
    taken = threading.Event()

    def take() -> None:
        with lease.hold(model, home, said.append):
            taken.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, taken


def test_a_second_writer_waits_naming_the_holder_and_a_killed_holder_frees_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = _holder("m", home, tmp_path / "holder.log")
    said: list[str] = []
    thread, taken = _taker("m", home, said)
    try:
        assert not taken.wait(2.0), "took a lease another live process holds"
        [line] = said  # one line, not one per poll
        assert f"pid {holder.pid}" in line and "waiting" in line, line
        holder.send_signal(signal.SIGKILL)  # no hook runs: the kernel releases the lock
        assert taken.wait(10.0), "a killed holder's lease was not recovered"
        died, took = said[-2:]
        assert "died holding it" in died and f"pid {holder.pid}" in died, said  # told, with who it was
        assert took.startswith("m: lease taken after waiting")
    finally:
        holder.kill()
        thread.join(10)


def test_other_models_do_not_wait_and_a_nested_round_reenters(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = _holder("m", home, tmp_path / "holder.log")
    try:
        said: list[str] = []
        with lease.hold("other/model", home, said.append), lease.hold("other/model", home, said.append):
            pass  # the catch-up round inside a round: no deadlock on its own lease
        assert said == []
        assert lease.lock_path(home, "other/model").parent == home / "locks"
    finally:
        holder.kill()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_command_line_retrain_waits_for_the_live_writer_and_leaves_its_runs_alone(
    tmp_path: Path, home: Path, flights: pd.DataFrame
) -> None:
    """Before the lease, `rewarm retrain` of a snapshot another process was retraining marked that process's
    runs KILLED at once (its crash recovery) and both could register a version."""
    model = "leased-model"
    config = write_config(tmp_path, name=model)
    snapshot = tmp_path / "landing" / "m1.parquet"
    snapshot.parent.mkdir()
    small_month(flights, 1, rows=600).to_parquet(snapshot, index=False)
    store = open_store(resolve_store())
    said: list[str] = []
    release = threading.Event()
    held = threading.Event()

    def live_writer() -> None:  # a round in progress elsewhere: its run is open while it holds the lease
        with lease.hold(model, store.home, said.append):
            held.set()
            release.wait(300)

    writer = threading.Thread(target=live_writer, daemon=True)
    writer.start()
    assert held.wait(30)
    experiment = experiment_id(store, model)  # the round's own experiment (not mlflow.set_experiment: global)
    tags = {"rewarm.kind": "retrain", "rewarm.snapshot_sha256": fingerprint(str(snapshot))}
    live = MlflowClient().create_run(experiment, tags=tags).info.run_id

    log = tmp_path / "cli.log"
    env = {**os.environ, "REWARM_HOME": str(home)}
    command = [sys.executable, "-m", "rewarm.cli", "retrain", str(snapshot), "--config", str(config)]
    with log.open("w") as out:
        cli = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "holds its lease" in log.read_text() or cli.poll() is not None, "the CLI to wait", 180)
        assert "holds its lease" in log.read_text() and "waiting" in log.read_text(), log.read_text()[-3000:]
        assert MlflowClient().get_run(live).info.status == "RUNNING"  # not closed under the live writer
        assert not MlflowClient().search_model_versions(f"name = '{model}'")
        MlflowClient().set_terminated(live, "FINISHED")  # the writer finishes its round, then lets go
        release.set()
        assert cli.wait(240) == 0, log.read_text()[-3000:]
    finally:
        release.set()
        cli.kill()
    assert MlflowClient().get_run(live).info.status == "FINISHED"
    assert len(MlflowClient().search_model_versions(f"name = '{model}'")) == 1
    assert "lease taken after waiting" in log.read_text()
