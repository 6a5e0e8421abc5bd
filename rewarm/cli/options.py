"""Options several commands share, and the typed comma lists the command line accepts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, get_args

import typer

# What a command returns once its arguments parse: the work to run, returning the exit code (rewarm.cli.main).
Job = Callable[[], int]

# A model's rewarm.toml; the commands that act on one model take it once.
Config = Annotated[
    str | None,
    typer.Option("--config", metavar="PATH", show_default=False, help="rewarm.toml to use (default: ./rewarm.toml)"),
]
# serve, watch and deploy run several models side by side: one --config each.
Configs = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        metavar="PATH",
        show_default=False,
        help="rewarm.toml of a model to serve; repeat for several models (default: ./rewarm.toml)",
    ),
]


class Numbers(tuple[float, ...]):
    """Numbers given as one comma-separated value, such as 0.2,0.4."""


def numbers(text: str) -> Numbers:
    """Parse a comma-separated list of numbers ('0.2,0.4' -> (0.2, 0.4))."""
    try:
        return Numbers(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: comma-separated numbers please, such as 0.2,0.4") from None


def names(values: list[str] | None) -> list[str]:
    """Flatten repeated and comma-separated names ('a,b' --x c -> [a, b, c])."""
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


def strategies(values: list[str] | None) -> list[str]:
    """The --strategies names, each one rewarm knows (a typo fails here, before Prefect starts)."""
    from rewarm.config import StrategyName  # not at import: rewarm.config imports Prefect, seconds for --help

    chosen = names(values)
    allowed = get_args(StrategyName)
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: not a strategy; choose from {', '.join(allowed)}")
    return chosen
