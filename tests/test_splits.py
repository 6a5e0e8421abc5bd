"""Holdout, validation and replay memberships: by row content, independent of each other, for every column type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_snapshots import _frame

from rewarm.config import DataSection
from rewarm.models.preprocess import Preprocessor
from rewarm.rounds import split_scheme
from rewarm.snapshots import SnapshotInfo
from rewarm.splits import (
    CURRENT,
    LEGACY,
    holdout_mask,
    in_split,
    replay_mask,
    row_hashes,
    scores,
    tail_validation_mask,
    validation_mask,
)


def _mixed(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numbers, a text category and a 0/1 label: the snapshot tests' frame."""
    return _frame(n, seed)


def _numeric(n: int = 4000, seed: int = 1) -> pd.DataFrame:
    """No text column at all: integers, floats, a nullable integer, a boolean (pandas' hash key never applies)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 1000, n),
            "c": pd.array(rng.integers(0, 50, n), dtype="Int64"),
            "flag": rng.integers(0, 2, n).astype(bool),
            "y": rng.integers(0, 3, n),
        }
    )


def _categorical(n: int = 4000, seed: int = 2) -> pd.DataFrame:
    """Every column a category (integer-coded, pandas string, pandas category): distinct rows are many."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "code": rng.integers(1, 300, n),
            "city": pd.array(rng.choice([f"c{i}" for i in range(200)], n), dtype="string"),
            "kind": pd.Categorical(rng.choice(["x", "y", "z"], n)),
            "y": rng.choice(["yes", "no"], n),
        }
    )


FRAMES = {"mixed": lambda: _mixed(4000), "numeric": _numeric, "categorical": _categorical}


@pytest.mark.parametrize("kind", list(FRAMES))
def test_each_fraction_lands_and_the_splits_are_independent(kind: str) -> None:
    df = FRAMES[kind]()
    held = holdout_mask(df, 0.2)
    assert 0.18 < held.mean() < 0.22
    rest = df[~held]
    val = validation_mask(rest, 0.1)
    assert 0.08 < val.mean() < 0.12  # the validation share among non-holdout rows is the configured one
    # independent: validation rows are as common inside the holdout as outside it
    assert abs(validation_mask(df, 0.1)[held].mean() - validation_mask(df, 0.1)[~held].mean()) < 0.04
    r5, r6 = replay_mask(df, 0.25, 5), replay_mask(df, 0.25, 6)
    assert 0.22 < r5.mean() < 0.28 and 0.03 < (r5 & r6).mean() < 0.10  # another sample each round
    assert abs(r5[held].mean() - r5[~held].mean()) < 0.05


def test_the_first_scheme_drew_one_membership_for_every_split_on_frames_without_text() -> None:
    """The bug scheme 2 fixes, kept reproducible for models made before it: pandas' hash key is ignored."""
    df = _numeric()
    legacy_holdout = in_split(df, 0.2, "rewarm-holdout00", LEGACY)
    assert np.array_equal(in_split(df, 0.1, "rewarm-validate0", LEGACY), in_split(df, 0.1, "rewarm-holdout00", LEGACY))
    assert not (validation_mask(df[~legacy_holdout], 0.1, LEGACY)).any()  # the empty validation split
    assert np.array_equal(holdout_mask(df, 0.2, scheme=LEGACY), legacy_holdout)


@pytest.mark.parametrize("kind", list(FRAMES))
def test_membership_follows_content_not_position_or_index(kind: str) -> None:
    df = FRAMES[kind]()
    mask = holdout_mask(df, 0.2)
    order = np.random.default_rng(0).permutation(len(df))
    np.testing.assert_array_equal(holdout_mask(df.iloc[order].reset_index(drop=True), 0.2), mask[order])
    np.testing.assert_array_equal(holdout_mask(df.set_axis(np.arange(len(df)) * 7), 0.2), mask)
    np.testing.assert_array_equal(holdout_mask(df[list(reversed(df.columns))], 0.2), mask)  # column order


def test_a_row_hashes_the_same_whatever_dtype_it_arrived_in() -> None:
    """An integer column that turns float (or nullable, or Arrow-backed) when a null arrives keeps its rows'
    hashes; so do booleans read as 0/1 and a category read as text."""
    ints = pd.DataFrame({"n": [1, 2, 3], "flag": [True, False, True], "c": ["a", "b", "a"]})
    other = pd.DataFrame(
        {
            "n": pd.array([1.0, 2.0, 3.0], dtype="float64"),
            "flag": pd.array([1, 0, 1], dtype=pd.ArrowDtype(__import__("pyarrow").int8())),
            "c": pd.Categorical(["a", "b", "a"]),
        }
    )
    np.testing.assert_array_equal(row_hashes(ints), row_hashes(other))
    nulls = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "flag": [1.0, 0.0, 1.0], "c": ["a", "b", "a"]})
    assert row_hashes(nulls)[0] == row_hashes(ints)[0] and row_hashes(nulls)[1] != row_hashes(ints)[1]


