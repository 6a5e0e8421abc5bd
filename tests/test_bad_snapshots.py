"""The bad input catalogue, end to end: each kind of broken snapshot that lands is rejected with a message
that names the file, the column and the row count, moved to the quarantine with its reason, and leaves the
champion, the registry and the snapshot history as they were; the next good month is then processed."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flight_snapshots import land, latest_retrain_run, logged_by, small_month, write_config
from mlflow import MlflowClient
from mlflow.entities import Run

from rewarm import quarantine, registry
from rewarm.cli import main
from rewarm.errors import SnapshotRejected
from rewarm.flows.retrain import retrain
from rewarm.ledger import SHA_TAG
from rewarm.snapshots import list_history

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

# The tiny spec's columns: with nothing else in the file, data.extra_columns = "reject" can be tested.
COLUMNS = ["distance", "sched_dep_hour", "temp", "visib", "carrier", "origin", "dest", "late"]
ROWS = 300  # every month: enough to split and score, small enough to keep each case to seconds
NEWCOMER_ROWS = 50  # rows of March sent to a destination the champion never saw


def month(flights: pd.DataFrame, number: int) -> pd.DataFrame:
    """ROWS distinct rows of one month, holding only the spec's columns."""
    rows = small_month(flights, number, ROWS + 100)[COLUMNS].drop_duplicates()
    return rows.head(ROWS).reset_index(drop=True)


def strict_config(folder: Path, name: str, multiclass: bool = False) -> Path:
    """The tiny config, rejecting extra columns, seeing pending files at once; MULTICLASS: predict 'origin'."""
    path = write_config(folder, name=name)
    text = path.read_text().replace('extra_columns = "ignore"', 'extra_columns = "reject"')
    if multiclass:  # origin's three airports are the classes; 'late' becomes a feature so no column is extra
        text = text.replace('target = "late"', 'target = "origin"').replace('"binary"', '"multiclass"')
        text = text.replace('"visib"]', '"visib", "late"]').replace('"carrier", "origin", "dest"', '"carrier", "dest"')
        # Declared, so that a label outside them is rejected (undeclared, a new label grows the output layer).
        text = text.replace('target = "origin"', 'target = "origin"\nclasses = ["EWR", "JFK", "LGA"]')
    path.write_text(text + "\n[service]\nsettle_seconds = 0\n")
    return path


def parquet(frame: pd.DataFrame) -> bytes:
    """FRAME as Parquet bytes."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def csv(frame: pd.DataFrame) -> bytes:
    """FRAME as CSV bytes."""
    return frame.to_csv(index=False).encode()


def changed(frame: pd.DataFrame, rows: int, column: str, value: object) -> pd.DataFrame:
    """A copy of FRAME with the first ROWS values of COLUMN set to VALUE."""
    out = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
    out.loc[: rows - 1, column] = value
    return out


def with_nan(frame: pd.DataFrame, rows: int, column: str) -> bytes:
    """Parquet whose float COLUMN holds ROWS real NaNs (pandas would write them as nulls)."""
    values = frame[column].to_numpy(np.float64).copy()
    values[:rows] = np.nan
    table = pa.Table.from_pandas(frame, preserve_index=False)
    index = table.schema.get_field_index(column)
    table = table.set_column(index, column, pa.array(values, type=pa.float64(), from_pandas=False))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Bad:
    """One entry of the catalogue: how to break February, and what the rejection must say."""

    id: str
    kind: str
    suffix: str  # of the file it lands as
    make: Callable[[pd.DataFrame], bytes]  # February's good rows -> the bad file's bytes
    says: tuple[str, ...]  # fragments of the message: the problem, column and row count
    multiclass: bool = False

    @property
    def file(self) -> str:
        """The name it lands under, one per case: all of a stream's cases share one quarantine."""
        return f"flights-2013-02-{self.id}{self.suffix}"


