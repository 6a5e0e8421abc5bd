"""Admitting landed snapshots, their history and splits (rewarm/snapshots.py, rewarm/rounds.py window)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
import torch

from rewarm.config import DataSection, parse_settings
from rewarm.errors import RewarmError, SnapshotRejected
from rewarm.rounds import prepare, window
from rewarm.snapshots import SnapshotInfo, admit, inspect, list_history, load
from rewarm.splits import holdout_mask, replay_mask

SPEC = DataSection(target="late", task="binary", numeric=("dist", "temp"), categorical=("carrier",), min_rows=10)


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "dist": rng.uniform(100, 2000, n).round(1),
            "temp": rng.normal(50, 10, n).round(2),
            "carrier": rng.choice(["AA", "UA", "DL"], n),
            "late": rng.integers(0, 2, n),
        }
    )


def _csv(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def _parquet(path: Path, df: pd.DataFrame) -> Path:
    df.to_parquet(path, index=False)
    return path


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# ---- admitting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("write", [_csv, _parquet], ids=["csv", "parquet"])
def test_admit_copies_into_history_with_hash_and_sequence(tmp_path: Path, write) -> None:
    landing, history = tmp_path / "landing", tmp_path / "history"
    landing.mkdir()
    suffix = ".csv" if write is _csv else ".parquet"
    first = write(landing / f"jan{suffix}", _frame(seed=1))
    second = write(landing / f"feb{suffix}", _frame(seed=2))
    before = _fingerprint(first)

    info, df = admit(str(first), SPEC, history)

    assert info.sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert (info.name, info.source, info.rows, info.sequence) == (first.name, str(first), 40, 1)
    stored = Path(info.stored)
    assert stored.parent == history and stored.read_bytes() == first.read_bytes()
    assert stored.name.endswith(first.name)
    pd.testing.assert_frame_equal(df, _frame(seed=1), check_dtype=False)
    pd.testing.assert_frame_equal(load(info), df)
    assert _fingerprint(first) == before  # the source is never modified or removed

    info2, _ = admit(str(second), SPEC, history)
    assert info2.sequence == 2
    assert list_history(history) == [info, info2]
    assert not list(history.glob("*.partial"))


def test_text_that_means_missing_is_read_as_written_in_categories_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    df = _frame()
    df.loc[:4, "carrier"] = "NA"  # R's write.csv writes a missing value so; it is also Namibia's code
    df.loc[5, "carrier"] = "NULL"
    with caplog.at_level("WARNING", logger="rewarm.snapshots"):
        landed = inspect(str(_csv(tmp_path / "r.csv", df)), SPEC, tmp_path / "history")
    assert (landed.frame["carrier"] == "NA").sum() == 5  # a category as written, not a null
    [warning] = [r.getMessage() for r in caplog.records]
    assert "r.csv: column 'carrier' has 6 cell(s) written ['NA', 'NULL']" in warning and "data.nullable" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="rewarm.snapshots"):  # Parquet has real nulls: its text is only text
        inspect(str(_parquet(tmp_path / "r.parquet", df)), SPEC, tmp_path / "history")
    assert not caplog.records


def test_same_content_under_another_name_is_not_copied_twice(tmp_path: Path) -> None:
    history = tmp_path / "history"
    original = _parquet(tmp_path / "jan.parquet", _frame(seed=1))
    relanded = tmp_path / "jan-again.parquet"
    relanded.write_bytes(original.read_bytes())

    info, _ = admit(str(original), SPEC, history)
    files = sorted(history.iterdir())
    again, df = admit(str(relanded), SPEC, history)
    same, _ = admit(str(original), SPEC, history)

    assert again == info and same == info
    assert again.name == "jan.parquet"  # the existing entry, not a new one
    assert sorted(history.iterdir()) == files
    assert len(list_history(history)) == 1
    assert len(df) == 40
    assert original.exists() and relanded.exists()


def test_rejected_files_leave_the_source_and_history_alone(tmp_path: Path) -> None:
    history = tmp_path / "history"
    bad = _csv(tmp_path / "bad.csv", _frame().drop(columns="temp"))
    before = _fingerprint(bad)
    with pytest.raises(SnapshotRejected):
        admit(str(bad), SPEC, history)
    assert _fingerprint(bad) == before
    assert list_history(history) == []


def test_a_missing_file_is_rejected_by_name(tmp_path: Path) -> None:
    path = tmp_path / "never-landed.csv"
    with pytest.raises(SnapshotRejected, match="no such file") as info:
        admit(str(path), SPEC, tmp_path / "history")
    assert str(path) in str(info.value)


# ---- rejections ----------------------------------------------------------------------------------


def _write_bad(tmp_path: Path, case: str) -> tuple[Path, tuple]:
    """Write a file for CASE; return it and the admit() classes argument."""
    df = _frame()
    if case == "suffix":
        path = tmp_path / "snapshot.xlsx"
        path.write_bytes(b"not really excel")
        return path, ()
    if case == "empty":
        path = tmp_path / "empty.csv"
        path.write_bytes(b"")
        return path, ()
    if case == "corrupt":
        path = tmp_path / "corrupt.parquet"
        path.write_bytes(b"PAR1 this is not a parquet file at all PAR1")
        return path, ()
    if case == "missing_column":
        return _csv(tmp_path / "nocol.csv", df.drop(columns="temp")), ()
    if case == "infinite":
        df.loc[[3, 7, 11], "dist"] = [np.inf, -np.inf, np.nan]
        return _parquet(tmp_path / "inf.parquet", df), ()
    if case == "non_numeric":
        df["temp"] = df["temp"].astype(object)
        df.loc[[0, 5], "temp"] = "twelve"
        return _csv(tmp_path / "text.csv", df), ()
    if case == "null_target":
        df["late"] = df["late"].astype("float64")
        df.loc[[1, 2, 4, 8], "late"] = np.nan
        return _parquet(tmp_path / "nulltarget.parquet", df), ()
    if case == "few_rows":
        return _csv(tmp_path / "tiny.csv", df.head(9)), ()
    if case == "unseen_label":
        df["late"] = np.where(np.arange(len(df)) < 3, 2, df["late"])
        return _csv(tmp_path / "labels.csv", df), (0, 1)
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("suffix", ["unsupported format", ".parquet", ".csv"]),
        ("empty", ["empty", "0 bytes"]),
        ("corrupt", ["cannot be read as parquet"]),
        ("missing_column", ["missing column(s) ['temp']"]),
        ("infinite", ["column 'dist' has 1 null", "column 'dist' has 2 infinite value(s) ('inf', '-inf')"]),
        ("non_numeric", ["column 'temp' must hold numbers but 2 row(s) hold other values ('twelve')"]),
        ("null_target", ["target column 'late' has 4 missing value(s) (empty, null or NaN)"]),
        ("few_rows", ["9 rows", "data.min_rows=10"]),
        ("unseen_label", ["target 'late'", "3 row(s)", "['2']", "outside the binary model's two classes"]),
    ],
)
def test_bad_snapshots_are_rejected_with_the_file_named(tmp_path: Path, case: str, fragments: list[str]) -> None:
    path, classes = _write_bad(tmp_path, case)
    history = tmp_path / "history"
    with pytest.raises(SnapshotRejected) as info:
        admit(str(path), SPEC, history, classes=classes)
    message = str(info.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, fragment
    assert isinstance(info.value, RewarmError)
    assert list_history(history) == []
    assert path.exists()


def test_known_labels_are_admitted(tmp_path: Path) -> None:
    path = _csv(tmp_path / "ok.csv", _frame())
    info, _ = admit(str(path), SPEC, tmp_path / "history", classes=(0, 1))
    assert info.sequence == 1


def test_regression_target_must_be_finite(tmp_path: Path) -> None:
    spec = DataSection(target="temp", task="regression", numeric=("dist",), min_rows=10, extra_columns="ignore")
    df = _frame()
    df.loc[0, "temp"] = np.inf
    path = _parquet(tmp_path / "reg.parquet", df)
    with pytest.raises(SnapshotRejected, match=r"column 'temp' has 1 infinite value\(s\)"):
        admit(str(path), spec, tmp_path / "history")


# ---- window ------------------------------------------------------------------------------------------


def _info(sequence: int) -> SnapshotInfo:
    return SnapshotInfo(
        f"s{sequence}.csv",
        f"/land/s{sequence}.csv",
        f"{sequence:064x}",
        10,
        f"/hist/{sequence}",
        sequence,
        "2024-01-01T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, [1, 2, 3, 4, 5]), (1, [5]), (2, [4, 5]), (3, [3, 4, 5]), (5, [1, 2, 3, 4, 5]), (9, [1, 2, 3, 4, 5])],
)
def test_window_keeps_the_last_n_snapshots_including_the_current(size: int, expected: list[int]) -> None:
    history = [_info(i) for i in range(1, 6)]  # the current snapshot is already in the history
    assert [i.sequence for i in window(history, history[-1], size)] == expected


def test_window_ignores_snapshots_admitted_after_the_current_one() -> None:
    history = [_info(i) for i in range(1, 6)]
    assert [i.sequence for i in window(history, history[2], 0)] == [1, 2, 3]
    assert [i.sequence for i in window(history, history[2], 2)] == [2, 3]
    assert [i.sequence for i in window([], _info(1), 0)] == [1]


def test_tail_holdout_takes_the_last_rows_in_file_order() -> None:
    frame = pd.DataFrame({"x": range(10)})
    mask = holdout_mask(frame, 0.3, "tail")
    assert mask.tolist() == [False] * 7 + [True] * 3


def test_an_older_snapshot_cannot_be_retrained_after_newer_ones(tmp_path: Path) -> None:
    spec = DataSection(target="y", task="binary", numeric=("x",), min_rows=10)
    history = tmp_path / "history"
    paths = []
    for i in range(2):
        path = tmp_path / f"s{i}.csv"
        pd.DataFrame({"x": np.arange(20) + 100 * i, "y": [0, 1] * 10}).to_csv(path, index=False)
        paths.append(path)
    admit(str(paths[0]), spec, history)
    admit(str(paths[1]), spec, history)
    assert admit(str(paths[1]), spec, history)[0].sequence == 2  # the newest may run again (a retry)
    with pytest.raises(SnapshotRejected, match=r"s0.csv.*round 1.*land new data"):
        admit(str(paths[0]), spec, history)
    assert len(list_history(history)) == 2


def test_a_torn_history_record_is_skipped_not_fatal(tmp_path: Path) -> None:
    history = tmp_path / "history"
    info, _ = admit(str(_parquet(tmp_path / "jan.parquet", _frame(seed=1))), SPEC, history)
    (history / "00002-deadbeef0000-feb.parquet.json").write_text('{"name": "feb.parq')  # killed mid-write
    assert list_history(history) == [info]
    again, _ = admit(str(_parquet(tmp_path / "feb.parquet", _frame(seed=2))), SPEC, history)
    assert again.sequence == 2 and list_history(history) == [info, again]
    assert not list(history.glob("*.partial"))


# ---- a history at an fsspec URL (shared by workers on several machines) ---------------------------------


@pytest.fixture
def memory_history() -> str:
    """A history folder in fsspec's in-memory filesystem, standing in for s3:// (same fsspec code path)."""
    url = f"memory://rewarm-history-{uuid.uuid4().hex}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def test_a_history_at_an_fsspec_url_keeps_lists_and_loads(tmp_path: Path, memory_history: str) -> None:
    jan = _parquet(tmp_path / "jan.parquet", _frame(seed=1))
    feb = _csv(tmp_path / "feb.csv", _frame(seed=2))

    info, df = admit(str(jan), SPEC, memory_history)
    info2, _ = admit(str(feb), SPEC, memory_history)
    again, _ = admit(str(feb), SPEC, memory_history)  # the same content: the existing entry

    assert info.stored == f"{memory_history}/00001-{info.sha256[:12]}-jan.parquet"
    assert again == info2 and list_history(memory_history) == [info, info2]
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(info.stored) == jan.read_bytes()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(memory_history, detail=False)) == sorted(
        [f"00001-{info.sha256[:12]}-jan.parquet{end}" for end in ("", ".json", ".rows-sketch")]
        + [f"00002-{info2.sha256[:12]}-feb.csv{end}" for end in ("", ".json", ".rows-sketch")]
    )
    pd.testing.assert_frame_equal(load(info), df)


