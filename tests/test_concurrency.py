"""The concurrency and fault suite: where two writers of one model meet, with real servers on loopback.

- a burst of 50 snapshots with `rewarm serve` (its watcher and a schedule that fires every minute), two
  `rewarm retrain` runs from the command line racing it, whose model-version creates lose their answers or are
  sent twice at the HTTP seam, and the tracking server killed and restarted mid-burst;
- a writer SIGKILLed mid-round while another waits for its lease;
- Ctrl-C while a served round is training: every flow run and MLflow run ends in a terminal state.

Afterwards, per snapshot: exactly one version, its decision applied once and in order, the champion on a
complete version, nothing RUNNING, every file processed or quarantined, no two rounds overlapping. The suite
runs once, on the production profile (`make test-production`; its tracking server is its own, on the stack's
PostgreSQL, so that it can be restarted); the run's summary prints its wall time (budget: 8 minutes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient
from services import Service, complete, flow_runs, one_at_a_time, prefect_server, round_spans, sha, versions
from waiting import start_server, wait_for

from rewarm import ledger, quarantine, registry
from rewarm.processes import free_port, stop_group
from rewarm.store import open_store, resolve_store

pytestmark = [pytest.mark.slow, pytest.mark.faults]
DRIVER = Path(__file__).with_name("crash_driver.py")
ACTIVE = {"RUNNING", "PENDING", "CANCELLING"}  # Prefect states of a run still in flight


@pytest.fixture(scope="module")
def stack(stores):
    if stores.stack is None:
        pytest.skip("the concurrency and fault suite runs once, on the production profile: make test-production")
    return stores.stack


class Tracking:
    """An `mlflow server` of this module's own on the stack's PostgreSQL, which a test may kill and restart on
    the same port (an outage: the server and its workers killed at once, not shut down)."""

    def __init__(self, stack, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = stack.create_database(f"mlflow_faults_{self.port}")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)),
            *("--backend-store-uri", self.database, "--artifacts-destination", str(self.folder / "artifacts")),
            *("--workers", "2"),
        ]
        self.process = start_server(command, self.folder / f"mlflow-{time.monotonic_ns()}.log", self.url, timeout=120)

    def kill(self) -> None:
        stop_group(self.process, grace=0, reap=30)


@pytest.fixture(scope="module")
def tracking(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    server = Tracking(stack, tmp_path_factory.mktemp("tracking"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def prefect(stack, stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prefect_server(tmp_path_factory.mktemp("prefect"), stores) as url:
        yield url


@pytest.fixture
def env(tracking: Tracking, prefect: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test and every process it starts share one home, the module's tracking server and Prefect server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    monkeypatch.setenv("PREFECT_API_URL", prefect)
    open_store(resolve_store())
    return {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}


def writer(point: str, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`rewarm retrain ARGS` from a shell, with the fault POINT armed (tests/crash_driver.py)."""
    return subprocess.Popen(
        [sys.executable, str(DRIVER), point, *args],
        env=env,
        cwd=Path(__file__).parent,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def fifty(flights: pd.DataFrame, folder: Path) -> tuple[list[Path], set[str], list[Path]]:
    """50 snapshots in landing order: 45 of distinct content, 2 byte copies, 3 bad ones (a column missing, a
    word in a numeric column, a truncated parquet file). Returns (order, the distinct good contents, bad)."""
    folder.mkdir()
    good = []
    for i, (month, seed) in enumerate([(m, s) for s in range(4) for m in range(1, 13)][:45]):
        path = folder / f"s{i + 1:02d}.parquet"
        small_month(flights, month, rows=300, seed=seed).to_parquet(path, index=False)
        good.append(path)
    copies = [folder / "s05-copy.parquet", folder / "s20-copy.parquet"]
    copies[0].write_bytes(good[4].read_bytes())
    copies[1].write_bytes(good[19].read_bytes())
    no_carrier, wordy, truncated = (
        folder / "bad-no-carrier.parquet",
        folder / "bad-word.csv",
        folder / "bad-cut.parquet",
    )
    small_month(flights, 3, rows=300, seed=9).drop(columns="carrier").to_parquet(no_carrier, index=False)
    words = small_month(flights, 6, rows=300, seed=9).astype({"distance": object})
    words.loc[:4, "distance"] = "far"
    words.to_csv(wordy, index=False)
    truncated.write_bytes(good[0].read_bytes()[:2000])
    order = [*good[:8], no_carrier, *good[8:16], copies[0], *good[16:25], wordy, *good[25:33], copies[1]]
    order += [*good[33:40], truncated, *good[40:]]
    assert len(order) == 50
    return order, {sha(p) for p in good}, [no_carrier, wordy, truncated]


def assert_each_snapshot_once(client: MlflowClient, name: str, contents: set[str]) -> list[dict[str, str]]:
    """One complete version per content, each decision applied once and in order, the champion on the last
    version promoted, challenger only on a last round that kept; returns the versions."""
    found = versions(client, name)
    by_content: dict[str, list[str]] = {}
    for v in found:
        by_content.setdefault(v["rewarm.snapshot_sha256"], []).append(v["version"])
    assert set(by_content) == contents
    assert all(len(vs) == 1 for vs in by_content.values()), {s[:8]: vs for s, vs in by_content.items() if len(vs) > 1}
    champion = "none"
    for v in found:  # each round compared against the champion of its day, then applied exactly that decision
        assert v["rewarm.complete"] == "true" and v[registry.APPLIED_TAG] != registry.NOT_APPLIED, v
        assert v["rewarm.parent_version"] == champion, (v["version"], v["rewarm.parent_version"], champion)
        if v["rewarm.decision"] in ("first_model", "promote"):
            assert v.get("rewarm.previous_champion", "none") == champion
            champion = v["version"]
    assert str(registry.current_version(client, name, registry.CHAMPION)) == champion
    # challenger is the latest round's candidate when that round kept the champion, and none after a promotion
    kept = found[-1]["rewarm.decision"] not in ("first_model", "promote")
    challenger = registry.current_version(client, name, registry.CHALLENGER)
    assert challenger == (int(found[-1]["version"]) if kept else None), (challenger, found[-1]["rewarm.decision"])
    assert ledger.processed(client, name) == {v["rewarm.snapshot_sha256"]: int(v["version"]) for v in found}
    return found


def runs_of(prefect: str, folder: Path) -> list:
    """The retrain flow runs of the test whose files are in FOLDER (their parameters name its config or its
    landing folder); the module's other tests share the Prefect server."""
    return [r for r in flow_runs(prefect) if str(folder) in json.dumps(r.parameters, default=str)]


def assert_nothing_running(client: MlflowClient, name: str, prefect: str, folder: Path) -> None:
    experiment = client.get_experiment_by_name(name).experiment_id
    left = client.search_runs([experiment], "attributes.status = 'RUNNING'")
    assert not left, [(r.info.run_name, r.info.start_time) for r in left]
    active = [(r.name, r.state.type.value) for r in runs_of(prefect, folder) if r.state.type.value in ACTIVE]
    assert not active, active


def test_fifty_snapshots_with_racing_writers_a_tracking_restart_and_lost_answers(
    tmp_path: Path, env: dict[str, str], tracking: Tracking, prefect: str, flights: pd.DataFrame, summary_line
) -> None:
    name = "burst-fifty"
    config = write_config(tmp_path, name=name)
    config.write_text(config.read_text() + '\n[service]\nsettle_seconds = 1\ncron = "* * * * *"\n')
    landing = tmp_path / "landing"
    landing.mkdir()
    order, contents, bad = fifty(flights, tmp_path / "source")
    faults = tmp_path / "faults"
    faults.mkdir()
    client = MlflowClient()
    service = Service(config, env)
    writers: list[subprocess.Popen] = []
    try:
        service.wait_for_line("watching")
        began = time.monotonic()
        for i, path in enumerate(order):
            land(landing / path.name, path.read_bytes())
            if i in (10, 30):  # an operator catches up from a shell while the service works through the burst
                log = tmp_path / f"writer-{i}.log"
                writers.append(writer(f"lost-answers:{faults}", "--config", str(config), env=env, log=log))
        wait_for(lambda: len(complete(client, name)) >= 12, "12 complete versions before the restart", 400)
        tracking.kill()  # mid-burst: rounds in flight lose the tracking server
        time.sleep(3)
        tracking.start()
        wait_for(lambda: contents <= set(ledger.processed(client, name)), "every snapshot processed", 600)
        for w in writers:
            w.wait(240)
        burst_seconds = time.monotonic() - began
        summary_line(
            f"50-snapshot burst (45 distinct, 2 copies, 3 bad; watcher, schedule, 2 shell retrains, a tracking "
            f"restart): {burst_seconds:.0f} s from the first file landed to the last one processed"
        )
        assert service.interrupt() == 0, service.output()[-4000:]

        logs = [(tmp_path / f"writer-{i}.log").read_text() for i in (10, 30)]
        # An outage may fail a writer, saying so in one line; a writer that caught up on a bad snapshot exits 2 and
        # names it (the rest of what was pending still trained)
        for w, text in zip(writers, logs, strict=True):
            rejected = w.returncode == 2 and ": not retrained: " in text and "moved to" in text
            assert w.returncode == 0 or rejected or (w.returncode == 3 and "did not answer" in text), text[-3000:]
        happened = "".join(p.read_text() for p in faults.glob("faults-*.log")).split()
        assert "lost" in happened, "no create lost its answer: the HTTP fault never fired"
        found = assert_each_snapshot_once(client, name, contents)
        assert_nothing_running(client, name, prefect, tmp_path)
        assert one_at_a_time(round_spans(client, name, finished=True))  # one writer at a time, whoever it was
        assert any(r.name == "retrain-pending" for r in runs_of(prefect, tmp_path)), "the schedule never fired"

        held = {r.landed_as for r in quarantine.records(str(tmp_path / "quarantine"))}
        assert held == {p.name for p in bad}
        for path in order:  # nothing lost: every file is in the landing folder or the quarantine, byte for byte
            assert (path.name in held) != (landing / path.name).exists(), path.name
        assert {sha(landing / p.name) for p in order if p not in bad} == contents
        assert len(found) == len(contents)
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
        service.close()


def test_a_writer_killed_mid_round_hands_the_lease_to_the_one_waiting(
    tmp_path: Path, env: dict[str, str], prefect: str, flights: pd.DataFrame
) -> None:
    name = "killed-writer"
    config = write_config(tmp_path, name=name, min_delta="-1.0")
    landing = tmp_path / "landing"
    landing.mkdir()
    months = []
    for month in (1, 2, 3):
        path = landing / f"m{month}.parquet"
        land(path, small_month(flights, month, rows=600).to_parquet(index=False))
        months.append(path)
    client = MlflowClient()
    first = subprocess.run(
        [sys.executable, "-m", "rewarm.cli", "retrain", str(months[0]), "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    pause = tmp_path / "pause"
    pause.mkdir()
    killed = writer(
        f"pause-before-register:{pause}", str(months[1]), "--config", str(config), env=env, log=tmp_path / "a.log"
    )
    waiting = None
    try:
        wait_for(lambda: (pause / "paused").exists() or killed.poll() is not None, "writer A mid-round", 240)
        assert killed.poll() is None, (tmp_path / "a.log").read_text()[-3000:]
        b_log = tmp_path / "b.log"
        waiting = writer("lost-answers:" + str(pause), str(months[2]), "--config", str(config), env=env, log=b_log)
        wait_for(lambda: "holds its lease" in b_log.read_text(), "writer B to wait for the lease", 120)
        assert f"pid {killed.pid} " in b_log.read_text()  # it names who holds the lease
        os.kill(killed.pid, signal.SIGKILL)  # mid-round, its MLflow runs open and its lease held
        killed.wait(30)
        assert waiting.wait(300) == 0, b_log.read_text()[-3000:]
    finally:
        for process in (killed, waiting):
            if process is not None and process.poll() is None:
                process.kill()

    assert killed.returncode == -signal.SIGKILL
    contents = {sha(p) for p in months}
    assert_each_snapshot_once(client, name, contents)  # m2 was retrained by B, once, before m3
    assert [v["rewarm.snapshot"] for v in versions(client, name)] == ["m1.parquet", "m2.parquet", "m3.parquet"]
    assert_nothing_running(client, name, prefect, tmp_path)
    experiment = client.get_experiment_by_name(name).experiment_id
    closed = client.search_runs([experiment], "attributes.status = 'KILLED'")
    assert "retrain m2.parquet" in {r.info.run_name for r in closed}  # A's round, closed by B once A was dead
    assert "died holding it" in (tmp_path / "b.log").read_text()
    [dead] = [r for r in runs_of(prefect, tmp_path) if r.state.is_crashed()]  # A's flow run, ended by B
    assert dead.name == "retrain-m2.parquet" and "died mid-round" in dead.state.message
    assert one_at_a_time(round_spans(client, name, finished=True))


def test_ctrl_c_mid_round_leaves_every_run_in_a_terminal_state(
    tmp_path: Path, env: dict[str, str], home: Path, prefect: str, flights: pd.DataFrame
) -> None:
    name = "interrupted"
    config = write_config(tmp_path, name=name)
    slow = config.read_text().replace("max_epochs = 6\npatience = 2", "max_epochs = 5000\npatience = 5000")
    config.write_text(slow + "\n[service]\nsettle_seconds = 1\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    client = MlflowClient()
    service = Service(config, env)
    try:
        service.wait_for_line("watching")
        snapshot = land(landing / "m1.parquet", small_month(flights, 1, rows=3000).to_parquet(index=False))
        checkpoints = home / "checkpoints" / name
        wait_for(lambda: list(checkpoints.rglob("*.pt")), "a served round mid-training (an epoch checkpoint)", 240)
        assert service.interrupt() == 0, service.output()[-4000:]
    finally:
        service.close()

    assert_nothing_running(client, name, prefect, tmp_path)
    [run] = [r for r in runs_of(prefect, tmp_path) if r.name == "retrain-m1.parquet"]
    assert run.state.is_cancelled(), (run.state, service.output()[-4000:])
    experiment = client.get_experiment_by_name(name).experiment_id
    [parent] = client.search_runs([experiment], "tags.`rewarm.kind` = 'retrain'")
    assert parent.info.status == "KILLED"  # stopped, not failed: nothing was wrong with the snapshot
    assert versions(client, name) == []  # nothing registered, nothing promoted: the snapshot is still pending
    assert sha(snapshot) not in ledger.processed(client, name)
