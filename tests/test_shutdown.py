"""`rewarm serve`'s shutdown is bounded: whatever hangs after Ctrl-C, the process ends, says what hung, and stops
the Prefect server it started (tests/test_service.py checks the ordinary shutdown end to end)."""

from __future__ import annotations

import subprocess
import sys

HUNG = """
import subprocess, sys, time
from rewarm import serve
server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(server.pid, flush=True)
serve._STARTED.append(server)  # as prefect_server() records a server it started
serve._bound_shutdown(1.0)
time.sleep(600)  # a shutdown step that never returns
"""


def test_a_hung_shutdown_ends_within_its_bound_naming_what_hung_and_stops_the_server() -> None:
    done = subprocess.run([sys.executable, "-c", HUNG], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "shutdown took longer than 1 s" in done.stderr
    assert 'File "<string>", line 8' in done.stderr  # the stuck frame (the sleep) is in the dump
    server = int(done.stdout.split()[0])
    assert subprocess.run(["ps", "-o", "stat=", "-p", str(server)], capture_output=True, text=True).stdout.strip() in (
        "",
        "Z",
    ), "the server it started is still running"