def test_repeated_rows_stay_on_one_side() -> None:
    base = _mixed(300, seed=3)
    df = pd.concat([base, base.iloc[:100]], ignore_index=True).sample(frac=1.0, random_state=4)
    for mask in (holdout_mask(df, 0.2), holdout_mask(df, 0.2, target="late"), validation_mask(df, 0.3)):
        sides = pd.Series(mask, index=df.index).groupby([df[c] for c in df.columns]).nunique()
        assert (sides == 1).all()


def test_a_classification_holdout_holds_every_class_of_a_tiny_snapshot() -> None:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=60), "y": ["rare"] * 3 + ["a"] * 27 + ["b"] * 30})
    held = holdout_mask(df, 0.2, target="y")
    counts = df.loc[held, "y"].value_counts()
    assert set(counts.index) == {"rare", "a", "b"}
    assert counts["rare"] == 1 and 5 <= counts["a"] <= 6 and counts["b"] == 6
    single = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "a", "a", "lonely"]})
    assert not holdout_mask(single, 0.5, target="y")[3]  # a class of one row stays in training


def test_identical_rows_of_a_class_are_held_out_whole_or_not_at_all() -> None:
    """All-categorical data repeats by nature: the holdout takes whole groups of identical rows, as close to the
    fraction as they allow, and never a whole class."""
    df = pd.DataFrame({"c": ["p"] * 50 + ["q"] * 30 + ["r"] * 20, "y": ["k"] * 100})
    held = holdout_mask(df, 0.2, target="y")
    assert df.loc[held, "c"].nunique() == 1 and held.mean() in (0.2, 0.3)
    assert not holdout_mask(df[df.c == "p"], 0.2, target="y").any()  # one distinct row: nothing to hold out


def test_a_hashed_split_of_a_few_rows_sets_at_least_one_aside() -> None:
    """Each row is drawn alone, so 10% of 11 rows can be none: then the lowest-scoring row (and its copies)."""
    df = _mixed(11, seed=5)
    assert not (scores(df, "rewarm-validate0") < 0.1).any()  # the draw alone sets none aside here
    assert not (scores(df, "rewarm-holdout00") < 0.02).any()
    assert validation_mask(df, 0.1).sum() == 1 and holdout_mask(df, 0.02).sum() == 1
    np.testing.assert_array_equal(validation_mask(df, 0.1), validation_mask(df.iloc[::-1], 0.1)[::-1])  # by content
    twice = pd.concat([df.iloc[:3], df.iloc[:3]], ignore_index=True)
    assert validation_mask(twice, 0.01).sum() == 2  # a row and its copy, together
    assert not validation_mask(pd.concat([df.iloc[:1]] * 5), 0.01).any()  # one distinct row: never all of them
    assert not validation_mask(df, 0.0).any()  # a share of 0 sets nothing aside
    assert validation_mask(_mixed(400), 0.1).sum() == (scores(_mixed(400), "rewarm-validate0") < 0.1).sum()


def test_memberships_are_stable_and_monotone() -> None:
    df = _mixed(400, seed=4)
    np.testing.assert_array_equal(holdout_mask(df.copy(), 0.2), holdout_mask(df, 0.2))
    small, large = holdout_mask(df, 0.1), holdout_mask(df, 0.4)
    assert not (small & ~large).any()  # a row held out at 10% stays held out at 40%
    assert not holdout_mask(df, 0.0).any() and replay_mask(df, 1.0, 5).all()
    with pytest.raises(ValueError, match="unknown split scheme 7"):
        in_split(df, 0.2, "k", 7)
    assert CURRENT == 2


def _info(scheme: int | None) -> SnapshotInfo:
    return SnapshotInfo("s.csv", "s.csv", "ab", 10, "s.csv", 3, "", scheme)


def _pre(scheme: int) -> Preprocessor:
    return Preprocessor("binary", "y", {}, {}, (0, 1), split_scheme=scheme)


def test_a_lineage_keeps_its_scheme_and_a_kept_snapshot_its_split() -> None:
    auto = DataSection(target="y", task="binary", numeric=("a",))
    assert split_scheme(auto, _info(None), None) == CURRENT  # a new model
    assert split_scheme(auto, _info(None), _pre(LEGACY)) == LEGACY  # a model made before scheme 2: its lineage's
    assert split_scheme(auto, _info(LEGACY), _pre(CURRENT)) == LEGACY  # a rerun splits as the first run did
    migrate = auto.model_copy(update={"split_scheme": 2})
    assert split_scheme(migrate, _info(None), _pre(LEGACY)) == CURRENT  # explicit, from the next new snapshot
    assert split_scheme(migrate, _info(LEGACY), _pre(LEGACY)) == LEGACY  # never for a snapshot already split


