"""Preprocessing that travels with the weights (models/preprocess.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from rewarm.config import DataSection
from rewarm.models.preprocess import UNKNOWN, Preprocessor

# CSV readers keep categorical codes as text; x is the one numeric feature.
GATE_SPEC = DataSection(target="y", task="binary", numeric=("x",), categorical=("gate",), nullable=("gate",))


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dist": [100.0, 200.0, 300.0, 400.0],
            "hour": [5.0, 5.0, 5.0, 5.0],  # constant: scales by 1, not 0
            "carrier": ["UA", "AA", "UA", "DL"],
            "origin": ["JFK", "LGA", "EWR", "JFK"],
            "late": [0, 1, 0, 1],
        }
    )


@pytest.fixture
def pre(frame: pd.DataFrame) -> Preprocessor:
    return Preprocessor.fit(frame, "binary", "late", ["dist", "hour"], ["carrier", "origin"])


def _roundtrip(p: Preprocessor) -> Preprocessor:
    return Preprocessor.from_dict(json.loads(json.dumps(p.to_dict())))


# ---- fit ---------------------------------------------------------------------------------------------


def test_fit_scaling_vocabularies_and_classes(pre: Preprocessor) -> None:
    mean, std = pre.numeric["dist"]
    assert mean == pytest.approx(250.0)
    assert std == pytest.approx(np.std([100.0, 200.0, 300.0, 400.0]))  # population std, like nanstd
    assert pre.numeric["hour"] == (5.0, 1.0)
    assert pre.categorical == {"carrier": ("AA", "DL", "UA"), "origin": ("EWR", "JFK", "LGA")}
    assert pre.classes == (0, 1)
    assert all(type(c) is int for c in pre.classes)  # plain Python values, JSON-friendly
    assert pre.target_scale == (0.0, 1.0)
    assert pre.cardinalities == (4, 4)  # vocabulary + the unknown bucket
    assert pre.n_outputs == 1


def test_features_shapes_dtypes_and_codes(pre: Preprocessor, frame: pd.DataFrame) -> None:
    x_num, x_cat = pre.features(frame)
    assert x_num.shape == (4, 2) and x_num.dtype == np.float32
    assert x_cat.shape == (4, 2) and x_cat.dtype == np.int64
    np.testing.assert_allclose(x_num[:, 0], (frame["dist"] - 250.0) / np.std(frame["dist"]), rtol=1e-6)
    np.testing.assert_array_equal(x_num[:, 1], np.zeros(4, dtype=np.float32))
    # sorted vocabulary, index i+1; 0 is reserved for unknown
    np.testing.assert_array_equal(x_cat[:, 0], [3, 1, 3, 2])
    np.testing.assert_array_equal(x_cat[:, 1], [2, 3, 1, 2])
    assert UNKNOWN == 0


def test_unseen_and_missing_categories_go_to_the_unknown_bucket(pre: Preprocessor) -> None:
    rows = pd.DataFrame(
        {
            "dist": [1.0, 2.0, 3.0],
            "hour": [1.0, 2.0, 3.0],
            "carrier": ["ZZ", None, "DL"],
            "origin": ["JFK", "BOS", np.nan],
        }
    )
    _, x_cat = pre.features(rows)
    np.testing.assert_array_equal(x_cat, [[0, 2], [0, 0], [2, 0]])
    assert pre.count_unknown(rows) == {"carrier": 2, "origin": 2}


def test_integer_categories_keep_their_codes_when_a_value_is_missing() -> None:
    fitted = pd.DataFrame({"x": [1.0, 2.0, 3.0], "gate": [1, 2, 3], "y": [0, 1, 0]})
    pre = Preprocessor.fit(fitted, "binary", "y", ["x"], ["gate"])
    later = pd.DataFrame({"x": [1.0, 2.0, 3.0], "gate": [1, None, 2]})  # pandas stores this as float64
    _, x_cat = pre.features(later)
    np.testing.assert_array_equal(x_cat[:, 0], [1, 0, 2])


# ---- evolve ------------------------------------------------------------------------------------------


def test_evolve_appends_new_categories_and_keeps_old_codes(pre: Preprocessor, frame: pd.DataFrame) -> None:
    newer = pd.DataFrame(
        {
            "dist": [1.0] * 4,
            "hour": [1.0] * 4,
            "carrier": ["B6", "AA", "9E", None],
            "origin": ["JFK", "JFK", "LGA", "EWR"],
            "late": [0, 1, 1, 0],
        }
    )
    grown = pre.evolve(newer)

    assert grown.categorical["carrier"] == ("AA", "DL", "UA", "9E", "B6")  # new ones sorted, at the end
    assert grown.categorical["origin"] == ("EWR", "JFK", "LGA")
    assert grown.cardinalities == (6, 4)
    # rows the parent already knew keep exactly their codes
    np.testing.assert_array_equal(grown.features(frame)[1], pre.features(frame)[1])
    np.testing.assert_array_equal(grown.features(newer)[1][:, 0], [5, 1, 4, 0])
    # scaling and labels do not move, and the original is not mutated
    assert grown.numeric == pre.numeric and grown.classes == pre.classes
    assert pre.categorical["carrier"] == ("AA", "DL", "UA")


# ---- serialising ---------------------------------------------------------------------------------


def test_json_round_trip_is_equal(pre: Preprocessor, frame: pd.DataFrame) -> None:
    back = _roundtrip(pre)
    assert back == pre
    for a, b in zip(back.features(frame), pre.features(frame), strict=True):
        np.testing.assert_array_equal(a, b)


def test_json_round_trip_of_regression_and_string_classes() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 4.0], "c": ["a", "b", "a"], "t": [10.0, 20.0, 60.0]})
    reg = Preprocessor.fit(df, "regression", "t", ["x"], ["c"])
    assert _roundtrip(reg) == reg
    labelled = df.assign(t=["red", "green", "blue"])
    multi = Preprocessor.fit(labelled, "multiclass", "t", ["x"], ["c"])
    assert _roundtrip(multi) == multi
    assert multi.classes == ("blue", "green", "red") and multi.n_outputs == 3


# ---- labels --------------------------------------------------------------------------------------


def test_labels_encode_classes_in_output_order(pre: Preprocessor) -> None:
    codes = pre.labels(pd.Series([1, 0, 0, 1]))
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, [1, 0, 0, 1])


def test_labels_raise_on_unseen_values(pre: Preprocessor) -> None:
    with pytest.raises(ValueError, match=r"no output for: \['2', '7'\]"):
        pre.labels(pd.Series([0, 7, 1, 2, 7]))


def test_regression_target_is_standardised_and_decodes_back() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a"] * 4, "t": [10.0, 20.0, 30.0, 60.0]})
    pre = Preprocessor.fit(df, "regression", "t", ["x"], ["c"])
    mean, std = pre.target_scale
    assert mean == pytest.approx(30.0) and std == pytest.approx(np.std(df["t"]))
    assert pre.classes == () and pre.n_outputs == 1
    y = pre.labels(df["t"])
    assert y.dtype == np.float32
    assert y.mean() == pytest.approx(0.0, abs=1e-6) and y.std() == pytest.approx(1.0, rel=1e-6)
    decoded = pre.decode(y)
    assert list(decoded.columns) == ["prediction"]
    np.testing.assert_allclose(decoded["prediction"], df["t"], rtol=1e-5)


# ---- decode ---------------------------------------------------------------------------------------


def test_binary_decode_labels_and_probabilities() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"], "y": ["on_time", "late"]})
    pre = Preprocessor.fit(df, "binary", "y", ["x"], ["c"])
    assert pre.classes == ("late", "on_time")  # sorted: P(positive) is P("on_time")
    out = pre.decode(np.array([0.1, 0.5, 0.9, 0.49], dtype=np.float32))
    assert list(out.columns) == ["prediction", "probability"]
    assert out["prediction"].tolist() == ["late", "on_time", "on_time", "late"]
    np.testing.assert_allclose(out["probability"], [0.1, 0.5, 0.9, 0.49], rtol=1e-6)


def test_multiclass_decode() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"], "y": [2, 0, 1]})
    pre = Preprocessor.fit(df, "multiclass", "y", ["x"], ["c"])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    out = pre.decode(probs)
    assert list(out.columns) == ["prediction", "probability_0", "probability_1", "probability_2"]
    assert out["prediction"].tolist() == [0, 2, 1]
    np.testing.assert_allclose(out[["probability_0", "probability_1", "probability_2"]].to_numpy(), probs)


def test_csv_category_codes_keep_leading_zeros_and_whole_floats_read_as_integers(tmp_path) -> None:
    from rewarm.snapshots import parse

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "gate": ["007", "012", "030", "007"], "y": [0, 1, 0, 1]})
    pre = Preprocessor.fit(frame, "binary", "y", ["x"], ["gate"])
    as_csv = parse(frame.to_csv(index=False).encode(), "rows.csv", GATE_SPEC)
    np.testing.assert_array_equal(pre.features(as_csv)[1][:, 0], [1, 2, 3, 1])
    floats = Preprocessor.fit(pd.DataFrame({"g": [1.0, 1.5, 2.0], "y": [0, 1, 0]}), "binary", "y", [], ["g"])
    alone = floats.features(pd.DataFrame({"g": [1.0]}))[1][0, 0]
    mixed = floats.features(pd.DataFrame({"g": [1.0, 1.5]}))[1][0, 0]
    assert alone == mixed == floats.categorical["g"].index("1") + 1


def test_integer_codes_read_the_same_from_a_csv_pandas_wrote_with_floats() -> None:
    from rewarm.snapshots import parse

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "gate": [1, 2, None, 1], "y": [0, 1, 0, 1]})
    csv = frame.to_csv(index=False).encode()  # the gaps make pandas write 1.0, 2.0, ...
    from_csv = Preprocessor.fit(parse(csv, "a.csv", GATE_SPEC), "binary", "y", ["x"], ["gate"])
    from_frame = Preprocessor.fit(frame, "binary", "y", ["x"], ["gate"])
    assert from_csv.categorical == from_frame.categorical == {"gate": ("1", "2")}
    np.testing.assert_array_equal(from_csv.features(pd.read_csv(io.BytesIO(csv)))[1][:, 0], [1, 2, 0, 1])
    assert from_csv.evolve(pd.DataFrame({"gate": [1, 2]})).categorical == from_csv.categorical


def test_timestamps_are_numbers_in_seconds_whatever_their_unit_or_form() -> None:
    """A datetime listed in data.numeric: Parquet timestamps (any unit, any zone) and ISO 8601 text (a CSV cell,
    a JSON request) read as the same seconds since 1970, so training and serving agree."""
    from rewarm.models.preprocess import numbers

    stamp = pd.Timestamp("2013-01-01 10:00:00", tz="UTC")
    forms = [
        pd.Series([stamp]).dt.as_unit("us"),
        pd.Series([stamp.tz_localize(None)]).dt.as_unit("ns"),
        pd.Series([stamp.tz_convert("America/New_York")]),
        pd.Series(["2013-01-01T10:00:00Z"]),
        pd.Series(["2013-01-01 05:00:00-05:00"], dtype="string"),
    ]
    for form in forms:
        assert numbers(form).tolist() == [stamp.timestamp()]
    assert np.isnan(numbers(pd.Series(["warm", None], dtype=object))).all()
