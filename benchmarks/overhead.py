"""Orchestration and tracking overhead: a retrain flow's wall time against the training inside it.

Replays a few demo months through the real retrain flow in a fresh home, once in Prefect's ephemeral mode and
once against a running Prefect server (started here on a free 127.0.0.1 port). Overhead is everything that
is not training: reading and splitting data, scoring, the bootstrap, MLflow logging and registration, the
Prefect engine. The first retrain of each mode (the bootstrap, and the ephemeral server's start) is reported
apart from the steady state.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from rewarm.config import Settings
from rewarm.processes import free_port

from .run import Options, streams


def _replay(settings: Settings, files: list[Path], home: Path) -> list[dict]:
    """Run the retrain flow on FILES in order against a fresh HOME; wall and training seconds per retrain."""
    from rewarm.flows.retrain import retrain
    from rewarm.serve import flows_in_process

    os.environ["REWARM_HOME"] = str(home)
    out = []
    for path in files:
        started = time.perf_counter()
        with flows_in_process():  # as `rewarm retrain` runs it
            summary = retrain(snapshot=str(path), settings=settings, in_order=False)
        wall = time.perf_counter() - started
        trained = sum(s["train_seconds"] for s in summary.strategies.values())
        out.append({"snapshot": path.name, "wall": wall, "train": trained, "overhead": 1 - trained / wall})
    return out


def run(settings: Settings, folder: Path, quick: bool = False) -> str:
    """Measure both modes; write overhead.json and return a summary line per mode."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rewarm.serve import prefect_server

    months = 3 if quick else 5
    files = []
    landing = folder / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for name, frame in streams(settings, Options(months=months, small_rows=None))["monthly"]:
        files.append(landing / f"flights-{name}.parquet")
        frame.to_parquet(files[-1], index=False)
    saved = os.environ.get("REWARM_HOME")
    results = {"ephemeral": _replay(settings, files, folder / "home-ephemeral")}
    with prefect_server(folder / "prefect", free_port()) as url, temporary_settings({PREFECT_API_URL: url}):
        results["server"] = _replay(settings, files, folder / "home-server")
        APILogWorker.drain_all(timeout=5)  # send the runs' logs while the server is still up
    if saved is None:
        os.environ.pop("REWARM_HOME", None)
    else:
        os.environ["REWARM_HOME"] = saved
    (folder / "overhead.json").write_text(json.dumps(results, indent=1))
    lines = []
    for mode, rows in results.items():
        steady = rows[1:]
        lines.append(
            f"{mode}: first retrain {rows[0]['wall']:.1f} s wall ({rows[0]['train']:.1f} s training); later "
            f"{len(steady)}: median wall {statistics.median(r['wall'] for r in steady):.1f} s, training "
            f"{statistics.median(r['train'] for r in steady):.1f} s, overhead median "
            f"{statistics.median(r['overhead'] for r in steady):.0%} (each: "
            + ", ".join(f"{r['overhead']:.0%}" for r in steady)
            + ")"
        )
    return "\n".join(lines) + f"\n(raw: {folder / 'overhead.json'})"
