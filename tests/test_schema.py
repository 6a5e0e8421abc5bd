"""What a snapshot must look like (rewarm/schema.py): one problem per kind, read from real CSV and Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rewarm.config import DataSection
from rewarm.demo_data import DEMO_TOML
from rewarm.errors import SnapshotRejected
from rewarm.schema import Problem, problems
from rewarm.snapshots import read_bytes, read_raw, validate

SPEC = DataSection(target="late", task="binary", numeric=("dist", "temp"), categorical=("carrier",), min_rows=10)
HEADER = "dist,temp,carrier,late"


def spec(**changes: object) -> DataSection:
    """SPEC with some keys changed, validated like a rewarm.toml would be."""
    return DataSection(**{**SPEC.model_dump(), **changes})


def good_lines(n: int = 12, label=lambda i: i % 2) -> list[str]:
    """N distinct valid CSV rows; LABEL(i) gives row i's target (both classes by default)."""
    return [f"{100 + 10 * i},{20 + i}.5,{'AA' if i % 2 else 'UA'},{label(i)}" for i in range(n)]


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def good_columns(n: int = 12) -> dict[str, pa.Array]:
    """Columns of N distinct valid rows, typed as a Parquet writer would type them."""
    return {
        "dist": pa.array([100.0 + 10 * i for i in range(n)]),
        "temp": pa.array([20.5 + i for i in range(n)]),
        "carrier": pa.array(["AA" if i % 2 else "UA" for i in range(n)]),
        "late": pa.array([i % 2 for i in range(n)], pa.int64()),
    }


def write_parquet(path: Path, **columns: pa.Array) -> Path:
    """A Parquet file of good_columns() with COLUMNS replacing some of them."""
    pq.write_table(pa.table({**good_columns(), **columns}), path)
    return path


def check(path: Path, spec: DataSection = SPEC, classes: tuple = ()) -> list[Problem]:
    """The problems of the file at PATH, read the way a landed snapshot is read."""
    return problems(read_raw(path.read_bytes(), str(path), spec), spec, classes)


def summary(found: list[Problem]) -> list[tuple[str, str | None, int]]:
    return [(p.kind, p.column, p.count) for p in found]


def test_good_files_have_no_problems(tmp_path: Path) -> None:
    assert check(write_csv(tmp_path / "ok.csv", good_lines())) == []
    assert check(write_parquet(tmp_path / "ok.parquet")) == []


# ---- numbers: dtype, null, nan, infinite --------------------------------------------------------------


def test_words_in_a_numeric_column_are_a_dtype_problem_with_the_values_quoted(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0], lines[3] = "100,warm,AA,1", "130,cold,AA,1"
    [found] = check(write_csv(tmp_path / "words.csv", lines))
    assert summary([found]) == [("dtype", "temp", 2)]
    assert "column 'temp' must hold numbers but 2 row(s) hold other values ('warm', 'cold')" in found.message
    assert "list 'temp' under data.categorical" in found.message


@pytest.mark.parametrize(
    ("cells", "says"),
    [
        (
            ['"1,230"', '"2,001.5"'],
            "written with separators ('1,234', '12,5', '1.234,5', '1 234'): write a decimal point",
        ),
        (['"20,5"', '"21,5"'], "written with separators"),  # a European spreadsheet's decimal comma, quoted
        (['"1.230,5"', "1 230"], "written with separators"),
        (["20.5%", "21%"], "written as percentages: write the number alone (12.5, or 0.125)"),
        (["$20", "$21.5"], "written with a currency sign: write the number alone"),
        (["03/15/2013", "03/16/2013"], "look like dates or times not written in ISO 8601: write them as 2013-03-15"),
        (["warm", "cold"], "hold other values ('warm', 'cold'); fix those values, or list 'temp' under"),
    ],
)
def test_numbers_written_as_people_write_them_get_a_hint(tmp_path: Path, cells: list[str], says: str) -> None:
    lines = good_lines()
    lines[0], lines[3] = f"100,{cells[0]},AA,1", f"130,{cells[1]},AA,1"
    [found] = check(write_csv(tmp_path / "written.csv", lines))
    assert summary([found]) == [("dtype", "temp", 2)]
    assert says in found.message and found.message.endswith("or list 'temp' under data.categorical")


