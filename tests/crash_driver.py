"""Fault injection: run `rewarm retrain ARGS` in this process with one chosen fault armed at POINT.

    python tests/crash_driver.py POINT [rewarm retrain arguments...]

Kill points end the process with a real SIGKILL (no exception handler, finally block or hook runs);
the pause point waits for the test to act (stop a server, kill the process) before going on; the lost-answers
point disturbs every model-version create at the HTTP seam. Only the point itself is patched in: everything
else is the real retrain, against the stores named by the environment.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after_calls(owner: object, attribute: str, calls: int, when=lambda *a, **k: True) -> None:
    """Kill the process right after the CALLS-th call of OWNER.ATTRIBUTE for which WHEN holds."""
    original = getattr(owner, attribute)
    seen = {"n": 0}

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            seen["n"] += 1
            if seen["n"] == calls:
                die()
        return result

    setattr(owner, attribute, wrapper)


def before_call(owner: object, attribute: str) -> None:
    """Kill the process as OWNER.ATTRIBUTE is about to run."""

    def wrapper(*args, **kwargs):
        die()

    setattr(owner, attribute, wrapper)


def pause_before(owner: object, attribute: str, signal_file: Path, go_file: Path) -> None:
    """Before OWNER.ATTRIBUTE runs, create SIGNAL_FILE and wait until GO_FILE exists."""
    original = getattr(owner, attribute)

    def wrapper(*args, **kwargs):
        signal_file.touch()
        while not go_file.exists():
            time.sleep(0.1)
        return original(*args, **kwargs)

    setattr(owner, attribute, wrapper)


def lose_answers(folder: Path) -> None:
    """Every model-version create POST reaches the tracking server; then, in turn, its answer is lost (the
    connection reset after the server committed) or the request is sent again (a retry after a timeout, as
    MLflow's HTTP layer does). Each fault is written to FOLDER/faults-PID.log, so the test sees it happened."""
    import requests
    from mlflow.utils import rest_utils

    original = rest_utils.http_request
    seen = {"n": 0}

    def wrapper(*args, **kwargs):
        response = original(*args, **kwargs)
        endpoint = kwargs.get("endpoint") or args[1]
        if endpoint.endswith("/model-versions/create") and response.status_code == 200:
            seen["n"] += 1
            lost = seen["n"] % 2 == 1
            with (folder / f"faults-{os.getpid()}.log").open("a") as fh:
                fh.write("answer lost\n" if lost else "sent twice\n")
            if lost:
                raise requests.exceptions.ConnectionError("connection reset by peer (the create's answer was lost)")
            original(*args, **kwargs)
        return response

    rest_utils.http_request = wrapper


def arm(point: str) -> None:
    from mlflow import MlflowClient

    from rewarm import registry, training

    if point == "training":  # mid-training: right after the second epoch checkpoint is on disk
        after_calls(training.Checkpoint, "save", 2)
    elif point == "registered":  # the version is registered, no alias has moved
        after_calls(registry, "log_model", 1)
    elif point == "between-aliases":  # champion moved; challenger cleanup and the applied marker not yet
        after_calls(MlflowClient, "set_registered_model_alias", 1, lambda self, name, alias, v: alias == "champion")
    elif point == "before-applied":  # every alias moved; the decision not yet marked applied
        before_call(registry, "mark_applied")
    elif point.startswith("pause-before-register:"):  # wait while the test stops the tracking server
        folder = Path(point.split(":", 1)[1])
        pause_before(registry, "log_model", folder / "paused", folder / "go")
    elif point.startswith("lost-answers:"):
        lose_answers(Path(point.split(":", 1)[1]))
    else:
        raise SystemExit(f"unknown point {point!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from rewarm.cli import main

    sys.exit(main(["retrain", *sys.argv[2:]]))
