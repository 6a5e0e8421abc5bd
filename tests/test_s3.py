"""rewarm on an S3-compatible object store, as workers on several machines use it: the landing location, the
quarantine and the snapshot history (data.history) as s3:// URLs. The store is moto's S3 server on loopback
(no S3 can be reached from here); the code path is the real one, s3fs and botocore over HTTP."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient

from rewarm import quarantine
from rewarm.config import DataSection
from rewarm.flows.retrain import retrain
from rewarm.snapshots import admit, inspect, list_history, load

moto_server = pytest.importorskip("moto.server")
fsspec = pytest.importorskip("fsspec")
s3fs = pytest.importorskip("s3fs")

BUCKET = "rewarm-tests"
SPEC = DataSection(
    target="late", task="binary", numeric=("distance", "temp"), categorical=("carrier", "dest"), extra_columns="ignore"
)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3 endpoint on a free loopback port with one bucket; credentials are moto's dummies."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**env, "AWS_ENDPOINT_URL": url}.items():
            patch.setenv(key, value)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        # s3fs caches one filesystem per set of arguments: one made by another test talks to that test's server.
        s3fs.S3FileSystem.clear_instance_cache()
        yield url
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix in the bucket for one test (the endpoint variables again: _clean_env is per test)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_the_history_on_s3_keeps_lists_and_loads(s3: str, flights: pd.DataFrame) -> None:
    fs = fsspec.filesystem("s3")
    months = {m: small_month(flights, m, rows=300) for m in (1, 2)}
    for m, frame in months.items():
        fs.pipe_file(f"{s3}/landing/2013-{m:02d}.parquet", _parquet(frame))
    history = f"{s3}/history"

    assert list_history(history) == []
    jan, df = admit(f"{s3}/landing/2013-01.parquet", SPEC, history)
    half = inspect(f"{s3}/landing/2013-02.parquet", SPEC, history)
    fs.pipe_file(half.info.stored, b"torn")  # a worker killed after the data, before its record
    assert list_history(history) == [jan]
    feb, _ = admit(f"{s3}/landing/2013-02.parquet", SPEC, history)

    assert list_history(history) == [jan, feb] and feb.stored == half.info.stored
    assert jan.stored == f"{history}/00001-{jan.sha256[:12]}-2013-01.parquet"
    pd.testing.assert_frame_equal(load(jan, SPEC), df)
    assert json.loads(fs.cat_file(f"{feb.stored}.json"))["sha256"] == feb.sha256


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server", "home")
def test_landing_history_and_quarantine_on_s3(s3: str, tmp_path, flights: pd.DataFrame) -> None:
    """The scheduled run with everything on S3: two good months retrained in order, both kept in the S3
    history (the second round trains on both), a bad file moved to the S3 quarantine with its reason."""
    fs = fsspec.filesystem("s3")
    config = write_config(tmp_path, name="s3-test")
    text = config.read_text().replace(f'landing = "{tmp_path / "landing"}"', f'landing = "{s3}/landing"')
    config.write_text(
        text.replace("[data]\n", f'[data]\nhistory = "{s3}/history"\n') + "\n[service]\nsettle_seconds = 0\n"
    )
    fs.pipe_file(f"{s3}/landing/flights-2013-01.parquet", _parquet(small_month(flights, 1)))
    fs.pipe_file(f"{s3}/landing/flights-2013-02.parquet", _parquet(small_month(flights, 2)))
    fs.pipe_file(f"{s3}/landing/flights-2013-03.csv", b"late,distance\n1,200\n")  # the spec's columns missing

    summary = retrain(config=str(config))

    done = [(p.snapshot.rsplit("/", 1)[-1], p.version) for p in summary.processed]
    assert done[:2] == [("flights-2013-01.parquet", 1), ("flights-2013-02.parquet", 2)]
    assert [i.name for i in list_history(f"{s3}/history")] == ["flights-2013-01.parquet", "flights-2013-02.parquet"]
    [held] = quarantine.records(f"{s3}/quarantine")  # next to the landing prefix, like a local folder's
    assert held.name == "flights-2013-03.csv" and held.kind == "missing_columns"
    assert fs.cat_file(f"{s3}/quarantine/flights-2013-03.csv") == b"late,distance\n1,200\n"
    assert not fs.exists(f"{s3}/landing/flights-2013-03.csv")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("s3-test").experiment_id
    runs = client.search_runs([experiment], "tags.`rewarm.kind` = 'retrain'", order_by=["attributes.start_time ASC"])
    rows = [int(r.data.tags["rewarm.rows_train"]) for r in runs]
    assert rows[1] > 1.5 * rows[0]  # January's rows and February's, read back from S3
