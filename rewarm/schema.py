"""What a snapshot must look like, as a pandera schema derived from the [data] spec, and the one-line
reasons a snapshot fails it.

Every problem names the column and counts the offending rows. Numbers are checked before they are
converted, so a null (an empty cell, a Parquet null), a NaN, an infinity and a word in a numeric column
each get their own message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow
import pyarrow.compute as pc

from rewarm.config import DataSection
from rewarm.csv_dialect import number_hint, separator_hint
from rewarm.models.labels import as_text as _labels  # labels compared as text: a 0/1 read as float is 0/1
from rewarm.models.preprocess import NAN_PATTERN, not_numbers, numbers

_INF_TEXT = re.compile(r"^[+-]?(inf|infinity)$", re.IGNORECASE)
EXAMPLES = 3  # offending values quoted in a message


@dataclass(frozen=True)
class Problem:
    """One reason a snapshot is rejected."""

    kind: str  # a stable name: missing_columns, dtype, null, nan, infinite, duplicates, ...
    message: str  # without the file name, which the caller puts first
    column: str | None = None
    count: int = 0  # offending rows (or columns, for the column checks)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- looking at values before conversion ----------------------------------------------------------------


def _text(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip()


def null_mask(s: pd.Series) -> pd.Series:
    """True where the value is missing: an empty cell or a null, but not a NaN in a float column."""
    if isinstance(s.dtype, pd.ArrowDtype) or not pd.api.types.is_float_dtype(s.dtype):
        return s.isna()
    return pd.Series(False, index=s.index)  # numpy floats cannot tell NaN from null: counted as NaN


def nan_mask(s: pd.Series) -> pd.Series:
    """True where the value is a NaN (a float NaN, or the text 'nan')."""
    if isinstance(s.dtype, pd.ArrowDtype) and pyarrow.types.is_floating(s.dtype.pyarrow_dtype):
        found = pc.fill_null(pc.is_nan(s.array.__arrow_array__()), False)
        return pd.Series(np.asarray(found), index=s.index)
    if pd.api.types.is_float_dtype(s.dtype):
        return pd.Series(np.isnan(s.to_numpy(np.float64)), index=s.index)
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(False, index=s.index)
    return _text(s).str.fullmatch(NAN_PATTERN, case=False).fillna(False).astype(bool)


def missing_target(s: pd.Series) -> pd.Series:
    """True where a row has no label: a null, an empty cell or a NaN (data.unlabelled rejects or drops it)."""
    return s.isna() | nan_mask(s)


def infinite_mask(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(np.isinf(s.to_numpy(np.float64, na_value=np.nan)), index=s.index)
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(False, index=s.index)
    return _text(s).str.fullmatch(_INF_TEXT.pattern, case=False).fillna(False).astype(bool)


def not_a_number_mask(s: pd.Series) -> pd.Series:
    """True where a present value is not a number at all (text such as 'n/a'); timestamps, and text that reads
    as one (ISO 8601), count as numbers: seconds since 1970."""
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return pd.Series(False, index=s.index)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return pd.Series(False, index=s.index)
    if isinstance(s.dtype, pd.PeriodDtype):
        return ~s.isna()
    return pd.Series(not_numbers(s), index=s.index)  # the rule serving applies to a request's rows too


def as_numbers(s: pd.Series) -> pd.Series:
    """The column as float64 (after validation: nulls and NaN both become NaN)."""
    return pd.Series(numbers(s), index=s.index, name=s.name, dtype="float64")


# ---- the schema ---------------------------------------------------------------------------------------


def _check(kind: str, bad: Callable[[pd.Series], pd.Series]) -> pa.Check:
    """A pandera check named KIND that fails on the rows BAD marks."""
    return pa.Check(lambda s: ~bad(s).astype(bool), name=kind, ignore_na=False)


def numeric_checks(nullable: bool) -> list[pa.Check]:
    checks = [_check("dtype", not_a_number_mask), _check("nan", nan_mask), _check("infinite", infinite_mask)]
    return checks if nullable else [_check("null", null_mask), *checks]


def build(spec: DataSection, classes: tuple = ()) -> pa.DataFrameSchema:
    """The pandera schema of one snapshot under SPEC; CLASSES are the labels the champion knows."""
    columns: dict[str, pa.Column] = {}
    for col in spec.numeric:
        columns[col] = pa.Column(nullable=True, checks=numeric_checks(col in spec.nullable), name=col)
    for col in spec.categorical:
        checks = [] if col in spec.nullable else [_check("null", null_mask)]
        columns[col] = pa.Column(nullable=True, checks=checks, name=col)
    columns[spec.target] = pa.Column(nullable=True, checks=_target_checks(spec, classes), name=spec.target)
    return pa.DataFrameSchema(
        columns,
        strict=spec.extra_columns == "reject",
        name="snapshot",
    )


def _target_checks(spec: DataSection, classes: tuple) -> list[pa.Check]:
    checks = [_check("null", missing_target)]  # a NaN label is a missing one, reported once
    if spec.task == "regression":
        return [*checks, _check("dtype", not_a_number_mask), _check("infinite", infinite_mask)]
    allowed = set(_labels(pd.Series(list(spec.classes), dtype=object)))
    known = set(_labels(pd.Series(list(classes), dtype=object)))  # 0.0 and 1.0 from a float column read as 0, 1
    if allowed:
        checks.append(_check("outside_classes", lambda s: ~missing_target(s) & ~_labels(s).isin(allowed)))
    elif spec.task == "binary" and known:
        checks.append(_check("outside_binary", lambda s: ~missing_target(s) & ~_labels(s).isin(known)))
    return checks


# ---- running it -------------------------------------------------------------------------------------------


def problems(df: pd.DataFrame, spec: DataSection, classes: tuple = ()) -> list[Problem]:
    """Everything wrong with DF under SPEC, most fundamental first; [] when it can be trained on."""
    if len(df) == 0:
        return [Problem("empty", "the file has a header but no rows; land it again once it holds data")]
    schema = build(spec, classes)
    try:
        schema.validate(df, lazy=True)
        found: list[Problem] = []
    except pa.errors.SchemaErrors as exc:
        found = _explain(exc.failure_cases, df, spec, classes)
    found += _whole_frame(df, spec, {p.kind for p in found if p.column == spec.target}, classes)
    order = list(MESSAGES)
    return sorted(found, key=lambda p: order.index(p.kind) if p.kind in order else len(order))


def _explain(cases: pd.DataFrame, df: pd.DataFrame, spec: DataSection, classes: tuple) -> list[Problem]:
    found: list[Problem] = []
    missing = sorted(cases.loc[cases["check"] == "column_in_dataframe", "failure_case"].astype(str))
    extra = sorted(cases.loc[cases["check"] == "column_in_schema", "failure_case"].astype(str))
    named = len([*spec.numeric, *spec.categorical, spec.target])
    if missing and extra and len(missing) < named:  # some spec columns present, some replaced: a rename
        found.append(Problem("renamed_columns", MESSAGES["renamed_columns"](missing, extra, spec), None, len(missing)))
    elif missing:
        message = MESSAGES["missing_columns"](missing, list(df.columns)) + (
            separator_hint(str(df.columns[0]), configured=spec.separator) if len(df.columns) == 1 else ""
        )
        found.append(Problem("missing_columns", message, None, len(missing)))
    elif extra:
        found.append(Problem("extra_columns", MESSAGES["extra_columns"](extra), None, len(extra)))
    rows = cases[cases["schema_context"] == "Column"]
    for (column, kind), group in rows.groupby(["column", "check"], sort=False):
        values = [str(v) for v in pd.unique(group["failure_case"].astype(str))]
        count = len(group)
        is_target = column == spec.target
        found.append(Problem(kind, MESSAGES[kind](column, count, values, spec, classes, is_target), column, count))
    return found


def _whole_frame(df: pd.DataFrame, spec: DataSection, already: set[str], classes: tuple) -> list[Problem]:
    """Checks on the snapshot as a whole: classes present (one class only where no model knows CLASSES yet), and
    enough rows to split. ALREADY: the target's problems (a null or out-of-range label voids a class count)."""
    found = []
    if spec.task != "regression" and spec.target in df.columns and not already & {"null", "outside_binary"}:
        labels = pd.unique(_labels(df[spec.target]).dropna())
        if spec.task == "binary" and len(labels) > 2 and not spec.classes:
            found.append(Problem("outside_binary", _binary_values(spec.target, labels, df), spec.target, len(df)))
        elif len(labels) == 1 and len(classes) < 2:
            found.append(Problem("single_class", _single(spec.target, labels[0], len(df)), spec.target, len(df)))
    if len(df) < spec.min_rows:
        found.append(Problem("too_small", MESSAGES["too_small"](len(df), spec), None, len(df)))
    return found + _repeats(df, spec)


