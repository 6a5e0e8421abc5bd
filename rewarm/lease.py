"""One writer per model: the lease every retrain round of a model holds, whatever started it (the schedule, a
landed event, a worker, `rewarm retrain` from a shell).

Two locks, always taken in this order, so that no two holders can wait on each other:
1. a file lock in the rewarm home (`locks/MODEL.lock`), which every process on this machine that writes the
   model's store shares, including the embedded profile, where each process has a temporary Prefect server of
   its own; the kernel releases it when its process dies, however it dies;
2. in a deployment's run (served, or taken by a worker, possibly on another machine), the Prefect server's
   global concurrency limit `rewarm-model-MODEL` (one slot); a killed holder's slot expires with its lease
   (Prefect's shortest is 60 s). A run outside any deployment (`rewarm retrain`, the demo) takes the file lock
   only: it waits for a served run on its machine, not for a worker's on another one.

The outer round takes the lease; the catch-up rounds it runs inside itself find it held by their own process
and thread and go on (a limit of one must not deadlock on landing order).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rewarm import locations

log = logging.getLogger("rewarm.lease")
# A killed holder's Prefect slot is free again this long after it died (plus the server's check, every 15 s);
# Prefect's shortest; the holder renews its lease meanwhile, so a long round keeps it.
LEASE_SECONDS = 60
_held = threading.local()  # model names whose lease this thread holds


def limit_name(model: str) -> str:
    """The Prefect global concurrency limit of MODEL."""
    return f"rewarm-model-{model}"


def lock_path(home: Path, model: str) -> Path:
    """The lock file of MODEL in HOME (a model name may hold characters a file name must not)."""
    return home / "locks" / (re.sub(r"[^A-Za-z0-9._-]", "_", model) + ".lock")


@contextmanager
def hold(model: str, home: Path, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold MODEL's lease for the body, waiting while another writer holds it (SAY gets one line naming it)."""
    held: set[str] = getattr(_held, "models", set())
    if model in held:  # a catch-up round inside the round that holds it
        yield
        return
    _held.models = held | {model}
    try:
        with _file_lock(lock_path(home, model), model, say), _prefect_slot(model, say):
            yield
    finally:
        _held.models = held


def holder_line() -> dict[str, object]:
    """Who holds a lease: written into the lock file for whoever waits."""
    from prefect.runtime import flow_run

    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": locations.user(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "flow_run": flow_run.name or "",
        "flow_run_id": flow_run.id or "",
        "command": " ".join(sys.argv)[:300],
    }


@contextmanager
def _file_lock(path: Path, model: str, say: Callable[[str], None]) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:  # never deleted: removing a lock file lets two processes lock two files
        waited = _wait(fh, path, model, say)
        try:
            fh.seek(0)
            left = fh.read()  # a holder empties the file when it lets go: words left mean it died holding it
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(holder_line()))
            fh.flush()
            if left.strip():
                _recover(left, model, say)
            if waited:
                say(f"{model}: lease taken after waiting {waited:.0f} s")
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _recover(left: str, model: str, say: Callable[[str], None]) -> None:
    """The lease's last holder died holding it (killed, or its machine lost power): say so, and end its Prefect
    flow run Crashed, which nothing else would (a flow run outside a deployment has no process watching it).
    Its MLflow runs are closed by the round that retrains its snapshot."""
    try:
        who = json.loads(left)
    except ValueError:
        who = {}
    say(f"{model}: the last holder of its lease died holding it ({_describe_holder(who)}); taking over")
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.states import Crashed

    if not who.get("flow_run_id") or who["flow_run_id"] == str(flow_run.id or ""):
        return  # no flow run, or this one (a retry of the killed run keeps its id)

    message = f"its process (pid {who.get('pid')} on {who.get('host')}) died mid-round; a later retrain took over"
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(who["flow_run_id"])
            if not run.state.is_final():
                client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    except Exception as exc:  # another Prefect server (a temporary one, gone with its process): nothing to end
        log.info("could not end flow run %s of the dead holder: %s", who["flow_run_id"], exc)


def _wait(fh, path: Path, model: str, say: Callable[[str], None]) -> float:
    """Lock FH, waiting as long as it takes (one line said when it must wait); return the seconds waited. The
    kernel wakes the waiter when the holder lets go or dies; a signal (Ctrl-C) still interrupts the wait."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 0.0
    except BlockingIOError:
        say(f"{model}: another retrain of this model holds its lease ({_describe(path)}); waiting for it")
    start = time.monotonic()
    fcntl.flock(fh, fcntl.LOCK_EX)
    return time.monotonic() - start


def _describe(path: Path) -> str:
    try:
        who = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        who = {}
    return _describe_holder(who) if who else f"lock {path}"


def _describe_holder(who: dict) -> str:
    run = f"flow run {who['flow_run']}, " if who.get("flow_run") else ""
    return f"{run}pid {who.get('pid')} on {who.get('host')} since {who.get('since')}: {who.get('command', '')}"


@contextmanager
def _prefect_slot(model: str, say: Callable[[str], None]) -> Iterator[None]:
    """MODEL's slot of its Prefect limit in a deployment's run (nothing otherwise)."""
    from prefect.runtime import deployment

    if deployment.id is None:
        yield
        return
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectNotFound

    name = limit_name(model)
    with get_client(sync_client=True) as client:
        try:
            busy = client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:  # created once with one slot; a limit an operator resized is theirs
            client.upsert_global_concurrency_limit_by_name(name, 1)
            busy = 0
    if busy:
        say(
            f"{model}: another retrain holds its Prefect limit {name!r} (on another machine, or killed less than "
            f"{LEASE_SECONDS} s ago); waiting for it"
        )
    # A renewal that fails (the server restarting) must not cancel a round mid-write: the file lock and the
    # deployment's one-at-a-time limit still keep writers apart meanwhile.
    with concurrency(name, occupy=1, strict=True, lease_duration=LEASE_SECONDS, raise_on_lease_renewal_failure=False):
        yield