def test_data_kept_without_its_record_does_not_count_and_is_rewritten(tmp_path: Path, memory_history: str) -> None:
    """A crash between the data and its record: the listing ignores the data, the rerun takes the same place."""
    jan = _parquet(tmp_path / "jan.parquet", _frame(seed=1))
    landed = inspect(str(jan), SPEC, memory_history)
    fsspec.filesystem("memory").pipe_file(landed.info.stored, b"half")
    assert list_history(memory_history) == []
    info, _ = admit(str(jan), SPEC, memory_history)
    assert info.stored == landed.info.stored and list_history(memory_history) == [info]
    pd.testing.assert_frame_equal(load(info), _frame(seed=1), check_dtype=False)


@pytest.mark.parametrize("fraction", [1.0, 0.25])
def test_a_round_replays_that_share_of_earlier_snapshots(tmp_path: Path, fraction: float) -> None:
    settings = parse_settings(
        {
            "model": {"name": "m", "hidden": [4]},
            "data": {**SPEC.model_dump(), "min_rows": 10, "replay_fraction": fraction},
        }
    )
    history = tmp_path / "history"
    frames = [_frame(n=2000, seed=s) for s in (1, 2, 3)]
    infos = [admit(str(_parquet(tmp_path / f"m{i}.parquet", f)), SPEC, history)[0] for i, f in enumerate(frames)]
    data = prepare(settings, infos[-1], load(infos[-1], SPEC), list_history(history), None, torch.device("cpu"))

    newest = frames[-1]
    columns = list(data.train_frame.columns)
    held = holdout_mask(newest[columns], SPEC.holdout_fraction, SPEC.holdout_split, target=SPEC.target)
    earlier = pd.concat(frames[:-1], ignore_index=True)[list(data.train_frame.columns)]
    replayed = int(replay_mask(earlier, fraction, infos[-1].sequence).sum())
    assert len(data.train_frame) == replayed + int((~held).sum())
    assert (replayed == 4000) if fraction == 1.0 else (800 < replayed < 1200)
    assert len(data.holdout_frame) == int(held.sum())  # the gate's rows do not change with the replay