def test_a_dtype_message_quotes_three_values_at_most(tmp_path: Path) -> None:
    lines = good_lines()
    for i, word in enumerate(["a", "b", "c", "d"]):
        lines[i] = f"{100 + 10 * i},{word},AA,{i % 2}"
    [found] = check(write_csv(tmp_path / "words.csv", lines))
    assert found.count == 4
    assert "('a', 'b', 'c', ...)" in found.message and "'d'" not in found.message


@pytest.mark.parametrize(
    ("line", "column"), [("100,,AA,1", "temp"), ("100,20.5,,1", "carrier")], ids=["numeric", "categorical"]
)
def test_an_empty_csv_cell_is_a_null(tmp_path: Path, line: str, column: str) -> None:
    lines = good_lines()
    lines[0] = line
    [found] = check(write_csv(tmp_path / "gap.csv", lines))
    assert summary([found]) == [("null", column, 1)]
    assert f"column {column!r} has 1 null (missing) value(s)" in found.message
    assert f"list {column!r} in data.nullable" in found.message


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("temp", pa.array([None, *[20.5 + i for i in range(11)]], pa.float64())),
        ("dist", pa.array([None, *[100 + 10 * i for i in range(11)]], pa.int64())),
        ("carrier", pa.array([None, *["AA", "UA"] * 5, "AA"])),
    ],
    ids=["float", "int", "string"],
)
def test_a_parquet_null_is_a_null(tmp_path: Path, column: str, values: pa.Array) -> None:
    path = write_parquet(tmp_path / "gap.parquet", **{column: values})
    assert summary(check(path)) == [("null", column, 1)]


def test_the_text_nan_in_a_csv_numeric_column_is_a_nan_not_a_null(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0], lines[2], lines[4] = "100,nan,AA,0", "120,NaN,AA,0", "140,-nan,UA,0"
    [found] = check(write_csv(tmp_path / "nan.csv", lines))
    assert summary([found]) == [("nan", "temp", 3)]
    assert "column 'temp' has 3 NaN value(s)" in found.message


def test_a_parquet_nan_and_a_parquet_null_are_told_apart(tmp_path: Path) -> None:
    # from_pandas=False: pyarrow keeps the NaN a NaN instead of turning it into a null.
    temp = pa.array([float("nan"), None, *[20.5 + i for i in range(10)]], from_pandas=False)
    assert (temp.null_count, pc.is_nan(temp).true_count) == (1, 1)
    found = check(write_parquet(tmp_path / "nan.parquet", temp=temp))
    assert summary(found) == [("null", "temp", 1), ("nan", "temp", 1)]


def test_csv_infinities_are_infinite(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0], lines[1], lines[2] = "inf,20.5,AA,0", "-inf,21.5,AA,1", "Infinity,22.5,AA,0"
    [found] = check(write_csv(tmp_path / "inf.csv", lines))
    assert summary([found]) == [("infinite", "dist", 3)]
    assert "column 'dist' has 3 infinite value(s) ('inf', '-inf', 'Infinity')" in found.message


def test_parquet_infinities_are_infinite(tmp_path: Path) -> None:
    dist = pa.array([float("inf"), float("-inf"), *[100.0 + 10 * i for i in range(10)]])
    [found] = check(write_parquet(tmp_path / "inf.parquet", dist=dist))
    assert summary([found]) == [("infinite", "dist", 2)]
    assert "('inf', '-inf')" in found.message


# ---- data.nullable ------------------------------------------------------------------------------------


def test_nullable_lets_csv_nulls_through_for_that_column_only(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0], lines[1], lines[2] = "100,,AA,1", "110,,UA,0", ",22.5,,0"
    found = check(write_csv(tmp_path / "gaps.csv", lines), spec(nullable=("temp",)))
    assert summary(found) == [("null", "dist", 1), ("null", "carrier", 1)]