def test_model_json_written_before_schemes_reads_as_the_first_scheme() -> None:
    saved = _pre(CURRENT).to_dict()
    assert Preprocessor.from_dict(saved).split_scheme == CURRENT
    del saved["split_scheme"]  # as every model.json before this change
    assert Preprocessor.from_dict(saved).split_scheme == LEGACY
    old_record = {k: v for k, v in _info(CURRENT).to_dict().items() if k != "split_scheme"}
    assert SnapshotInfo(**old_record).split_scheme == LEGACY


def test_tail_validation_takes_the_last_rows_of_each_snapshot() -> None:
    mask = tail_validation_mask([10, 1, 2, 0, 30], 0.1)

    segments = np.split(mask, np.cumsum([10, 1, 2, 0])[:])
    assert [s.tolist() for s in segments[:3]] == [[False] * 9 + [True], [False], [False, True]]
    assert segments[3].size == 0 and segments[4].tolist() == [False] * 27 + [True] * 3


@pytest.mark.parametrize(
    ("holdout", "validation", "expected"),
    [("tail", "auto", "tail"), ("hash", "auto", "hash"), ("tail", "hash", "hash"), ("hash", "tail", "tail")],
)
def test_validation_rows_follow_the_configured_split(flights, tmp_path, holdout, validation, expected) -> None:
    from flight_snapshots import small_month
    from sklearn.metrics import roc_auc_score

    from rewarm import rounds
    from rewarm.models.strategies import COLD, initialise
    from rewarm.training import predict

    jan, feb = small_month(flights, 1, 600), small_month(flights, 2, 2600)
    one, two = _two_rounds(tmp_path, jan, feb, holdout_split=holdout, validation_split=validation)

    val = two.val_rows
    older = len(two.train_frame) - two.newest_rows
    assert len(two.val) == val.sum() and len(two.train) == (~val).sum()
    if expected == "tail":  # January's last 60 rows, and the last 208 of February's 2,080 training rows
        assert np.flatnonzero(val).tolist() == [*range(older - 60, older), *range(len(val) - 208, len(val))]
    else:
        assert (val == validation_mask(two.train_frame, 0.1)).all()
    # The race reads February's validation rows, its metric against their own labels.
    assert two.race_val is not None and len(two.race_val) == val[older:].sum()
    model = initialise(COLD, two.arch, None, 1)
    expected_auc = roc_auc_score(
        two.race_val.y.numpy(), predict(model, two.race_val.x_num, two.race_val.x_cat, "binary")
    )
    assert -two.race_scorer("roc_auc")(model) == pytest.approx(expected_auc)
    assert len(two.race_val) >= rounds.MIN_RACE_ROWS


def test_a_snapshots_tail_stays_its_validation_rows_whatever_a_round_replays(flights, tmp_path) -> None:
    from flight_snapshots import small_month

    jan, feb = (small_month(flights, m, n).assign(row=np.arange(n)) for m, n in ((1, 600), (2, 900)))
    _, two = _two_rounds(tmp_path, jan, feb, holdout_split="tail", replay_fraction=0.5, numeric=["distance", "row"])

    older = len(two.train_frame) - two.newest_rows
    assert 10 < two.val_rows[:older].sum() < 60 and older < 450  # about half of January's last 60 rows, and of it
    in_tail = (two.train_frame["row"][:older] >= 540).tolist()  # January's rows are told apart by their position
    # January's validation rows are exactly the replayed ones among its last 60, not the last tenth of the sample
    assert two.val_rows[:older].tolist() == in_tail and sum(in_tail) != round(0.1 * older)


def _two_rounds(folder, jan: pd.DataFrame, feb: pd.DataFrame, **data_keys):
    from rewarm import rounds
    from rewarm.config import Settings

    data = {"target": "late", "task": "binary", "numeric": ["distance", "temp"], "categorical": ["carrier"]}
    data |= {"landing": "unused", "extra_columns": "ignore"} | data_keys
    settings = Settings.model_validate({"model": {"name": "v", "hidden": [8], "architecture": "mlp"}, "data": data})
    jan.to_parquet(folder / "jan.parquet", index=False)
    first = SnapshotInfo("jan", "jan", "a" * 64, len(jan), str(folder / "jan.parquet"), 1, "", None)
    one = rounds.prepare(settings, first, jan, [], None, torch.device("cpu"))
    second = SnapshotInfo("feb", "feb", "b" * 64, len(feb), "", 2, "", None)
    return one, rounds.prepare(settings, second, feb, [first], (one.preprocessor, one.arch), "cpu")