def test_a_history_folder_named_with_brackets_lists_literally(tmp_path: Path) -> None:
    history = tmp_path / "models[v2]" / "history"  # glob would read [v2] as a character class
    jan = _parquet(tmp_path / "jan.parquet", _frame(seed=1))
    feb = _parquet(tmp_path / "feb.parquet", _frame(seed=2))
    first, _ = admit(str(jan), SPEC, history)
    second, _ = admit(str(feb), SPEC, history)
    assert (first.sequence, second.sequence) == (1, 2) and list_history(history) == [first, second]


def test_a_moved_history_is_read_where_it_is_now(tmp_path: Path) -> None:
    """Switching a model to data.history (or a mount at another path): the records find their data beside them."""
    old, new = tmp_path / "old" / "history", tmp_path / "shared" / "history"
    info, df = admit(str(_parquet(tmp_path / "jan.parquet", _frame(seed=1))), SPEC, old)
    new.parent.mkdir()
    old.rename(new)

    [moved] = list_history(new)
    assert moved.stored == str(new / Path(info.stored).name) and moved.sha256 == info.sha256
    pd.testing.assert_frame_equal(load(moved, SPEC), df)
    again, _ = admit(str(_parquet(tmp_path / "feb.parquet", _frame(seed=2))), SPEC, new)
    assert again.sequence == 2  # the moved history still counts: nothing starts over at round 1


