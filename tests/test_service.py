"""The service end to end: a real Prefect server, `rewarm serve` (served deployment + watcher) in a subprocess,
snapshots copied into the landing folder, results read back from Prefect and MLflow."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import services
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient
from services import Service, flow_runs, one_at_a_time, prefect_server, round_spans, sha
from waiting import wait_for

from rewarm import quarantine
from rewarm.processes import free_port, healthy, spawn, stop_group
from rewarm.store import open_store, resolve_store

pytestmark = pytest.mark.slow
MODEL = "served-model"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stores) -> Iterator[str]:
    """A real Prefect server on a free loopback port, stopped after the module."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server"), stores) as url:
        yield url


@pytest.fixture
def service_env(server: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PREFECT_API_URL", server)
    open_store(resolve_store())  # this test process reads the same MLflow store the service writes
    return {
        **os.environ,
        "REWARM_HOME": str(home),
        "PREFECT_API_URL": server,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # the runner looks for scheduled runs every second
    }


def versions(client: MlflowClient, name: str = MODEL) -> list[dict[str, str]]:
    return services.versions(client, name)


def complete(client: MlflowClient, name: str = MODEL) -> list[dict[str, str]]:
    return services.complete(client, name)


def status(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`rewarm status` for CONFIG, as a user runs it."""
    command = [sys.executable, "-m", "rewarm.cli", "status", "--config", str(config)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def months(flights: pd.DataFrame, folder: Path) -> dict[int, Path]:
    folder.mkdir()
    out = {}
    for month in range(1, 7):
        out[month] = folder / f"m{month}.parquet"
        small_month(flights, month, rows=800).to_parquet(out[month], index=False)
    return out


def test_served_deployment_and_watcher(
    tmp_path: Path, server: str, service_env: dict[str, str], flights: pd.DataFrame
) -> None:
    config = write_config(tmp_path, name=MODEL)
    config.write_text(config.read_text() + "\n[service]\nsettle_seconds = 1\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    files = months(flights, tmp_path / "source")
    client = MlflowClient()

    # The cron path, fired on demand: without a watcher, two landed snapshots wait until the scheduled
    # deployment runs, which retrains every pending one, oldest first.
    service = Service(config, service_env, "--no-watch")
    try:
        service.wait_for_line("retrain/" + MODEL)
        for month in (1, 2):
            shutil.copy(files[month], landing / files[month].name)
        time.sleep(1.5)  # past settle_seconds, so both count as complete
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: server}):
            run = run_deployment(f"retrain/{MODEL}", timeout=240)
        assert run.state.is_completed(), run.state
        assert [v["rewarm.snapshot"] for v in versions(client)] == ["m1.parquet", "m2.parquet"]
        assert service.interrupt() == 0
    finally:
        service.close()

    # The event path. Restarted, the watcher sees m1 and m2 again: their content is processed, so no retrain.
    service = Service(config, service_env)
    try:
        service.wait_for_line("watching")
        service.wait_for_line("m2.parquet: same content")
        shutil.copy(files[3], landing / "m3.parquet")
        # A version exists a moment before its tags; it counts once tagged complete (the tags are written first).
        wait_for(lambda: len(complete(client)) == 3, "a complete version trained on m3")
        v3 = versions(client)[-1]
        assert v3["rewarm.snapshot"] == "m3.parquet" and v3["rewarm.snapshot_sha256"] == sha(files[3])
        wait_for(
            lambda: any(r.name == "retrain-m3.parquet" and r.state.is_completed() for r in flow_runs(server)),
            "a completed flow run for m3",
        )

        # The same bytes under another name: the watcher recognises the content and starts nothing.
        shutil.copy(files[3], landing / "m3-copy.parquet")
        service.wait_for_line("m3-copy.parquet: same content")
        assert len(versions(client)) == 3
        assert not [r for r in flow_runs(server) if r.name == "retrain-m3-copy.parquet"]

        # Three at once: each retrained exactly once, one at a time, in landing order.
        for month in (4, 5, 6):
            shutil.copy(files[month], landing / files[month].name)
        wait_for(lambda: len(complete(client)) == 6, "complete versions for m4, m5 and m6", timeout=300)
        wait_for(lambda: all(r.state.is_final() for r in flow_runs(server)), "every flow run to finish")
        found = versions(client)
        assert [v["rewarm.snapshot"] for v in found] == [f"m{m}.parquet" for m in range(1, 7)]
        assert [v["rewarm.snapshot_sha256"] for v in found] == [sha(files[m]) for m in range(1, 7)]
        # A queued run whose snapshot an earlier run retrained first is cancelled, saying by which run; a run of
        # the hourly schedule that came due while the first service ran was cancelled by its shutdown.
        ended = [r.state for r in flow_runs(server)]
        handled = ("was handled by flow run", "Runner is shutting down", "rewarm serve stopped")
        assert all(st.is_completed() or any(h in (st.message or "") for h in handled) for st in ended), ended
        spans = round_spans(client, MODEL)
        assert len(spans) == 6 and one_at_a_time(spans)
        shown = status(config, service_env)
        assert "0 pending snapshot(s)" in shown.stdout and "retrain-m6.parquet: Completed" in shown.stdout
        assert service.interrupt() == 0
        with pytest.raises(ProcessLookupError):  # nothing of its process group is left running
            os.killpg(service.process.pid, 0)
    finally:
        service.close()


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on PORT, read from the kernel's table (Linux)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_serve_starts_and_stops_its_own_server(tmp_path: Path, home: Path) -> None:
    config = write_config(tmp_path, name="self-served")
    port = free_port()
    env = {**os.environ, "REWARM_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect")}
    service = Service(config, env, "--port", str(port), "--no-watch")
    url = f"http://127.0.0.1:{port}/api"
    try:
        service.wait_for_line("retrain/self-served", timeout=180)
        assert healthy(url)
        assert listening_addresses(port) == {"127.0.0.1"}  # this machine only, unless --host says otherwise
        assert service.interrupt() == 0
        assert not healthy(url)  # the server it started is gone, not left behind
        assert "stopping the Prefect server" in service.output()
    finally:
        service.close()
    leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout
    assert not leftover.strip(), f"processes left behind: {leftover}"


def test_work_pool_worker_runs_the_deployment(
    tmp_path: Path, server: str, service_env: dict[str, str], flights: pd.DataFrame
) -> None:
    """`rewarm deploy --pool` then a real `prefect worker start --pool`: how a GPU machine takes retrains."""
    config = write_config(tmp_path, name="pooled-model")
    snapshot = tmp_path / "landing" / "m1.parquet"
    snapshot.parent.mkdir()
    small_month(flights, 1, rows=800).to_parquet(snapshot, index=False)
    deployed = subprocess.run(
        [sys.executable, "-m", "rewarm.cli", "deploy", "--pool", "gpu-pool", "--config", str(config)],
        env=service_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deployed.returncode == 0, deployed.stderr
    assert "prefect worker start --pool gpu-pool" in deployed.stdout
    prefect = Path(sys.executable).with_name("prefect")
    worker = spawn(
        [str(prefect), "worker", "start", "--pool", "gpu-pool", "--prefetch-seconds", "5"],
        tmp_path / "worker.log",
        env={**service_env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        cwd=tmp_path,  # not the checkout: the worker imports the flow from the installed package
    )
    try:
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: server}):
            run = run_deployment("retrain/pooled-model", parameters={"snapshot": str(snapshot)}, timeout=240)
        assert run.state.is_completed(), (tmp_path / "worker.log").read_text()[-4000:]
        [version] = MlflowClient().search_model_versions("name = 'pooled-model'")
        assert version.tags["rewarm.snapshot_sha256"] == sha(snapshot)
    finally:
        stop_group(worker, grace=0, reap=30)


def burst_files(flights: pd.DataFrame, folder: Path) -> tuple[list[Path], dict[str, Path], list[Path]]:
    """Twenty snapshots in FOLDER, in the order they will land: the fifteen distinct good ones, a byte copy
    of three of them (copy name -> original), two malformed ones; copies and malformed ones in between."""
    folder.mkdir()
    seeds = [(month, 0) for month in range(1, 13)] + [(4, 1), (7, 1), (10, 1)]
    good = [folder / f"burst-{i:02d}.parquet" for i in range(1, 16)]
    for path, (month, seed) in zip(good, seeds, strict=True):
        small_month(flights, month, rows=300, seed=seed).to_parquet(path, index=False)
    copies = {folder / f"burst-copy-{i:02d}.parquet": good[i - 1] for i in (1, 5, 9)}
    for copy, original in copies.items():
        copy.write_bytes(original.read_bytes())
    no_carrier, word = folder / "burst-no-carrier.parquet", folder / "burst-word-in-distance.csv"
    small_month(flights, 3, rows=300, seed=2).drop(columns="carrier").to_parquet(no_carrier, index=False)
    wordy = small_month(flights, 6, rows=300, seed=2).astype({"distance": object})
    wordy.loc[:6, "distance"] = "far"
    wordy.to_csv(word, index=False)
    c1, c5, c9 = copies
    order = [*good[:3], no_carrier, good[3], c1, *good[4:7], c5, *good[7:9], word, good[9], c9, *good[10:]]
    return order, {c.name: o for c, o in copies.items()}, [no_carrier, word]


def test_burst_of_snapshots(tmp_path: Path, server: str, service_env: dict[str, str], flights: pd.DataFrame) -> None:
    """20 snapshots land at once (3 byte copies, 2 malformed): every good one is processed exactly once in
    landing order, the malformed ones are quarantined, nothing is lost."""
    name = "burst-model"
    config = write_config(tmp_path, name=name)
    config.write_text(config.read_text() + "\n[service]\nsettle_seconds = 1\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    order, copies, bad = burst_files(flights, tmp_path / "source")
    good = [p for p in order if p.name not in copies and p not in bad]
    client = MlflowClient()
    service = Service(config, service_env)
    try:
        service.wait_for_line("watching")
        for path in order:
            land(landing / path.name, path.read_bytes())
        wait_for(lambda: len(complete(client, name)) == len(good), "15 complete versions", timeout=900)
        try:
            wait_for(lambda: all(r.state.is_final() for r in flow_runs(server)), "every flow run to finish", 300)
        except AssertionError:
            unfinished = [(r.name, r.state.name, r.state.message) for r in flow_runs(server) if not r.state.is_final()]
            raise AssertionError(f"unfinished flow runs: {unfinished}\n{service.output()[-4000:]}") from None

        found = versions(client, name)
        assert [v["rewarm.snapshot"] for v in found] == [p.name for p in good], service.output()[-4000:]
        assert [v["rewarm.snapshot_sha256"] for v in found] == [sha(p) for p in good]
        runs = [r for r in flow_runs(server) if r.name.startswith("retrain-burst-")]
        # A run whose snapshot an earlier run retrained first (as a subflow) is cancelled while still queued,
        # saying so; apart from those, only the malformed files' own runs may end otherwise than Completed.
        cancelled = [r for r in runs if r.state.is_cancelled()]
        assert all("was handled by flow run" in (r.state.message or "") for r in cancelled), cancelled
        failed = {r.name for r in runs if not r.state.is_completed() and not r.state.is_cancelled()}
        assert failed <= {f"retrain-{p.name}" for p in bad}, failed

        held = {r.landed_as: r for r in quarantine.records(str(tmp_path / "quarantine"))}
        assert sorted(held) == sorted(p.name for p in bad)
        assert "'carrier'" in held["burst-no-carrier.parquet"].reason
        assert (
            "'distance'" in held["burst-word-in-distance.csv"].reason
            and "'far'" in held["burst-word-in-distance.csv"].reason
        )
        assert sorted(p.name for p in landing.iterdir()) == sorted(p.name for p in order if p not in bad)
        processed = {v["rewarm.snapshot_sha256"] for v in found}
        assert all(sha(landing / copy) in processed and sha(landing / copy) == sha(o) for copy, o in copies.items())
        # Nothing lost: every landed file is in the landing folder or the quarantine, byte for byte.
        for path in order:
            kept = Path(held[path.name].location) if path.name in held else landing / path.name
            assert kept.read_bytes() == path.read_bytes(), path.name

        spans = round_spans(client, name)
        assert len(spans) == len(good) and one_at_a_time(spans)
        shown = status(config, service_env)
        assert "0 pending snapshot(s)" in shown.stdout, shown.stdout + shown.stderr
        assert service.interrupt() == 0
    finally:
        service.close()
