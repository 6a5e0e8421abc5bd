"""Running the service in tests: a real Prefect server of a test's own, `rewarm serve` in a subprocess, and what
Prefect and MLflow say afterwards (tests/test_service.py, tests/test_concurrency.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient
from waiting import start_server, wait_for

from rewarm.processes import free_port, spawn, stop_group


@contextmanager
def prefect_server(folder: Path, stores) -> Iterator[str]:
    """A real Prefect server on a free loopback port, for the body (its API URL); on the production profile it
    keeps its state in a PostgreSQL database of its own."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Queued runs ask for their slot again after 1 s instead of 30, to keep the tests short.
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
        **stores.prefect_database(f"prefect_service_{port}"),
    }
    env.pop("PREFECT_API_URL", None)
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/api"
    process = start_server(command, folder / "server.log", url, env)
    try:
        yield url
    finally:
        stop_group(process, grace=0, reap=30)


class Service:
    """`rewarm serve` in its own process group, with its output in a file the test can read."""

    def __init__(self, config: Path, env: dict[str, str], *extra: str) -> None:
        self.log = config.parent / f"serve-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "rewarm.cli", "serve", "--config", str(config), *extra]
        # Started as a shell without job control starts a background job (`rewarm serve &`, nohup, a CI
        # script): with SIGINT ignored, which the child inherits. A Ctrl-C must stop it all the same.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.process = spawn(command, self.log, env)
        finally:
            signal.signal(signal.SIGINT, previous)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout: float = 120.0) -> None:
        wait_for(lambda: text in self.output() or self.process.poll() is not None, repr(text), timeout)
        assert text in self.output(), f"rewarm serve exited ({self.process.returncode}):\n{self.output()[-4000:]}"

    def interrupt(self) -> int:
        """Ctrl-C, as a user would; return the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def close(self) -> None:
        """Kill whatever is left of its process group."""
        stop_group(self.process, grace=0, reap=30)


def versions(client: MlflowClient, name: str) -> list[dict[str, str]]:
    """Registered versions of model NAME, oldest first, with their rewarm tags."""
    found = client.search_model_versions(f"name = '{name}'")
    return [{"version": v.version, **v.tags} for v in sorted(found, key=lambda v: int(v.version))]


def complete(client: MlflowClient, name: str) -> list[dict[str, str]]:
    return [v for v in versions(client, name) if v.get("rewarm.complete") == "true"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flow_runs(server: str) -> list:
    """Every run of the retrain flow on the Prefect server at SERVER."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server}), get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])))


def round_spans(client: MlflowClient, name: str, finished: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each retrain parent run of model NAME, in start order (FINISHED ones only if FINISHED)."""
    query = "tags.`rewarm.kind` = 'retrain'" + (" and attributes.status = 'FINISHED'" if finished else "")
    rounds = client.search_runs(
        [client.get_experiment_by_name(name).experiment_id], query, order_by=["attributes.start_time ASC"]
    )
    return [(r.info.start_time, r.info.end_time) for r in rounds]


def one_at_a_time(spans: list[tuple[int, int]]) -> bool:
    """No two rounds overlap: each ends before the next one starts."""
    return all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:], strict=False))