# ---- a snapshot landed twice over ---------------------------------------------------------------------------


def test_a_snapshot_that_is_mostly_an_earlier_one_is_rejected(tmp_path: Path) -> None:
    history = tmp_path / "history"
    jan = _frame(n=2000, seed=1)
    admit(str(_parquet(tmp_path / "jan.parquet", jan)), SPEC, history)
    reexport = pd.concat([jan.iloc[500:], _frame(n=600, seed=9)], ignore_index=True)  # 71% of it is January again
    with pytest.raises(
        SnapshotRejected, match=r"7\d% of its rows repeat jan.parquet \(round 1\) in the same order"
    ) as e:
        admit(str(_parquet(tmp_path / "feb.parquet", reexport)), SPEC, history)
    assert e.value.kind == "repeated_snapshot" and "data.max_repeated_fraction=0.5" in str(e.value)
    shuffled = jan.sample(frac=1.0, random_state=2)
    with pytest.raises(SnapshotRejected, match=r"exactly the rows of jan.parquet \(round 1\) in another order"):
        admit(str(_csv(tmp_path / "mar.csv", shuffled)), SPEC, history)
    loose = SPEC.model_copy(update={"max_repeated_fraction": 0.9})
    info, _ = admit(str(_parquet(tmp_path / "feb.parquet", reexport)), loose, history)
    assert info.sequence == 2  # a limit the user raised is respected


