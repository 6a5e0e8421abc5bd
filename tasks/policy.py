"""Retry policy shared by the I/O and registry tasks."""

from __future__ import annotations

from collections.abc import Callable

from mlflow.exceptions import MlflowException
from prefect.tasks import exponential_backoff

from rewarm.errors import RewarmError

# 1 s, 2 s, 4 s (with jitter): long enough for a busy SQLite store or a flaky bucket to recover.
BACKOFF = exponential_backoff(backoff_factor=1)
TRANSIENT = (OSError, MlflowException)


def retry_on(*transient: type[BaseException]) -> Callable[..., bool]:
    """A retry_condition_fn that retries only TRANSIENT errors, never rewarm's own (bad input stays bad)."""

    def should_retry(task, task_run, state) -> bool:
        try:
            state.result()
        except RewarmError:
            return False
        except transient:
            return True
        except BaseException:  # anything else is a bug or bad input: retrying would only repeat it
            return False
        return False

    return should_retry