CATALOGUE = [
    Bad(
        "unreadable",
        "unreadable",
        ".parquet",
        lambda f: parquet(f)[: len(parquet(f)) // 2],  # cut short mid-write
        ("cannot be read as parquet", "land a complete, uncorrupted file"),
    ),
    Bad(
        "format",
        "format",
        ".json",
        lambda f: f.to_json(orient="records").encode(),
        ("unsupported format; land Parquet (.parquet) or CSV (.csv, or tab-separated .tsv) files",),
    ),
    Bad("empty_file", "empty", ".csv", lambda f: b"", ("the file is empty (0 bytes)",)),
    Bad("header_only", "empty", ".csv", lambda f: csv(f.head(0)), ("has a header but no rows",)),
    Bad(
        "missing_column",
        "missing_columns",
        ".parquet",
        lambda f: parquet(f.drop(columns="carrier")),
        ("missing column(s) ['carrier'] named in the [data] spec",),
    ),
    Bad(
        "renamed_column",
        "renamed_columns",
        ".parquet",
        lambda f: parquet(f.rename(columns={"carrier": "airline"})),
        ("column(s) ['carrier'] named in the [data] spec are missing and ['airline'] are not in it",),
    ),
    Bad(
        "extra_column",
        "extra_columns",
        ".parquet",
        lambda f: parquet(f.assign(tailnum="N14228")),
        ("1 column(s) not in the [data] spec: ['tailnum']",),
    ),
    Bad(
        "word_in_numeric",
        "dtype",
        ".csv",
        lambda f: csv(changed(f, 7, "distance", "far")),
        ("column 'distance' must hold numbers but 7 row(s) hold other values ('far')",),
    ),
    Bad(
        "null",
        "null",
        ".parquet",
        lambda f: parquet(changed(f, 5, "carrier", None)),
        ("column 'carrier' has 5 null (missing) value(s)",),
    ),
    Bad(
        "nan",
        "nan",
        ".parquet",
        lambda f: with_nan(f, 6, "temp"),
        ("column 'temp' has 6 NaN value(s)",),
    ),
    Bad(
        "infinite",
        "infinite",
        ".parquet",
        lambda f: parquet(changed(f, 3, "visib", np.inf)),
        ("column 'visib' has 3 infinite value(s)",),
    ),
    Bad(
        "third_binary_value",
        "outside_binary",
        ".parquet",
        lambda f: parquet(changed(f, 4, "late", 2)),
        ("target 'late' has 4 row(s) with value(s) ['2'] outside the binary model's two classes",),
    ),
    Bad(
        "outside_classes",
        "outside_classes",
        ".parquet",
        lambda f: parquet(changed(f, 5, "origin", "XYZ")),
        ("target 'origin' has 5 row(s) with label(s) ['XYZ'] outside data.classes ['EWR', 'JFK', 'LGA']",),
        multiclass=True,
    ),
    Bad(
        "duplicates",
        "repeated_file",
        ".parquet",
        lambda f: parquet(pd.concat([f, f], ignore_index=True)),  # landed twice over
        (f"the file repeats itself: its {2 * ROWS} rows are 2 copies of the first {ROWS} in order",),
    ),
    Bad(
        "too_small",
        "too_small",
        ".parquet",
        lambda f: parquet(f.head(40)),
        ("40 rows, fewer than data.min_rows=50", "or set data.min_rows to 40 or fewer"),
    ),
]


def bootstrap(flights: pd.DataFrame, config: Path, landing: Path) -> MlflowClient:
    """January lands and becomes champion v1."""
    landing.mkdir(exist_ok=True)
    january = land(landing / "flights-2013-01.parquet", parquet(month(flights, 1)))
    first = retrain(str(january), config=str(config))
    assert first.decision == "first_model" and first.version == 1
    return MlflowClient()


def sha256(data: bytes) -> str:
    """The content hash rewarm identifies a snapshot by."""
    return hashlib.sha256(data).hexdigest()


# ---- the catalogue as one stream per task -------------------------------------------------------------
# A retrain costs ~4 s here (Prefect and MLflow overhead, not training) and a fresh MLflow store ~3 s: a store,
# a bootstrap and a follow-up month for each of 16 cases would take minutes. So each task's cases share one
# store and one champion: January bootstraps it, every bad file lands and is rejected in turn (what each left
# behind is recorded at once), then March lands and the scheduled run must process it past them all. March
# also brings a destination the champion never saw, which is counted, not rejected.
# Every flow runs in the fixture, so each test reads records and depends on no other test.


@dataclass
class Rejection:
    """What one bad file did: the error raised, and the registry and history just before and after."""

    path: Path
    data: bytes
    error: SnapshotRejected | None
    champion: tuple[int | None, int | None]
    versions: tuple[int, int]
    history: tuple[int, int]


@dataclass
class Stream:
    """One task's run through the catalogue: its folders, model, rejections and the month after them."""

    folder: Path
    home: Path
    name: str
    rejections: dict[str, Rejection]
    march: bytes
    processed: list[dict]  # the scheduled run's
    champion: int | None  # after March
    version: dict[str, str]  # v2's tags, {} when there is no v2
    complete: bool  # v2 is complete
    run: Run  # the latest parent retrain run: March's
    logged: list[str]  # what the scheduled run's tasks logged

    @property
    def quarantine(self) -> str:
        """This stream's quarantine folder (the default: next to data.landing)."""
        return str(self.folder / "quarantine")

    @property
    def history(self) -> Path:
        """Where the model's accepted snapshots are kept."""
        return self.home / "snapshots" / self.name


def _state(client: MlflowClient, name: str, history: Path) -> tuple[int | None, int, int]:
    """(champion version, number of versions, snapshots kept) of model NAME now."""
    versions = len(client.search_model_versions(f"name = '{name}'"))
    return registry.current_version(client, name, registry.CHAMPION), versions, len(list_history(history))


def _reject(client: MlflowClient, config: Path, bad: Bad, february: pd.DataFrame, history: Path) -> Rejection:
    """Land BAD in data.landing and retrain on it, recording the error and what changed."""
    before = _state(client, history.name, history)
    data = bad.make(february)
    path = land(config.parent / "landing" / bad.file, data)
    try:
        retrain(str(path), config=str(config))
        error = None
    except SnapshotRejected as exc:
        error = exc
    after = _state(client, history.name, history)
    return Rejection(path, data, error, *zip(before, after, strict=True))


def with_newcomer(frame: pd.DataFrame, known: set[str]) -> pd.DataFrame:
    """FRAME's rows whose dest is KNOWN, the first NEWCOMER_ROWS of them sent to 'ZZZ' instead."""
    out = frame[frame["dest"].isin(known)].reset_index(drop=True)
    out.loc[: NEWCOMER_ROWS - 1, "dest"] = "ZZZ"  # not an airport in 2013's data
    return out


def _stream(flights: pd.DataFrame, folder: Path, home: Path, multiclass: bool) -> Stream:
    """Bootstrap on January, reject every bad February of this task, then retrain March on schedule."""
    name = "catalogue-multiclass" if multiclass else "catalogue-binary"
    config = strict_config(folder, name, multiclass)
    client = bootstrap(flights, config, folder / "landing")
    known = set(registry.load_alias(client, name).preprocessor.categorical["dest"])
    cases = [b for b in CATALOGUE if b.multiclass == multiclass]
    february, history = month(flights, 2), home / "snapshots" / name
    rejections = {b.id: _reject(client, config, b, february, history) for b in cases}
    march = parquet(with_newcomer(month(flights, 3), known))
    land(folder / "landing" / "flights-2013-03.parquet", march)
    with logged_by("prefect.task_runs") as logged:
        processed = retrain(config=str(config)).processed
    champion = registry.current_version(client, name, registry.CHAMPION)
    versions = {int(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
    complete = 2 in versions and registry.is_complete(client, name, 2)
    tags = versions[2].tags if 2 in versions else {}
    run = latest_retrain_run(client, name)
    return Stream(folder, home, name, rejections, march, processed, champion, tags, complete, run, logged)


@pytest.fixture(scope="module")
def catalogue(
    prefect_server: None, stores, flights: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> dict[bool, Stream]:
    """Both streams, keyed by multiclass (False: the binary 'late' model), sharing one REWARM_HOME."""
    home = tmp_path_factory.mktemp("catalogue") / "home"
    with pytest.MonkeyPatch.context() as env:  # the autouse _clean_env is per test: set and clear it ourselves
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PREFECT_API_URL"):
            env.delenv(variable, raising=False)
        env.setenv("REWARM_HOME", str(home))
        stores.fresh(env)
        folders = {m: tmp_path_factory.mktemp("multiclass" if m else "binary") for m in (False, True)}
        return {m: _stream(flights, folders[m], home, m) for m in (False, True)}


@pytest.mark.parametrize("bad", CATALOGUE, ids=[b.id for b in CATALOGUE])
def test_bad_snapshot_is_rejected_and_quarantined(catalogue: dict[bool, Stream], bad: Bad) -> None:
    stream = catalogue[bad.multiclass]
    case = stream.rejections[bad.id]
    assert case.error is not None, f"{bad.file} was not rejected"
    message = str(case.error)
    assert message.startswith(f"{case.path}: ") and case.error.kind == bad.kind
    for fragment in bad.says:
        assert fragment in message

    [record] = [r for r in quarantine.records(stream.quarantine) if r.landed_as == bad.file]
    assert (record.kind, record.sha256, record.size) == (bad.kind, sha256(case.data), len(case.data))
    assert record.name == bad.file and record.source == str(case.path) and record.model == stream.name
    assert record.reason == message.split("; moved to ")[0] and record.flow_run_id
    assert message.endswith(f"; moved to {record.location} (fix it, then `rewarm quarantine retry {bad.file}`)")
    assert not case.path.exists() and Path(record.location).read_bytes() == case.data  # moved, never deleted
    assert Path(record.location).parent == stream.folder / "quarantine"
    assert case.champion == (1, 1) and case.versions == (1, 1)  # the champion stays, nothing registered
    assert case.history == (1, 1)  # the bad snapshot never joins the kept history


@pytest.mark.parametrize("multiclass", [False, True], ids=["binary", "multiclass"])
def test_the_next_month_is_processed_past_every_rejection(catalogue: dict[bool, Stream], multiclass: bool) -> None:
    stream = catalogue[multiclass]
    [done] = stream.processed  # the scheduled run: the quarantined files are no longer pending
    assert done.snapshot == "flights-2013-03.parquet" and done.version == 2
    assert done.sha256 == sha256(stream.march) and done.decision in ("promote", "keep")
    assert stream.complete and stream.version[SHA_TAG] == sha256(stream.march)
    assert stream.champion == (2 if done.decision == "promote" else 1)
    assert [i.name for i in list_history(stream.history)] == ["flights-2013-01.parquet", "flights-2013-03.parquet"]
    held = sorted(r.name for r in quarantine.records(stream.quarantine))
    assert held == sorted(b.file for b in CATALOGUE if b.multiclass == multiclass)  # all still there


def test_unseen_categories_are_counted_not_rejected(catalogue: dict[bool, Stream]) -> None:
    stream = catalogue[False]
    assert stream.run.data.tags["rewarm.snapshot"] == "flights-2013-03.parquet"  # March was processed
    assert stream.run.data.metrics["unseen_rows_dest"] == NEWCOMER_ROWS
    assert stream.run.data.metrics["unseen_values_dest"] == 1  # 'ZZZ'; every other dest was known
    said = f"flights-2013-03.parquet: {NEWCOMER_ROWS} row(s) of 'dest' hold 1 category(ies) the champion never saw"
    assert any(m.startswith(said) for m in stream.logged)  # in the Prefect log too, not only in MLflow
    for column in ("carrier", "origin", "dest"):  # a column is named exactly when it had newcomers
        named = any(f"row(s) of {column!r} hold" in m for m in stream.logged)
        assert named == (stream.run.data.metrics[f"unseen_rows_{column}"] > 0)
    assert stream.run.data.metrics["unseen_rows_origin"] == 0  # so the rule is checked both ways


def test_a_bad_file_named_from_outside_landing_stays_put(tmp_path: Path, home: Path, flights: pd.DataFrame) -> None:
    config = strict_config(tmp_path, "outside-test")
    elsewhere = tmp_path / "downloads" / "flights-2013-02.parquet"
    elsewhere.parent.mkdir()
    data = parquet(month(flights, 2).drop(columns="carrier"))
    elsewhere.write_bytes(data)

    with pytest.raises(SnapshotRejected, match=r"missing column\(s\) \['carrier'\]") as caught:
        retrain(str(elsewhere), config=str(config))
    assert str(caught.value).startswith(f"{elsewhere}: ") and "moved to" not in str(caught.value)
    assert elsewhere.read_bytes() == data  # the user's file is where it was, untouched
    assert quarantine.records(str(tmp_path / "quarantine")) == []
    assert not MlflowClient().search_model_versions("name = 'outside-test'")
    assert list_history(home / "snapshots" / "outside-test") == []


def test_quarantine_retry_after_a_fix_retrains_it(
    tmp_path: Path, home: Path, flights: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    config, landing = strict_config(tmp_path, "retry-test"), tmp_path / "landing"
    client = bootstrap(flights, config, landing)
    february = month(flights, 2)
    path = land(landing / "flights-2013-02.parquet", parquet(february.drop(columns="carrier")))
    with pytest.raises(SnapshotRejected, match="carrier"):
        retrain(str(path), config=str(config))
    [record] = quarantine.records(str(tmp_path / "quarantine"))

    fixed = parquet(february)
    Path(record.location).write_bytes(fixed)  # fixed where it lies
    assert main(["quarantine", "retry", record.name, "--config", str(config)]) == 0
    assert "is back in the landing location" in capsys.readouterr().out
    assert path.read_bytes() == fixed and quarantine.records(str(tmp_path / "quarantine")) == []
    assert len(list((tmp_path / "quarantine" / quarantine.RETRIED).glob("*.reason.json"))) == 1

    [done] = retrain(config=str(config)).processed
    assert done.snapshot == path.name and done.version == 2 and done.sha256 == sha256(fixed)
    assert client.get_model_version("retry-test", "2").tags[SHA_TAG] == sha256(fixed)
    assert len(list_history(home / "snapshots" / "retry-test")) == 2