def test_real_months_and_naturally_repeating_rows_are_not_taken_for_copies(tmp_path: Path, flights) -> None:
    spec = DataSection(
        target="late", task="binary", numeric=("distance", "sched_dep_hour"), categorical=("carrier", "origin")
    )
    history = tmp_path / "history"
    for month in (1, 2):
        rows = flights[flights["month"] == month][["late", "distance", "sched_dep_hour", "carrier", "origin"]]
        assert rows.duplicated().mean() > 0.2  # these five columns repeat a lot by nature
        admit(str(_parquet(tmp_path / f"m{month}.parquet", rows.sort_values(["carrier", "origin"]))), spec, history)
    assert len(list_history(history)) == 2


def test_a_history_kept_before_row_sketches_is_not_compared(tmp_path: Path) -> None:
    history = tmp_path / "history"
    jan = _frame(n=2000, seed=1)
    info, _ = admit(str(_parquet(tmp_path / "jan.parquet", jan)), SPEC, history)
    Path(f"{info.stored}.rows-sketch").unlink()  # as kept by rewarm before this check existed
    again, _ = admit(str(_parquet(tmp_path / "feb.parquet", jan.iloc[::-1])), SPEC, history)
    assert again.sequence == 2


def test_a_holdout_that_cannot_hold_every_class_says_which_and_what_to_do(tmp_path: Path) -> None:
    settings = parse_settings({"model": {"name": "m", "hidden": [4]}, "data": {**SPEC.model_dump(), "min_rows": 10}})
    frame = _frame(n=60, seed=5).assign(late=0)
    frame.loc[7, "late"] = 1  # one positive row: it cannot be both trained on and held out
    info, df = admit(str(_parquet(tmp_path / "jan.parquet", frame)), SPEC, tmp_path / "history")
    with pytest.raises(SnapshotRejected) as caught:
        prepare(settings, info, df, [info], None, torch.device("cpu"))
    message = str(caught.value)
    assert (
        "holdout rows hold one class of target 'late' (['0']), and roc_auc needs two: ['1'] too few distinct" in message
    )
    assert "set gate.metric to log_loss or accuracy" in message and caught.value.kind == "holdout_classes"


