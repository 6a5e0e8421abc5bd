"""Failure policy shared by the tasks and flows: which errors the I/O and registry tasks retry, and how Prefect
logs rewarm's own errors."""

from __future__ import annotations

import logging
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


class _OneLine(logging.Filter):
    """Drop the traceback from Prefect's log of a RewarmError: its message already names the file, the column or
    the count and says what to do (a rejected snapshot is bad input, not a crash). Other errors keep theirs, and
    so does a RewarmError made from one that is neither rewarm's nor a reader's (an OSError, or a ValueError
    such as pyarrow's or the CSV parser's): a TypeError wrapped as "cannot be read" is a bug to see."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, RewarmError) and _expected(error.__cause__):
            record.exc_info = record.exc_text = None
        return True


def _expected(cause: BaseException | None) -> bool:
    """Whether CAUSE, what a RewarmError was raised from, is bad input or storage rather than a bug."""
    return cause is None or isinstance(cause, (RewarmError, OSError, ValueError))


def one_line_errors() -> None:
    """Install _OneLine on Prefect's task-run and flow-run loggers, which log a failed run's exception with its
    traceback (about 90 lines for one rejected snapshot); idempotent, called at the start of each flow."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLine) for f in logger.filters):
            logger.addFilter(_OneLine())