@pytest.mark.parametrize(
    "values",
    [
        pa.array([None, None, *[100.0 + 10 * i for i in range(10)]], pa.float64()),
        pa.array([None, None, *[100 + 10 * i for i in range(10)]], pa.int64()),
    ],
    ids=["float", "int"],
)
def test_nullable_lets_parquet_nulls_through(tmp_path: Path, values: pa.Array) -> None:
    path = write_parquet(tmp_path / "gaps.parquet", dist=values)
    assert check(path, spec(nullable=("dist",))) == []


def test_a_nullable_csv_column_still_rejects_nan_and_infinity(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0], lines[1], lines[2] = "100,,AA,1", "110,nan,UA,0", "120,-inf,AA,0"
    found = check(write_csv(tmp_path / "bad.csv", lines), spec(nullable=("temp",)))
    assert summary(found) == [("nan", "temp", 1), ("infinite", "temp", 1)]


def test_a_nullable_parquet_column_still_rejects_nan_and_infinity(tmp_path: Path) -> None:
    temp = pa.array([None, float("nan"), float("inf"), *[20.5 + i for i in range(9)]], from_pandas=False)
    found = check(write_parquet(tmp_path / "bad.parquet", temp=temp), spec(nullable=("temp",)))
    assert summary(found) == [("nan", "temp", 1), ("infinite", "temp", 1)]


# ---- columns ------------------------------------------------------------------------------------------


def test_a_missing_column_is_named_with_the_columns_the_file_has(tmp_path: Path) -> None:
    lines = [line.split(",", 1)[1] for line in good_lines()]
    [found] = check(write_csv(tmp_path / "nodist.csv", lines, header="temp,carrier,late"))
    assert summary([found]) == [("missing_columns", None, 1)]
    assert "missing column(s) ['dist']" in found.message
    assert "the file has ['temp', 'carrier', 'late']" in found.message


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_a_csv_with_another_separator_says_so(tmp_path: Path, sep: str, name: str) -> None:
    lines = [line.replace(",", sep) for line in good_lines()]
    [found] = check(write_csv(tmp_path / "europe.csv", lines, header=HEADER.replace(",", sep)))
    assert found.kind == "missing_columns"
    assert f"the file looks {name}-separated: rewarm reads comma-separated CSV" in found.message
    fix = "name it .tsv (.tsv.gz compressed)" if sep == "\t" else "set data.separator = ';' in rewarm.toml"
    assert f"(data.separator), so {fix}, or save it as Parquet" in found.message
    [plain] = check(write_csv(tmp_path / "nodist.csv", [x.split(",", 1)[1] for x in good_lines()], "temp,carrier,late"))
    assert "separated" not in plain.message  # a file that is merely missing a column gets no such hint


def test_a_semicolon_csv_with_decimal_commas_says_so_too(tmp_path: Path) -> None:
    """The usual European export: semicolons between fields, commas in numbers, so rows split unevenly."""
    rows = ["1;20,5;AA;0", "2;21;B6;1", "3;19,25;UA;0"]
    path = write_csv(tmp_path / "europe.csv", rows, header=HEADER.replace(",", ";"))
    try:
        found = check(path)
    except SnapshotRejected as exc:  # the parser cannot split the rows
        message = str(exc)
    else:
        message = " ".join(p.message for p in found)
    assert "the file looks semicolon-separated: rewarm reads comma-separated CSV" in message


