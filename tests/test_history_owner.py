"""One snapshot history per model: the first model to keep a snapshot there claims it (an owner record inside the
history, rewarm/locations.py), and any other model is refused it however the location is spelled, before it
writes anything there."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flight_snapshots import land, small_month, write_config
from mlflow import MlflowClient
from pydantic import ValidationError

from rewarm import locations, quarantine
from rewarm.cli import main
from rewarm.config import DataSection, check_histories, load_settings
from rewarm.errors import ConfigError, RewarmError, SnapshotRejected
from rewarm.flows.retrain import retrain
from rewarm.snapshots import admit, inspect, keep, list_history

SPEC = DataSection(target="late", task="binary", numeric=("dist", "temp"), categorical=("carrier",), min_rows=10)
REFUSAL = "give each model its own data.history"


def snapshot(folder: Path, name: str, seed: int) -> str:
    """A small valid snapshot file in FOLDER; its rows differ with SEED."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "dist": rng.uniform(100, 2000, 40).round(1),
            "temp": rng.normal(50, 10, 40).round(2),
            "carrier": rng.choice(["AA", "UA", "DL"], 40),
            "late": rng.integers(0, 2, 40),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / name, index=False)
    return str(folder / name)


def files(folder: Path) -> dict[str, bytes]:
    """Every file in FOLDER with its content: what a refused model must leave as it was."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_refused(error: BaseException, location: str, owner: str, model: str) -> None:
    """The refusal is a configuration error naming the location, its owner, the refused model and the fix."""
    assert isinstance(error, RewarmError) and not isinstance(error, SnapshotRejected)
    message = str(error)
    assert message.startswith(location) and f"belongs to model {owner!r}" in message
    assert f"model {model!r} may not keep its snapshots there" in message and message.endswith(REFUSAL)


# ---- one history, two spellings --------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["{h}/", "{t}/elsewhere/../history"], ids=["trailing-slash", "dot-dot"])
def test_a_second_model_is_refused_the_history_spelled_another_way(tmp_path: Path, spelling: str) -> None:
    history = tmp_path / "history"
    admit(snapshot(tmp_path / "a", "jan.parquet", 1), SPEC, f"file://{history}", model="a")
    before = files(history)
    assert locations.OWNER_FILE in before and len(list_history(history)) == 1

    (tmp_path / "elsewhere").mkdir()  # a path through a folder that is not there names nothing
    other = spelling.format(h=history, t=tmp_path)
    with pytest.raises(RewarmError) as refused:
        inspect(snapshot(tmp_path / "b", "jan.parquet", 2), SPEC, other, model="b")  # a round's first look
    assert_refused(refused.value, other, "a", "b")
    with pytest.raises(RewarmError, match=REFUSAL):
        admit(snapshot(tmp_path / "b", "jan.parquet", 2), SPEC, other, model="b")
    assert files(history) == before  # nothing of b's was written

    info, _ = admit(snapshot(tmp_path / "a", "feb.parquet", 3), SPEC, str(history), model="a")  # a goes on
    assert info.sequence == 2 and [i.name for i in list_history(history)] == ["jan.parquet", "feb.parquet"]


def test_a_claim_made_after_inspecting_stops_the_keep(tmp_path: Path) -> None:
    """b inspects a history nobody owns yet, a claims it meanwhile: b's keep is refused before it writes."""
    history = tmp_path / "history"
    late = inspect(snapshot(tmp_path / "b", "jan.parquet", 2), SPEC, history, model="b")
    admit(snapshot(tmp_path / "a", "jan.parquet", 1), SPEC, history, model="a")
    before = files(history)
    with pytest.raises(RewarmError) as refused:
        keep(late)
    assert_refused(refused.value, str(history), "a", "b")
    assert files(history) == before


