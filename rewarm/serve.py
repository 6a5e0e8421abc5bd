"""`rewarm serve`: a Prefect server on 127.0.0.1 (unless PREFECT_API_URL names one), the watcher, and the
served retrain deployments, all in one command; Ctrl-C stops what it started."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import faulthandler
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rewarm.config import Settings
from rewarm.errors import RewarmError
from rewarm.processes import healthy, port_in_use, spawn, stop_group, wait_healthy

log = logging.getLogger("rewarm.serve")
DEFAULT_PORT = 4200
# Queued retrains ask for their slot again this often (Prefect's default is 30 s).
SLOT_WAIT_SECONDS = "5"
# After Ctrl-C or SIGTERM `rewarm serve` is gone within this long, whatever is in flight.
SHUTDOWN_SECONDS = 45.0
_STARTED: list[subprocess.Popen] = []  # Prefect servers this process started and has not stopped yet
_ARMED: list[bool] = []  # the shutdown's deadline is set (once per process)
WATCHERS_SECONDS = 10.0  # how long the watchers together may take to finish their current look


@contextlib.contextmanager
def flows_in_process() -> Iterator[None]:
    """Run flows in this process without Prefect's flow-run heartbeat when no Prefect server is configured.

    The heartbeat tells a server that a run is alive, so that a crashed one can be found; a temporary server
    dies with this process, so nobody is there to miss it. Prefect's heartbeat thread sleeps in 1 s steps and
    every flow run's teardown waits for it: 0.5 s a run on average, measured 0.9 s of a 4 s retrain's fixed
    cost here (docs/benchmarks.md). Against a real server (PREFECT_API_URL) the heartbeat stays on.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@contextlib.contextmanager
def prefect_server(home: Path, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> Iterator[str]:
    """Yield the API URL of a Prefect server: PREFECT_API_URL's if set, else one started here and stopped after."""
    given = os.environ.get("PREFECT_API_URL")
    if given:
        if not healthy(given):
            raise RewarmError(f"PREFECT_API_URL={given} does not answer; start that server or unset the variable")
        yield given
        return
    url = f"http://{host}:{port}/api"
    if port_in_use(host, port):
        if healthy(url):
            log.warning("using the Prefect server already running at %s; not started here, so it keeps running", url)
            yield url
            return
        raise RewarmError(
            f"port {port} on {host} is taken by something that is not a Prefect server: pass --port N, or start "
            f"one yourself (`prefect server start --host 127.0.0.1 --port N`) and set PREFECT_API_URL"
        )
    process, logfile = _start_server(home, host, port)
    _STARTED.append(process)
    try:
        _wait_healthy(url, process, logfile)
        yield url
    finally:
        stop_group(process, "Prefect server")
        _STARTED.remove(process)


def _start_server(home: Path, host: str, port: int) -> tuple[subprocess.Popen, Path]:
    home.mkdir(parents=True, exist_ok=True)
    logfile = home / "prefect-server.log"
    env = dict(os.environ) | ui_env(host, port)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS", SLOT_WAIT_SECONDS)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    log.info("starting the Prefect server: %s (log: %s)", " ".join(command), logfile)
    return spawn(command, logfile, env), logfile


def ui_env(host: str, port: int) -> dict[str, str]:
    """Environment for a Prefect server on HOST:PORT whose UI talks to that server: left alone, Prefect 3.8's UI
    calls port 4200 whatever port the server listens on. A user's own setting wins."""
    if os.environ.get("PREFECT_UI_API_URL") or os.environ.get("PREFECT_SERVER_UI_API_URL"):
        return {}
    shown = socket.getfqdn() if host in ("0.0.0.0", "::", "") else host  # a browser cannot call 0.0.0.0
    return {"PREFECT_UI_API_URL": f"http://{shown}:{port}/api"}


def _wait_healthy(url: str, process: subprocess.Popen, logfile: Path) -> None:
    """Return once our server answers; else stop it and say how to start one by hand."""
    try:
        wait_healthy(url, process, logfile)
    except (RuntimeError, TimeoutError) as exc:
        stop_group(process, "Prefect server")
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
        port = url.rsplit(":", 1)[1].split("/")[0]
        raise RewarmError(
            f"the Prefect server did not come up at {url} (log {logfile}):\n{tail}\n"
            f"Start one yourself with `prefect server start --host 127.0.0.1 --port {port}` "
            f"and set PREFECT_API_URL={url}"
        ) from exc


def serve(
    settings: list[Settings], home: Path, port: int = DEFAULT_PORT, watch: bool = True, host: str = "127.0.0.1"
) -> None:
    """Run the service until Ctrl-C (or SIGTERM): server if needed, deployments, then the watchers.
    A server started here binds HOST: 127.0.0.1 unless the user asks for another address."""
    from prefect.exceptions import TerminationSignal
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    from rewarm.deployments.service import deployment_name, ensure_gpu_limit, retrain_deployment, watcher

    with prefect_server(home, port, host) as api_url, temporary_settings({PREFECT_API_URL: api_url}):
        os.environ["PREFECT_API_URL"] = api_url  # for the flow-run processes the runner starts
        runner = _runner()
        ensure_gpu_limit(settings)
        for s in settings:
            # Applied now, triggers included, so that no event a watcher sends can arrive before its trigger.
            runner.add_deployment(retrain_deployment(s))
            ui = PREFECT_UI_URL.value() or api_url.removesuffix("/api")
            print(f"serving {deployment_name(s)}: Prefect UI {ui}", flush=True)
        stop_watching = threading.Event()
        # Each watcher thread runs in a copy of this context, so it sees the temporary API URL too.
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(watcher(s, home).run, stop_watching),
                name=f"watch-{s.model.name}",
                daemon=True,  # a watcher stuck in a store call must not keep the process alive after Ctrl-C
            )
            for s in (settings if watch else [])
        ]
        try:  # a signal before the runner installs its handler stops the watchers too
            for t in threads:
                t.start()
            asyncio.run(_run(runner))
        except (KeyboardInterrupt, TerminationSignal):
            log.info("shutting down")
        finally:
            _bound_shutdown()
            stop_watching.set()
            deadline = time.monotonic() + WATCHERS_SECONDS  # one wait for all of them, not one each
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))


