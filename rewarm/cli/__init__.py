"""The `rewarm` command: retrain, serve, watch, deploy, demo, predict, benchmark, status, rollback, quarantine, stack.

Typer (Click) parses; rewarm runs. Each command returns the work to do, and `main` runs it outside Click, so
that errors, Ctrl-C and exit codes are rewarm's own (Click would turn Ctrl-C into a silent exit 130 and a
broken pipe into exit 1): 0 done, 2 a usage or configuration error or a rejected snapshot (`rewarm retrain` without
a snapshot still retrains the pending ones after it), 3 the MLflow tracking server unreachable.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.main import get_command

from rewarm.cli import benchmark, model, operate
from rewarm.cli.options import Job
from rewarm.errors import RewarmError

app = typer.Typer(
    name="rewarm",
    help=__doc__.split("\n\n")[0],
    epilog="Stores live under ./.rewarm (REWARM_HOME overrides; MLFLOW_TRACKING_URI overrides the MLflow store).",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h as under argparse
    # Plain help: rich markup would swallow bracketed text such as [data] and show flags as taking a <bool>.
    rich_markup_mode=None,
)
# The commands, in the order help lists them (then the groups); each one's docstring is its help.
for command in (
    model.retrain,
    operate.serve,
    operate.watch,
    operate.deploy,
    model.demo,
    model.predict,
    model.status,
    model.rollback,
    operate.stack,
):
    app.command()(command)
app.add_typer(benchmark.app, name="benchmark")
app.add_typer(model.quarantine_app, name="quarantine")

# Click's exception for a command line it cannot parse (UsageError, BadParameter, ...): Typer exports only
# BadParameter of that family (recent Typer from its own copy of Click), so take the base from there.
ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> int:
    """Run `rewarm ARGV` (sys.argv when None) and return its exit code."""
    # Offline-friendly defaults at the front door (a user's explicit setting still wins): the ephemeral
    # Prefect server's telemetry heartbeat and MLflow's telemetry only fail and log noise without internet.
    # Set before parsing, which may import Prefect (--strategies is checked against rewarm.config).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Prefect's temporary server migrates a fresh SQLite database at its first start: over its default 20 s on
    # a busy 2-core machine (seen in a full CI run), which a first-time user's `rewarm retrain` must survive.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # MLflow prints its own "View run" links, which open a fresh browser in the GenAI view; rewarm's own links
    # (status, the demo, the decision artifact) open the model-training view.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    job = _parse(argv)
    return _run(job) if callable(job) else job


def _parse(argv: list[str] | None) -> Job | int:
    """The work ARGV asks for, or an exit code when there is none (help shown, or a usage error printed)."""
    try:
        return get_command(app).main(argv, prog_name="rewarm", standalone_mode=False)
    except ClickException as exc:
        return _error(_usage_line(exc), exc.exit_code)
    except RewarmError as exc:
        return _error(str(exc), 2)


def _run(job: Job) -> int:
    """Run JOB; a RewarmError is one line and exit 2, an unreachable tracking server one line and exit 3."""
    try:
        return job()
    except RewarmError as exc:
        return _error(str(exc), 2)
    except Exception as exc:
        if not _tracking_unreachable(exc):
            raise
        uri = os.environ.get("MLFLOW_TRACKING_URI", "the MLflow store")
        return _error(
            f"{uri} did not answer ({_first_line(exc)}); the round did not finish, the champion is "
            "still a complete version, and the snapshot stays pending: the next run (the schedule, or "
            "`rewarm retrain`) finishes or redoes it",
            3,
        )


def _error(message: str, code: int) -> int:
    print(f"rewarm: error: {message}", file=sys.stderr)
    return code


def _usage_line(exc: Exception) -> str:
    """Click's message on one line, with where to find the command's options."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    return f"{text} (see `{ctx.command_path} --help`)" if ctx is not None else text


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