def _repeats(df: pd.DataFrame, spec: DataSection) -> list[Problem]:
    """A file concatenated with itself (always), and plain repeats above data.max_duplicate_fraction (if set)."""
    from rewarm import repeats

    columns = [spec.target, *spec.numeric, *spec.categorical]
    why = repeats.repeats_itself(repeats.frame_rows(df, columns))
    if why is not None:
        return [Problem("repeated_file", MESSAGES["repeated_file"](why, len(df)), None, len(df))]
    if spec.max_duplicate_fraction < 1.0:
        count = int(df.duplicated(keep="first").sum())
        if count > spec.max_duplicate_fraction * len(df):
            return [Problem("duplicates", MESSAGES["duplicates"](count, len(df), spec), None, count)]
    return []


def _quote(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:EXAMPLES])
    return shown + (", ..." if len(values) > EXAMPLES else "")


def _feature_hint(column: str, spec: DataSection, is_target: bool) -> str:
    if is_target:
        return 'drop or relabel those rows, or set data.unlabelled = "drop" to train on the labelled rows only'
    return f"fill them or drop those rows, or list {column!r} in data.nullable"


def _binary_values(target: str, labels, df: pd.DataFrame) -> str:
    counts = _labels(df[target]).value_counts()
    shown = ", ".join(f"{v!r} ({counts[v]} rows)" for v in sorted(map(str, labels))[:6])
    return (
        f"target {target!r} takes {len(labels)} distinct values ({shown}) but a binary task allows two; "
        'fix the labels, or set data.task = "multiclass" under a new model name'
    )