async def _run(runner) -> None:
    """Run the runner; on Ctrl-C (asyncio cancels this task) bound the shutdown first, cancel the runs in flight
    as Prefect cancels a run (the run's process is told, its MLflow runs close), then let the runner wind down."""
    started = asyncio.ensure_future(runner.start())
    try:
        await asyncio.shield(started)
    except asyncio.CancelledError:
        _bound_shutdown()
        await _cancel_in_flight(runner)
        started.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await started
        raise


STOPPED = "rewarm serve stopped before this run finished; its snapshot stays pending and the next run retrains it"


async def _cancel_in_flight(runner) -> None:
    """Cancel every run this runner took that has not finished: those running (Prefect's cancellation, which
    the run's process handles), and those it had accepted but not yet started (left Pending otherwise)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    try:
        await runner.astop()
    except Exception as exc:  # a runner that never got going has nothing in flight
        log.debug("stopping the runner: %s", exc)
    if not runner.accepted:
        return
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    open_states = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING, StateType.SCHEDULED]
    unfinished = FlowRunFilter(
        id=FlowRunFilterId(any_=list(runner.accepted)),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=open_states)),
    )
    try:
        async with get_client() as client:  # one query, however many runs this runner took
            for run in await client.read_flow_runs(flow_run_filter=unfinished):
                await client.set_flow_run_state(run.id, Cancelled(message=STOPPED), force=True)
                log.info("flow run %s cancelled: %s", run.name, STOPPED)
    except Exception as exc:  # the server may be what is going away: say so, keep stopping
        log.warning("could not close the flow runs this runner took: %s", exc)


def _runner():
    """Prefect's runner, whose SIGTERM handler (it replaces the command's) bounds the shutdown, then stops as
    Ctrl-C does (Prefect 3.8's own handler leaves its stop coroutine un-awaited and exits). It remembers the
    runs it accepted, so that a shutdown leaves none of them Pending or Running."""
    from prefect.runner import Runner

    class BoundedRunner(Runner):
        accepted: frozenset = frozenset()  # its own set once it runs

        def handle_sigterm(self, *args: object) -> None:
            _bound_shutdown()
            raise KeyboardInterrupt

        async def __aenter__(self):
            entered = await super().__aenter__()
            self.accepted = set()
            proposer = self._state_proposer  # Prefect 3.8 (pinned) accepts a scheduled run by proposing Pending
            propose = proposer.propose_pending

            async def propose_pending(flow_run) -> bool:
                taken = await propose(flow_run)
                if taken:
                    self.accepted.add(flow_run.id)
                return taken

            proposer.propose_pending = propose_pending
            return entered

    return BoundedRunner(pause_on_shutdown=True)


def _bound_shutdown(seconds: float = SHUTDOWN_SECONDS) -> None:
    """Make sure this process ends within SECONDS of the shutdown (armed once, at its start): past that, every
    thread's stack goes to stderr (what hung, for a bug report), the Prefect server started here is stopped,
    and the process exits 1."""
    if _ARMED:
        return
    _ARMED.append(True)

    def expire() -> None:
        log.error("shutdown took longer than %.0f s; the threads still running:", seconds)
        faulthandler.dump_traceback(all_threads=True)
        for process in _STARTED:
            stop_group(process, "Prefect server", grace=5, reap=5)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