def test_a_tail_holdout_that_takes_a_whole_class_says_so(tmp_path: Path) -> None:
    """A file sorted by its label, with holdout_split = "tail": the last rows, held out, are the whole of one class,
    so the first model's training rows hold the other alone (Ecdat's VietNamH, sorted by 'urban')."""
    data = {**SPEC.model_dump(), "min_rows": 10, "holdout_split": "tail"}
    settings = parse_settings({"model": {"name": "m", "hidden": [4]}, "data": data})
    frame = _frame(n=100, seed=5).assign(late=[0] * 85 + [1] * 15)
    info, df = admit(str(_parquet(tmp_path / "jan.parquet", frame)), settings.data, tmp_path / "history")
    with pytest.raises(SnapshotRejected) as caught:
        prepare(settings, info, df, [info], None, torch.device("cpu"))
    message = str(caught.value)
    assert "binary target 'late' needs exactly 2 classes in the first model's training rows, found [0]" in message
    assert "the holdout took ['1']: with holdout_split = 'tail' it is the snapshot's last rows" in message


def test_a_multiclass_roc_auc_round_needs_two_classes_held_out_not_every_declared_one(tmp_path: Path) -> None:
    """A declared label with no rows yet (or one appended earlier that this snapshot lacks) is not required in the
    holdout: the multiclass AUC averages the classes present, as each bootstrap resample does."""
    spec = SPEC.model_copy(update={"target": "carrier", "task": "multiclass", "categorical": ()})
    spec = spec.model_copy(update={"classes": ("AA", "UA", "DL", "WN")})
    data = {**spec.model_dump(), "numeric": ["dist", "temp", "late"]}
    settings = parse_settings({"model": {"name": "m", "hidden": [4]}, "data": data, "gate": {"metric": "roc_auc"}})
    frame = _frame(n=120, seed=6)
    info, df = admit(str(_parquet(tmp_path / "jan.parquet", frame)), settings.data, tmp_path / "history")
    data = prepare(settings, info, df, [info], None, torch.device("cpu"))
    assert data.preprocessor.classes == ("AA", "DL", "UA", "WN") and data.arch.n_outputs == 4
    assert set(np.unique(data.y_holdout)) == {0, 1, 2}  # WN has no row, and is not asked for


def test_a_cumulative_dump_of_several_earlier_snapshots_is_rejected(tmp_path: Path) -> None:
    history = tmp_path / "history"
    months = [_frame(n=1500, seed=s) for s in (1, 2, 3)]
    for i, month in enumerate(months):
        admit(str(_parquet(tmp_path / f"m{i}.parquet", month)), SPEC, history)
    dump = pd.concat([*months, _frame(n=300, seed=9)], ignore_index=True)  # everything so far, plus a little
    with pytest.raises(SnapshotRejected, match=r"9\d% of its rows repeat m0.parquet \(round 1\), m1.parquet") as e:
        admit(str(_parquet(tmp_path / "dump.parquet", dump)), SPEC, history)
    assert e.value.kind == "repeated_snapshot"


def test_a_snapshot_of_a_few_rows_still_gets_validation_and_holdout_rows(tmp_path: Path) -> None:
    """11 rows pass data.min_rows = 10; drawn row by row, 10% of them can be none: at least one is set aside."""
    regression = {**SPEC.model_dump(), "task": "regression", "target": "dist", "numeric": ("temp",)}
    data = {**regression, "min_rows": 10, "validation_split": "hash", "validation_fraction": 0.1}
    settings = parse_settings({"model": {"name": "m", "hidden": [4]}, "data": data})
    frame = _frame(n=11, seed=5).drop(columns="late")
    info, df = admit(str(_parquet(tmp_path / "jan.parquet", frame)), settings.data, tmp_path / "h")
    holdout = {**data, "holdout_fraction": 0.1}
    settings = parse_settings({"model": {"name": "m", "hidden": [4]}, "data": holdout})
    round_data = prepare(settings, info, df, [info], None, torch.device("cpu"))
    assert (len(round_data.val), len(round_data.holdout), len(round_data.train)) == (1, 1, 9)