def test_a_history_from_before_owner_records_is_claimed_by_its_first_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "history"
    for seed, name in enumerate(["jan.parquet", "feb.parquet"], start=1):  # an older rewarm: no model, no record
        admit(snapshot(tmp_path / "old", name, seed), SPEC, history)
    assert locations.owner(str(history)) is None and len(list_history(history)) == 2

    admit(snapshot(tmp_path / "old", "mar.parquet", 3), SPEC, history, model="legacy")
    assert locations.owner(str(history)).model == "legacy"
    assert [i.name for i in list_history(history)] == ["jan.parquet", "feb.parquet", "mar.parquet"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # the owner record is no snapshot's
    with pytest.raises(RewarmError, match=REFUSAL):
        inspect(snapshot(tmp_path / "new", "apr.parquet", 4), SPEC, history, model="newcomer")


def test_the_owner_record_is_found_by_a_fresh_process(tmp_path: Path) -> None:
    history = tmp_path / "history"
    admit(snapshot(tmp_path / "a", "jan.parquet", 1), SPEC, history, model="a")
    script = (
        "import sys; from rewarm import locations\n"
        "print(locations.owner(sys.argv[1]).model)\n"
        "locations.claim(sys.argv[1], 'b', 'data.history')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, f"file://{history}/"], capture_output=True, text=True)
    assert done.stdout == "a\n" and done.returncode == 1
    assert "belongs to model 'a'" in done.stderr and REFUSAL in done.stderr
    assert locations.owner(str(history)).model == "a"


def test_an_unreadable_owner_record_says_how_to_mend_it(tmp_path: Path) -> None:
    (tmp_path / locations.OWNER_FILE).write_text("{torn")
    with pytest.raises(RewarmError, match='write {"model": "NAME"} into it'):
        locations.check_owner(str(tmp_path), "a", "data.history")


# ---- claims at once ---------------------------------------------------------------------------------------


def claim_at_once(location: str, models: list[str]) -> list[str]:
    """Claim LOCATION for each of MODELS from a thread of its own, all released together; the models let in."""
    start, let_in = threading.Barrier(len(models)), []

    def claim(model: str) -> None:
        start.wait()
        try:
            locations.claim(location, model, "data.history")
            let_in.append(model)
        except RewarmError:
            pass  # refused: the others' record came first

    threads = [threading.Thread(target=claim, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return let_in


def test_threads_claiming_at_once_leave_exactly_one_owner(tmp_path: Path) -> None:
    for attempt in range(20):
        folder = tmp_path / f"history-{attempt}"
        let_in = claim_at_once(str(folder), [f"m{i}" for i in range(6)])
        assert len(let_in) == 1 and locations.owner(str(folder)).model == let_in[0]
        assert [p.name for p in folder.iterdir()] == [locations.OWNER_FILE]  # no temporary file left behind


CLAIMANT = """
import os, sys, time
from rewarm import locations
from rewarm.errors import RewarmError
go, location, model = sys.argv[1:]
while not os.path.exists(go):
    time.sleep(0.001)
try:
    locations.claim(location, model, "data.history")
    print("let in")
except RewarmError:
    print("refused")
"""


def test_processes_claiming_at_once_leave_exactly_one_owner(tmp_path: Path) -> None:
    go, history = tmp_path / "go", tmp_path / "history"
    models = [f"m{i}" for i in range(4)]
    claimants = [
        subprocess.Popen([sys.executable, "-c", CLAIMANT, str(go), str(history), m], stdout=subprocess.PIPE, text=True)
        for m in models
    ]
    go.touch()  # every process, started, claims as soon as it sees this
    said = [c.communicate(timeout=120)[0].strip() for c in claimants]
    assert sorted(said) == ["let in"] + ["refused"] * 3
    assert locations.owner(str(history)).model == models[said.index("let in")]


def test_an_fsspec_history_is_claimed_and_refused_to_another_model() -> None:
    location = f"memory://history-owner-test/{uuid.uuid4().hex}"
    locations.claim(location, "a", "data.history")
    locations.claim(f"{location}/", "a", "data.history")  # its owner again: nothing changes
    with pytest.raises(RewarmError) as refused:
        locations.claim(location, "b", "data.history")
    assert_refused(refused.value, location, "a", "b")


def test_threads_claiming_an_s3_history_at_once_leave_exactly_one_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    """On S3 the claim is a conditional PUT (If-None-Match), here against moto's S3 server on loopback."""
    server = pytest.importorskip("moto.server").ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()  # an instance cached by another test talks to that test's server
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for key, value in {**env, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            monkeypatch.setenv(key, value)
        pytest.importorskip("boto3").client("s3").create_bucket(Bucket="rewarm-owner-tests")
        location = "s3://rewarm-owner-tests/snapshots/flights"
        let_in = claim_at_once(location, [f"m{i}" for i in range(6)])
        assert len(let_in) == 1 and locations.owner(location).model == let_in[0]
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()  # nor may a later test reach this one's


# ---- the [data] spec and several --config ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "landing"),
    [
        ("file:///x/landing", "/x/landing"),
        ("/x/landing/", "/x/landing"),
        ("/x/elsewhere/../landing", "/x/landing"),
        ("file:///x/quarantine", "/x/landing"),  # the default quarantine, next to the landing folder
    ],
    ids=["file-url", "trailing-slash", "dot-dot", "quarantine"],
)
def test_the_data_spec_refuses_a_history_that_is_the_landing_or_quarantine(history: str, landing: str) -> None:
    with pytest.raises(ValidationError, match="data.history must be a folder of its own"):
        DataSection(target="late", task="binary", numeric=("dist",), landing=landing, history=history)


def test_the_data_spec_refuses_a_quarantine_that_is_the_landing_spelled_another_way() -> None:
    with pytest.raises(ValidationError, match="data.quarantine must not be data.landing"):
        DataSection(
            target="late", task="binary", numeric=("dist",), landing="/x/landing", quarantine="file:///x/a/../landing/"
        )


def config(folder: Path, name: str, history: str | None = None) -> Path:
    """The tiny flights config of model NAME in FOLDER, keeping its snapshots in HISTORY (None: the default)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder, name=name)
    if history is not None:
        path.write_text(path.read_text().replace("[data]\n", f'[data]\nhistory = "{history}"\n'))
    return path


def test_several_configs_sharing_a_history_are_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    a = config(tmp_path / "a", "model-a", f"file://{shared}")
    b = config(tmp_path / "b", "model-b", f"{shared}/")
    assert main(["deploy", "--pool", "rewarm", "--config", str(a), "--config", str(b)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"rewarm: error: {a} and {b}: models 'model-a' and 'model-b' would both keep")
    assert str(shared) in line and line.endswith(REFUSAL)


def test_a_history_that_is_another_models_default_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a, c = config(tmp_path / "a", "model-a"), config(tmp_path / "c", "model-c")
    b = config(tmp_path / "b", "model-b", str(home / "snapshots" / "model-a"))
    check_histories([load_settings(a), load_settings(c)], home)  # distinct defaults: fine
    with pytest.raises(ConfigError, match=f"{a} and {b}: models 'model-a' and 'model-b'"):
        check_histories([load_settings(a), load_settings(c), load_settings(b)], home)


# ---- a real retrain --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_retrain_of_another_model_on_a_claimed_history_fails_before_training(
    tmp_path: Path, home: Path, flights: pd.DataFrame
) -> None:
    shared = tmp_path / "shared"
    a = config(tmp_path / "a", "owner-a", f"file://{shared}")
    b = config(tmp_path / "b", "owner-b", f"{shared}/")
    january = small_month(flights, 1, rows=300).to_parquet()
    (tmp_path / "a" / "landing").mkdir()
    assert retrain(str(land(tmp_path / "a" / "landing" / "jan.parquet", january)), config=str(a)).version == 1
    before = files(shared)

    (tmp_path / "b" / "landing").mkdir()
    landed = land(tmp_path / "b" / "landing" / "jan.parquet", january)
    with pytest.raises(RewarmError) as refused:
        retrain(str(landed), config=str(b))
    assert_refused(refused.value, f"{shared}/", "owner-a", "owner-b")
    assert files(shared) == before and [i.name for i in list_history(shared)] == ["jan.parquet"]
    assert landed.read_bytes() == january  # not quarantined: the snapshot is not to blame
    assert quarantine.records(str(tmp_path / "b" / "quarantine")) == []
    assert not MlflowClient().search_model_versions("name = 'owner-b'")
