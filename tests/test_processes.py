"""rewarm.processes on real child processes: a group stopped gently or at once, a server that never answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import wait_for

from rewarm.processes import free_port, port_in_use, spawn, stop_group, wait_healthy

# A parent that says how it was stopped, with a child in its group that ignores SIGTERM.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring", flush=True)
time.sleep(600)
"""
SCRIPT = f"""
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}])
print(child.pid, flush=True)
signal.signal(signal.SIGTERM, lambda *_: (print("terminated", flush=True), sys.exit(0)))
time.sleep(600)
"""


def started(tmp_path: Path) -> tuple[subprocess.Popen, Path, int]:
    """The script in a group of its own, once its child ignores SIGTERM; its log and its child's pid."""
    log = tmp_path / "group.log"
    process = spawn([sys.executable, "-c", SCRIPT], log)

    def ready() -> bool:  # both lines written: under load the child's can come before its parent's
        text = log.read_text()
        return ("ignoring" in text and any(w.isdigit() for w in text.split())) or process.poll() is not None

    wait_for(ready, "the child to start", 30, 0.02)
    assert process.poll() is None, log.read_text()
    [child] = [int(line) for line in log.read_text().split() if line.isdigit()]
    return process, log, child


def alive(pid: int) -> bool:
    """True while PID runs (a zombie no reaper has collected counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_free_port_can_be_bound_and_is_not_in_use() -> None:
    port = free_port()
    assert not port_in_use("127.0.0.1", port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert port_in_use("127.0.0.1", port)


def test_grace_sends_sigterm_first_and_sigkill_stops_the_rest_of_the_group(tmp_path: Path) -> None:
    process, log, child = started(tmp_path)
    stop_group(process, grace=5)
    assert "terminated" in log.read_text()  # the parent was asked to stop, and did
    assert alive(child)  # the child ignored it; the parent exited in time, so no SIGKILL followed
    stop_group(process, grace=0, reap=30)  # the group outlives its leader: SIGKILL still reaches the child
    wait_for(lambda: not alive(child), "the child to die", 10, 0.05)


def test_grace_zero_kills_the_whole_group_at_once(tmp_path: Path) -> None:
    process, log, child = started(tmp_path)
    stop_group(process, grace=0, reap=30)
    assert process.returncode == -signal.SIGKILL and "terminated" not in log.read_text()
    wait_for(lambda: not alive(child), "the child to die", 10, 0.05)


def test_a_server_that_exits_before_answering_is_named_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = spawn([sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"], log)
    with pytest.raises(RuntimeError, match=r"exited \(3\).*\n.*cannot bind"):
        wait_healthy(f"http://127.0.0.1:{free_port()}", process, log, timeout=30, interval=0.05)


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    process = spawn([sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "server.log")
    try:
        with pytest.raises(TimeoutError, match="/health did not answer within 1 s"):
            wait_healthy(f"http://127.0.0.1:{free_port()}", process, tmp_path / "server.log", timeout=1, interval=0.1)
    finally:
        stop_group(process, grace=0, reap=30)
