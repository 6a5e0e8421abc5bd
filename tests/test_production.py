"""The production profile, for real: PostgreSQL (Debian's), an MLflow tracking server on it with served
artifacts, a Prefect server on it and a `process` worker, all on loopback (rewarm.stack).
Two different models are deployed to the pool and retrained at the same time by the worker; rewarm's
code is the same as on the embedded profile, only MLFLOW_TRACKING_URI and PREFECT_API_URL differ."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient

from rewarm import ledger, registry
from rewarm.errors import RewarmError
from rewarm.landing import fingerprint
from rewarm.stack import Stack, postgres_bin, stack
from rewarm.store import open_store, resolve_store
from rewarm.tasks.gpu import GPU_LIMIT

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REGRESSION = """
[model]
name = "{name}"
hidden = [16]
embedding_dim = 4

[data]
landing = "{landing}"
target = "temp"
task = "regression"
numeric = ["dewp", "humid", "wind_speed", "pressure"]
categorical = ["origin"]
extra_columns = "ignore"

[train]
max_epochs = 6
patience = 2
batch_size = 256

[gate]
bootstrap = 200
"""


ARTIFACT_BUCKET = "rewarm-artifacts"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible store for the tracking server's artifacts: moto's S3 server on loopback (no S3 can be
    reached from here), where separate machines would use S3 or MinIO."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Stack]:
    try:
        postgres_bin()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))  # .ci/run installs it; a developer machine may not have it
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, **_credentials()).create_bucket(Bucket=ARTIFACT_BUCKET)
    # PostgreSQL runs as the postgres user, which cannot enter pytest's private temporary folders.
    data = Path(tempfile.mkdtemp(prefix="rewarm-pg-"))
    try:
        with pytest.MonkeyPatch.context() as env:  # the stack's processes inherit what reaches the bucket
            for key, value in {**S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}.items():
                env.setenv(key, value)
            folder = tmp_path_factory.mktemp("stack")
            with stack(folder, pool="rewarm-it", data=data, artifacts=f"s3://{ARTIFACT_BUCKET}/mlflow") as running:
                yield running
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }


def wait_final(run_ids: list, timeout: float = 300) -> list:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = [client.read_flow_run(i) for i in run_ids]
            if all(r.state.is_final() for r in runs):
                return runs
            time.sleep(1)
    raise AssertionError(f"flow runs not finished after {timeout:.0f} s: {[r.state for r in runs]}")


def test_two_models_retrain_concurrently_through_a_worker(
    production: Stack, s3_endpoint: str, tmp_path: Path, flights: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in production.env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "late").mkdir()
    (tmp_path / "temp").mkdir()
    late = write_config(tmp_path / "late", name="prod-late")
    temp = tmp_path / "temp" / "rewarm.toml"
    temp.write_text(REGRESSION.format(name="prod-temp", landing=tmp_path / "temp" / "landing"))
    snapshots = {}
    for name, config in (("prod-late", late), ("prod-temp", temp)):
        landing = config.parent / "landing"
        landing.mkdir()
        snapshots[name] = landing / "flights-2013-01.parquet"
        small_month(flights, 1, rows=1500).to_parquet(snapshots[name], index=False)

    env = {**os.environ, **production.env}
    deployed = subprocess.run(
        [sys.executable, "-m", "rewarm.cli", "deploy", "--pool", production.pool, "--config", str(late)]
        + ["--config", str(temp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "retrain/prod-late, retrain/prod-temp registered" in deployed.stdout

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: production.prefect_api}):  # settings are read once per process
        started = [
            run_deployment(f"retrain/{name}", parameters={"snapshot": str(path)}, timeout=0).id
            for name, path in snapshots.items()
        ]
        runs = wait_final(started)
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name(GPU_LIMIT).limit == 1  # the strict GPU limit
    assert all(r.state.is_completed() for r in runs), [(r.name, r.state) for r in runs]

    # Both models in the one MLflow store, each registry consistent. (Point this process's MLflow at the
    # stack: an earlier test in the session set another store as MLflow's current one.)
    open_store(resolve_store())
    client = MlflowClient()
    assert {"prod-late", "prod-temp"} <= {m.name for m in client.search_registered_models()}
    spans = []
    for name, path in snapshots.items():
        champion = registry.current_version(client, name, registry.CHAMPION)
        tags = client.get_model_version(name, str(champion)).tags
        assert champion == 1 and tags["rewarm.complete"] == "true"
        assert tags[registry.APPLIED_TAG] != registry.NOT_APPLIED
        assert ledger.processed(client, name) == {fingerprint(str(path)): 1}
        [parent] = client.search_runs(
            [client.get_experiment_by_name(name).experiment_id], "tags.`rewarm.kind` = 'retrain'"
        )
        assert parent.info.status == "FINISHED"
        spans.append((parent.info.start_time, parent.info.end_time))
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end  # the worker ran the two retrains at the same time

    # The served artifacts: the models' files are in the S3 bucket, not on any disk of the stack ...
    import boto3

    bucket = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_credentials())
    pages = bucket.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACT_BUCKET, Prefix="mlflow/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert any(k.endswith("/MLmodel") for k in keys) and not (production.folder / "artifacts").exists()
    for key in [*S3_KEYS, "MLFLOW_S3_ENDPOINT_URL"]:  # a client needs no S3 access: the server proxies it
        monkeypatch.delenv(key, raising=False)
    # ... and the regression champion loads through the tracking server and predicts.
    model = mlflow.pyfunc.load_model("models:/prod-temp@champion")
    rows = small_month(flights, 2, rows=50)
    predictions = model.predict(rows)
    assert len(predictions) == 50 and predictions["prediction"].between(-40, 120).all()


def test_rewarm_stack_starts_the_profile_and_a_sigterm_stops_all_of_it() -> None:
    """The documented way to try the profile: `rewarm stack --folder DIR` prints what to export, answers on
    loopback, and on SIGTERM (as from a process supervisor) stops every server it started."""
    try:
        postgres_bin()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    folder = Path(tempfile.mkdtemp(prefix="rewarm-stack-cli-"))
    folder.chmod(0o755)  # the postgres user must pass through to FOLDER/stack/postgres
    command = [sys.executable, "-m", "rewarm.cli", "stack", "--folder", str(folder / "stack"), "--pool", "cli-pool"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("logs: "):
                break
        exports = dict(line.split("export ", 1)[1].strip().split("=", 1) for line in lines if "export " in line)
        assert set(exports) == {"MLFLOW_TRACKING_URI", "PREFECT_API_URL"}, "".join(lines)
        for url in (f"{exports['MLFLOW_TRACKING_URI']}/health", f"{exports['PREFECT_API_URL']}/health"):
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert answer.status == 200 and url.startswith("http://127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(90) == 0
        assert "stack stopped" in process.stdout.read()
        for url in exports.values():
            with pytest.raises(OSError):
                urllib.request.urlopen(url, timeout=5)
        assert not (folder / "stack" / "postgres" / "postmaster.pid").exists()  # PostgreSQL stopped too
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to the postgres user")
def test_a_folder_the_postgres_user_cannot_reach_is_named_with_the_fix(tmp_path: Path) -> None:
    from rewarm.stack import postgres

    try:
        postgres_bin()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    expected = r"cannot enter .*: choose a folder outside private ones"
    with pytest.raises(RewarmError, match=expected) as info, postgres(private / "postgres", 5999):
        pass
    assert "chmod o+x" in str(info.value) and not (private / "postgres").exists()  # refused before touching it
