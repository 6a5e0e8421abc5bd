"""Retry policy on real Prefect tasks: transient errors are retried, bad input fails at once."""

from __future__ import annotations

import pytest
from prefect import task

from rewarm.errors import SnapshotRejected
from rewarm.tasks.policy import retry_on

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