def test_an_extra_column_is_rejected_unless_extra_columns_is_ignore(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wide.csv", [f"{line},x" for line in good_lines()], header=f"{HEADER},note")
    [found] = check(path)
    assert summary([found]) == [("extra_columns", None, 1)]
    assert "1 column(s) not in the [data] spec: ['note']" in found.message
    assert "Unnamed" not in found.message
    assert check(path, spec(extra_columns="ignore")) == []


def test_a_row_index_written_by_pandas_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "indexed.csv"
    pd.read_csv(write_csv(tmp_path / "plain.csv", good_lines())).to_csv(path)  # to_csv's default keeps the index
    [found] = check(path)
    assert summary([found]) == [("extra_columns", None, 1)]
    assert "['Unnamed: 0']" in found.message and "the row index to_csv writes: write index=False" in found.message


def test_one_missing_and_one_extra_column_read_as_a_rename(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "renamed.csv", good_lines(), header="distance,temp,carrier,late")
    [found] = check(path)
    assert summary([found]) == [("renamed_columns", None, 1)]
    assert "column(s) ['dist'] named in the [data] spec are missing and ['distance'] are not in it" in found.message
    assert "spaces" not in found.message


def test_every_name_with_spaces_around_it_is_named_as_such(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "spaced.csv", good_lines(), header=" dist, temp, carrier, late")
    [found] = check(path)
    assert found.kind == "missing_columns" and found.message.endswith("; the file's names have spaces around them")


def test_names_with_spaces_around_them_are_named_as_such(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "spaced.csv", good_lines(), header=" dist ,temp,carrier,late")
    [found] = check(path)
    assert summary([found]) == [("renamed_columns", None, 1)]
    assert "['dist'] named in the [data] spec are missing and [' dist '] are not in it" in found.message
    assert found.message.endswith("; the file's names have spaces around them")


# ---- the target ---------------------------------------------------------------------------------------


def test_a_binary_target_with_three_values_and_no_known_classes(tmp_path: Path) -> None:
    [found] = check(write_csv(tmp_path / "three.csv", good_lines(label=lambda i: i % 3)))
    assert summary([found]) == [("outside_binary", "late", 12)]
    assert "target 'late' takes 3 distinct values ('0' (4 rows), '1' (4 rows), '2' (4 rows))" in found.message


def test_a_binary_target_value_outside_the_known_classes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "three.csv", good_lines(label=lambda i: i % 3))
    [found] = check(path, classes=(0, 1))
    assert summary([found]) == [("outside_binary", "late", 4)]
    assert "value(s) ['2'] outside the binary model's two classes ['0', '1']" in found.message


def test_a_zero_one_target_stored_as_floats_matches_known_integer_classes(tmp_path: Path) -> None:
    late = pa.array([float(i % 2) for i in range(12)])
    assert check(write_parquet(tmp_path / "floats.parquet", late=late), classes=(0, 1)) == []


def test_a_multiclass_label_the_model_has_never_seen_is_admitted(tmp_path: Path) -> None:
    """Undeclared (no data.classes), a new label is a class the stream has grown: the output layer grows by
    appending (rewarm/rounds.py, test_new_classes.py). A binary target still takes two (above)."""
    path = write_csv(tmp_path / "abcd.csv", good_lines(label=lambda i: "abcd"[i % 4]))
    assert check(path, spec(task="multiclass"), classes=("a", "b")) == []


def test_a_multiclass_label_outside_data_classes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "abcd.csv", good_lines(label=lambda i: "abcd"[i % 4]))
    [found] = check(path, spec(task="multiclass", classes=("a", "b", "c")))
    assert summary([found]) == [("outside_classes", "late", 3)]
    assert "label(s) ['d'] outside data.classes ['a', 'b', 'c']" in found.message


def test_a_binary_label_outside_data_classes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "three.csv", good_lines(label=lambda i: i % 3))
    [found] = check(path, spec(classes=(0, 1)))
    assert summary([found]) == [("outside_classes", "late", 4)]
    assert "label(s) ['2'] outside data.classes ['0', '1']" in found.message


def test_a_single_class_cannot_be_trained_on(tmp_path: Path) -> None:
    [found] = check(write_csv(tmp_path / "ones.csv", good_lines(label=lambda i: 1)))
    assert summary([found]) == [("single_class", "late", 12)]
    assert "target 'late' has a single class ('1') in all 12 rows" in found.message