def _single(target: str, label: object, rows: int) -> str:
    return (
        f"target {target!r} has a single class ({str(label)!r}) in all {rows} rows; a first model cannot learn from "
        "one class: land a snapshot that holds every class first (once a model exists, retry this one: it is admitted)"
    )


UNNAMED = " ('Unnamed: N' is a column without a name, most often the row index to_csv writes: write index=False)"


def _spaced(names: list, missing: list[str]) -> str:
    """Where a missing column is one of NAMES with spaces around it, say so."""
    return "; the file's names have spaces around them" if {str(n).strip() for n in names} & set(missing) else ""


MESSAGES: dict[str, Callable[..., str]] = {
    "missing_columns": lambda missing, has: (
        f"missing column(s) {missing} named in the [data] spec; the file has {has}: add them, or change [data]"
        + _spaced(has, missing)
    ),
    "renamed_columns": lambda missing, extra, spec: (
        f"column(s) {missing} named in the [data] spec are missing and {extra} are not in it: renamed? "
        "rename them back in the file, or update [data] in rewarm.toml" + _spaced(extra, missing)
    ),
    "extra_columns": lambda extra: (
        f"{len(extra)} column(s) not in the [data] spec: {extra}; drop them, list them as features, "
        'or set data.extra_columns = "ignore"' + (UNNAMED if any(str(e).startswith("Unnamed: ") for e in extra) else "")
    ),
    "dtype": lambda column, count, values, spec, classes, is_target: (
        f"column {column!r} must hold numbers but {count} row(s) hold other values ({_quote(values)})"
        + (number_hint(values, spec.decimal) or "; fix those values")
        + ("" if is_target else f", or list {column!r} under data.categorical")
    ),
    "null": lambda column, count, values, spec, classes, is_target: (
        f"target column {column!r} has {count} missing value(s) (empty, null or NaN): rows without a label, and "
        f"the spec allows none; {_feature_hint(column, spec, is_target)}"
        if is_target
        else f"column {column!r} has {count} null (missing) value(s) and the spec allows none; "
        f"{_feature_hint(column, spec, is_target)}"
    ),
    "nan": lambda column, count, values, spec, classes, is_target: (
        f"column {column!r} has {count} NaN value(s), which are not numbers; write missing values as empty "
        "(null) and list the column in data.nullable, or drop those rows"
    ),
    "infinite": lambda column, count, values, spec, classes, is_target: (
        f"column {column!r} has {count} infinite value(s) ({_quote(values)}); clip or drop those rows"
    ),
    "outside_classes": lambda column, count, values, spec, classes, is_target: (
        f"target {column!r} has {count} row(s) with label(s) {sorted(values)} outside data.classes "
        f"{sorted(str(c) for c in spec.classes)}; relabel them, or add the label to data.classes"
    ),
    "outside_binary": lambda column, count, values, spec, classes, is_target: (
        f"target {column!r} has {count} row(s) with value(s) {sorted(values)} outside the binary model's two "
        f"classes {sorted(str(c) for c in classes)}; relabel them"
    ),
    "single_class": _single,
    "repeated_file": lambda why, rows: (
        f"the file repeats itself: {why}; it was written twice over: land one copy of its rows"
    ),
    "duplicates": lambda count, rows, spec: (
        f"{count} duplicate row(s), {count / rows:.1%} of {rows}, above data.max_duplicate_fraction="
        f"{spec.max_duplicate_fraction}; remove the repeats, or raise the limit (1.0: no limit) if they are real"
    ),
    "too_small": lambda rows, spec: (
        f"{rows} rows, fewer than data.min_rows={spec.min_rows} needed to split into training, validation and "
        "holdout rows; land a larger snapshot"
        + (f", or set data.min_rows to {rows} or fewer if your snapshots are this small" if rows >= 10 else "")
    ),
}
