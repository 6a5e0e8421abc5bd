"""The servers rewarm starts as child processes (Prefect, MLflow, a worker): a free port, a start in a
process group of its own, waiting for /health, and stopping the whole group."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

log = logging.getLogger("rewarm.processes")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on HOST that nothing listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts connections on HOST:PORT."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the server at URL (MLflow's root, Prefect's API URL) answers URL/health with 200."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def spawn(
    command: list[str], logfile: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start COMMAND in a session (and process group) of its own, its output appended to LOGFILE.

    A group of its own: a terminal's Ctrl-C does not reach it, and stop_group() stops its children too.
    """
    with logfile.open("ab") as out:  # the child keeps its own descriptor of the file
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def wait_healthy(
    url: str, process: subprocess.Popen, logfile: Path, timeout: float = 120.0, interval: float = 0.5
) -> None:
    """Return once PROCESS answers URL/health, polling every INTERVAL seconds.

    Raises RuntimeError (with the tail of LOGFILE) when PROCESS exits first, TimeoutError after TIMEOUT
    seconds; the process is left running either way, for the caller to stop.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{process.args[:4]} exited ({process.returncode}); see {logfile}:\n{tail}")
        if healthy(url) and process.poll() is None:  # ours answering, not another server that took the port
            return
        time.sleep(interval)
    raise TimeoutError(f"{url.rstrip('/')}/health did not answer within {timeout:.0f} s; see {logfile}")


def stop_group(process: subprocess.Popen, what: str = "", grace: float = 15.0, reap: float | None = None) -> None:
    """Stop PROCESS's whole group: SIGTERM, then SIGKILL what is left after GRACE seconds.

    GRACE 0 sends SIGKILL at once (an outage, not a shutdown). REAP bounds the wait for the killed
    process (None: wait as long as it takes). WHAT, when given, names the process in the log.
    """
    if what and process.poll() is None:
        log.info("stopping the %s (pid %d)", what, process.pid)
    if grace > 0 and _signal_group(process, signal.SIGTERM) and _exits_within(process, grace):
        return
    _signal_group(process, signal.SIGKILL)
    process.wait(reap)


def _signal_group(process: subprocess.Popen, signum: int) -> bool:
    """Send SIGNUM to PROCESS's group; False when the group is gone."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return False
    return True


def _exits_within(process: subprocess.Popen, seconds: float) -> bool:
    """Wait up to SECONDS for PROCESS to exit; False when it is still running."""
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True