def test_a_single_class_is_valid_once_a_model_knows_the_classes(tmp_path: Path) -> None:
    """A day without a late flight, after the first model: admitted (rewarm.advice.one_class says what its round
    can decide); only a first model needs both classes."""
    assert check(write_csv(tmp_path / "ones.csv", good_lines(label=lambda i: 1)), classes=("0", "1")) == []


def test_a_null_feature_does_not_hide_a_single_class_target(tmp_path: Path) -> None:
    lines = good_lines(label=lambda i: 1)
    lines[0] = "100,,AA,1"
    found = check(write_csv(tmp_path / "ones.csv", lines))
    assert summary(found) == [("null", "temp", 1), ("single_class", "late", 12)]


def test_unseen_categories_in_features_are_not_a_problem(tmp_path: Path) -> None:
    lines = [line.replace(",AA,", ",ZZ-never-seen,") for line in good_lines()]
    assert check(write_csv(tmp_path / "new.csv", lines), classes=(0, 1)) == []


# ---- the whole file -----------------------------------------------------------------------------------


def test_plain_repeats_are_data_unless_a_limit_is_set(tmp_path: Path) -> None:
    lines = good_lines(100)
    lines[1], lines[3] = lines[0], lines[2]  # 2 repeats in 100 rows
    path = write_csv(tmp_path / "two.csv", lines)
    assert check(path) == []  # the default: natural repeats are data
    assert check(path, spec(max_duplicate_fraction=0.05)) == []
    [found] = check(path, spec(max_duplicate_fraction=0.01))
    assert summary([found]) == [("duplicates", None, 2)]
    assert "2 duplicate row(s), 2.0% of 100, above data.max_duplicate_fraction=0.01" in found.message


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
def test_a_file_concatenated_with_itself_is_rejected_whatever_the_limit(tmp_path: Path, shuffle: bool) -> None:
    lines = good_lines(60) * 2
    if shuffle:
        lines = [lines[i] for i in np.random.default_rng(0).permutation(len(lines))]
    [found] = check(write_csv(tmp_path / "twice.csv", lines))
    assert summary([found]) == [("repeated_file", None, 120)]
    expected = "are 2 copies of the first 60 in order" if not shuffle else "occurs a multiple of 2 times"
    assert expected in found.message and "written twice over" in found.message


def test_a_file_with_a_block_pasted_twice_is_rejected(tmp_path: Path) -> None:
    lines = good_lines(100)
    lines = lines[:20] + lines[20:90] + lines[20:90] + lines[90:]  # an append that ran twice
    [found] = check(write_csv(tmp_path / "pasted.csv", lines))
    assert found.kind == "repeated_file" and "runs of 8 rows occur more than once" in found.message


