"""Failure policy on real Prefect tasks and flows: transient errors are retried, bad input fails at once, and a
rewarm error is logged as its one line while any other keeps its traceback."""

from __future__ import annotations

import logging

import pytest
from prefect import flow, task

from rewarm.errors import SnapshotRejected
from rewarm.tasks.policy import one_line_errors, retry_on

pytestmark = pytest.mark.usefixtures("prefect_server")


def flaky(errors: list[BaseException]):
    """A task that raises the queued errors one per attempt, then succeeds; counts attempts."""
    attempts = []

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_on(OSError))
    def work() -> int:
        attempts.append(1)
        if errors:
            raise errors.pop(0)
        return len(attempts)

    return work, attempts


def test_transient_errors_are_retried() -> None:
    work, attempts = flaky([OSError("bucket hiccup"), OSError("again")])
    assert work() == 3 and len(attempts) == 3


def test_rewarm_errors_are_not_retried() -> None:
    work, attempts = flaky([SnapshotRejected("x.csv: missing column 'late'")])
    with pytest.raises(SnapshotRejected):
        work()
    assert len(attempts) == 1


def test_unexpected_errors_are_not_retried() -> None:
    work, attempts = flaky([KeyError("bug")])
    with pytest.raises(KeyError):
        work()
    assert len(attempts) == 1


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(
    ("error", "cause", "traceback"),
    [
        (SnapshotRejected("x.csv: column 'temp' must hold numbers"), None, False),
        (SnapshotRejected("x.parquet: cannot be read as parquet"), ValueError("corrupt footer"), False),
        (SnapshotRejected("x.parquet: cannot be read as parquet"), TypeError("a bug in the reader"), True),
        (KeyError("bug"), None, True),
    ],
    ids=["rejected", "rejected-from-bad-input", "rejected-from-a-bug", "crash"],
)
def test_only_rewarm_errors_lose_their_traceback_in_prefect_logs(
    error: BaseException, cause: BaseException | None, traceback: bool
) -> None:
    @task
    def read() -> None:
        if cause is None:
            raise error
        raise error from cause

    @flow
    def round_() -> None:
        one_line_errors()
        one_line_errors()  # idempotent: flows call it at every start
        read()

    kept = Kept()
    loggers = [logging.getLogger(n) for n in ("prefect.task_runs", "prefect.flow_runs")]
    for logger in loggers:
        logger.addHandler(kept)
    try:
        with pytest.raises(type(error)):
            round_()
    finally:
        for logger in loggers:
            logger.removeHandler(kept)
    logged = ("Task run failed with exception", "Encountered exception during execution")  # Prefect's wording
    failed = [r for r in kept.records if r.getMessage().startswith(logged)]
    assert {r.name for r in failed} == {"prefect.task_runs", "prefect.flow_runs"}  # the task's and the flow's
    assert all(str(error) in r.getMessage() for r in failed)  # the reason is still there, in one line
    tracebacks = [r for r in failed if r.exc_info]
    assert len(tracebacks) == (len(failed) if traceback else 0)
    assert sum(len([f for f in lg.filters if type(f).__name__ == "_OneLine"]) for lg in loggers) == 2
