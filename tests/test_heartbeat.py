"""Prefect's flow-run heartbeat is off only where no Prefect server outlives the process (rewarm/serve.py)."""

from __future__ import annotations

import threading

from prefect import flow
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from rewarm.serve import flows_in_process


@flow
def _threads_during_a_flow() -> list[str]:
    return [t.name for t in threading.enumerate()]


def test_no_heartbeat_without_a_server_and_the_default_with_one() -> None:
    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None  # Prefect's own default: a heartbeat every few minutes
    with temporary_settings({PREFECT_API_URL: None}):
        with flows_in_process():
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == default  # restored afterwards
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}), flows_in_process():
        assert get_current_settings().flows.heartbeat_frequency == default  # a real server keeps its heartbeat


def _heartbeat_threads(names: list[str]) -> list[str]:
    # Prefect starts its heartbeat as a plain threading.Thread running a context's run(): "Thread-N (run)"
    return [n for n in names if n.startswith("Thread-") and n.endswith("(run)")]


def test_a_flow_run_in_process_starts_no_heartbeat_thread() -> None:
    assert len(_heartbeat_threads(_threads_during_a_flow())) == 1  # Prefect's default: one beside the flow
    with temporary_settings({PREFECT_API_URL: None}), flows_in_process():
        assert _heartbeat_threads(_threads_during_a_flow()) == []