def test_low_cardinality_data_that_repeats_by_nature_passes(tmp_path: Path) -> None:
    """Every row repeats (3 carriers x 2 distances x 2 temps x 2 labels), and the file arrives sorted."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "dist": rng.choice([100, 200], 500),
            "temp": rng.choice([1.5, 2.5], 500),
            "carrier": rng.choice(["AA", "UA", "DL"], 500),
            "late": rng.integers(0, 2, 500),
        }
    )
    assert check(write_csv(tmp_path / "random.csv", [",".join(map(str, r)) for r in frame.values])) == []
    ordered = frame.sort_values(list(frame.columns))
    assert check(write_csv(tmp_path / "sorted.csv", [",".join(map(str, r)) for r in ordered.values])) == []


def test_a_header_only_csv_is_empty(tmp_path: Path) -> None:
    [found] = check(write_csv(tmp_path / "header.csv", []))
    assert summary([found]) == [("empty", None, 0)]
    assert "header but no rows" in found.message


def test_too_few_rows(tmp_path: Path) -> None:
    [found] = check(write_csv(tmp_path / "tiny.csv", good_lines(3)))
    assert summary([found]) == [("too_small", None, 3)]
    assert "3 rows, fewer than data.min_rows=10" in found.message
    assert "data.min_rows to" not in found.message  # 10 is its lowest: lowering it cannot help


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("jan.xlsx", b"a,b\n1,2\n", "format"),
        ("jan.csv", b"", "empty"),
        ("jan.parquet", b"PAR1 not a parquet file PAR1", "unreadable"),
    ],
    ids=["format", "empty", "unreadable"],
)
def test_files_that_cannot_be_read_say_why_in_their_kind(tmp_path: Path, name: str, data: bytes, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SnapshotRejected) as info:
        read_raw(path.read_bytes(), str(path), SPEC)
    assert info.value.kind == kind
    assert str(info.value).startswith(f"{path}: ")


def test_a_missing_file_has_kind_missing(tmp_path: Path) -> None:
    with pytest.raises(SnapshotRejected) as info:
        read_bytes(str(tmp_path / "gone.csv"))
    assert info.value.kind == "missing"
    assert str(info.value).startswith(f"{tmp_path / 'gone.csv'}: ")


# ---- reporting ----------------------------------------------------------------------------------------


def broken_file(tmp_path: Path) -> Path:
    """A CSV with a renamed column, a word, a null, an infinity and repeated rows, in that file order."""
    lines = good_lines(20)
    lines[0], lines[1], lines[2] = "100,20.5,AA,0", "100,20.5,AA,0", "100,20.5,AA,0"  # 2 repeats: 10%
    lines[5], lines[6], lines[7] = "150,inf,UA,1", "160,,UA,0", "170,warm,AA,1"
    return write_csv(tmp_path / "broken.csv", lines, header="distance,temp,carrier,late")


def test_problems_come_most_fundamental_first(tmp_path: Path) -> None:
    found = check(broken_file(tmp_path), spec(max_duplicate_fraction=0.01))
    assert summary(found) == [
        ("renamed_columns", None, 1),
        ("dtype", "temp", 1),
        ("null", "temp", 1),
        ("infinite", "temp", 1),
        ("duplicates", None, 2),
    ]


def test_a_rejection_names_the_file_first_then_three_problems(tmp_path: Path) -> None:
    path = broken_file(tmp_path)
    strict = spec(max_duplicate_fraction=0.01)
    raw = read_raw(path.read_bytes(), str(path), strict)
    with pytest.raises(SnapshotRejected) as info:
        validate(raw, strict, str(path))
    found = problems(raw, strict)
    assert info.value.problems == tuple(found) and len(found) == 5
    assert info.value.kind == "renamed_columns"
    shown = "; ".join(p.message for p in found[:3])
    assert str(info.value) == f"{path}: {shown} (and 2 more problem(s))"


# ---- real data ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_real_demo_month_has_no_problems(tmp_path: Path, flights: pd.DataFrame, suffix: str) -> None:
    month = flights[flights["month"] == 1].drop(columns="month")
    assert 0 < month.duplicated().mean() < 0.01  # real repeats
    path = tmp_path / f"2013-01{suffix}"
    if suffix == ".csv":
        month.to_csv(path, index=False)
    else:
        month.to_parquet(path, index=False)
    assert check(path, DataSection(**DEMO_TOML["data"])) == []


def test_a_timestamp_column_listed_as_numeric_is_accepted(tmp_path: Path) -> None:
    stamps = pd.date_range("2013-01-01", periods=12, freq="h", tz="UTC")
    frame = pd.DataFrame({"dist": stamps, "temp": np.arange(12) + 0.5, "carrier": ["AA", "UA"] * 6, "late": [0, 1] * 6})
    path = tmp_path / "stamps.parquet"
    frame.to_parquet(path, index=False)
    assert check(path) == []
    frame.to_csv(tmp_path / "stamps.csv", index=False)  # ISO 8601 text
    assert check(tmp_path / "stamps.csv") == []
    frame["dist"] = frame["dist"].astype(str).where(frame.index != 3, "someday")
    frame.to_csv(tmp_path / "word.csv", index=False)
    [found] = check(tmp_path / "word.csv")
    assert summary([found]) == [("dtype", "dist", 1)] and "'someday'" in found.message
