"""Waiting in tests: poll until a condition holds; start a real server and wait until it answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rewarm.processes import spawn, stop_group, wait_healthy


def wait_for(check: Callable[[], object], what: str, timeout: float = 180.0, interval: float = 0.5) -> object:
    """Call CHECK every INTERVAL seconds until it returns something truthy, and return that; fail naming
    WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_server(
    command: list[str],
    logfile: Path,
    url: str,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    interval: float = 0.5,
) -> subprocess.Popen:
    """Start a server in a process group of its own, output in LOGFILE, and return once URL/health answers.

    A server that exits or stays silent for TIMEOUT seconds is killed, and the error (with the log's tail
    when it exited) fails the test.
    """
    process = spawn(command, logfile, env)
    try:
        wait_healthy(url, process, logfile, timeout, interval)
    except (RuntimeError, TimeoutError):
        stop_group(process, grace=0, reap=30)
        raise
    return process
