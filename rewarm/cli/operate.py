"""Commands that run rewarm as a service: serve, watch, deploy, and the production stack on one machine.

Each command only parses: it returns the work to run (a Job), and `rewarm.cli.main` runs it.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from rewarm.cli.options import Configs, Job
from rewarm.errors import RewarmError


def serve(
    port: Annotated[int, typer.Option(metavar="PORT", help="port of the Prefect server it starts")] = 4200,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="address that server binds (127.0.0.1: this machine only)")
    ] = "127.0.0.1",
    no_watch: Annotated[
        bool, typer.Option("--no-watch", help="serve the deployments without the landing watcher")
    ] = False,
    config: Configs = None,
) -> Job:
    """Run the service: Prefect server, watchers, deployments."""
    return partial(run_serve, config, port, host, not no_watch)


def run_serve(config: list[str] | None, port: int, host: str, watch: bool) -> int:
    """Serve every model's deployments (and watch their landing locations) until Ctrl-C or SIGTERM."""
    from rewarm import serve
    from rewarm.store import open_store, resolve_store

    settings = several(config)
    store = open_store(resolve_store())
    _log_to_console()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack on stderr
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's SIGTERM stops it as cleanly as Ctrl-C
    _take_back_sigint()
    serve.serve(settings, store.home, port=port, watch=watch, host=host)
    return 0


def several(paths: list[str] | None) -> list:
    """Validated settings of each --config given (./rewarm.toml when none), one model each."""
    from rewarm.config import check_histories, load_settings

    settings = [load_settings(p) for p in (paths or [None])]
    names = [s.model.name for s in settings]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RewarmError(f"model name(s) {twice} given by more than one --config; each model needs its own name")
    check_histories(settings)  # two models in one snapshot history would mix their snapshots
    return settings


def _take_back_sigint() -> None:
    """A shell without job control starts a background job (`rewarm serve &`, nohup, a CI script) with SIGINT
    ignored, and Python leaves it ignored: Ctrl-C or `kill -INT` would do nothing. A service takes it back."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _log_to_console() -> None:
    """rewarm's own service messages (watcher, server start and stop) on the console, as Prefect's are."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("rewarm")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # Prefect's root handler would print every line a second time


def watch(config: Configs = None) -> Job:
    """Watch data.landing and emit an event per landed snapshot."""
    return partial(run_watch, config)


def run_watch(config: list[str] | None) -> int:
    """Run one landing watcher per model until Ctrl-C or SIGTERM."""
    import threading

    from rewarm.store import open_store, resolve_store
    from rewarm.watcher import Watcher

    settings = several(config)
    if not os.environ.get("PREFECT_API_URL"):
        raise RewarmError(
            "the watcher sends events to a Prefect server: run `rewarm serve` (server, watcher and deployments), "
            "or start `prefect server start --host 127.0.0.1` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    _log_to_console()
    store = open_store(resolve_store())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _take_back_sigint()
    threads = [threading.Thread(target=Watcher(s, store.home).run, args=(stop,), daemon=True) for s in settings]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            stop.wait(1)
    except KeyboardInterrupt:
        stop.set()
    for thread in threads:
        thread.join(timeout=10)
    return 0


def deploy(
    pool: Annotated[str, typer.Option(metavar="NAME", help="work pool name (created as a process pool if missing)")],
    config: Configs = None,
) -> Job:
    """Register the retrain deployments with a work pool."""
    return partial(run_deploy, config, pool)


def run_deploy(config: list[str] | None, pool: str) -> int:
    """Register every model's retrain deployment with work pool POOL and say how to start a worker."""
    from rewarm.deployments.service import deploy_to_pool, deployment_name

    settings = several(config)
    if not os.environ.get("PREFECT_API_URL"):
        raise RewarmError("set PREFECT_API_URL to the Prefect server the workers poll (e.g. http://HOST:4200/api)")
    deploy_to_pool(settings, pool)
    names = ", ".join(deployment_name(s) for s in settings)
    print(
        f"{names} registered with work pool {pool!r}. On each machine that should train (rewarm "
        f"installed, MLFLOW_TRACKING_URI and PREFECT_API_URL set): prefect worker start --pool {pool}"
    )
    return 0


def stack(
    folder: Annotated[
        Path, typer.Option(metavar="DIR", help="where the databases, artifacts and logs live (kept after)")
    ],
    pool: Annotated[str, typer.Option(metavar="NAME", help="the process work pool the worker polls")] = "rewarm",
    artifacts: Annotated[
        str | None,
        typer.Option(
            metavar="LOCATION",
            show_default=False,
            help="where MLflow keeps artifacts: FOLDER/artifacts by default, or s3://bucket/path",
        ),
    ] = None,
) -> Job:
    """The production profile on this machine, to try it: PostgreSQL, MLflow and Prefect servers, a worker."""
    from rewarm.stack import serve_stack

    return partial(serve_stack, folder, pool, artifacts)
