"""Class labels and categories as text, the one way rewarm compares them: 1, 1.0 and "1" are one label, "007"
keeps its zeros. Part of the package copied into every logged model (numpy and pandas only)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def plain(value: object) -> object:
    """Turn numpy scalars into JSON-friendly Python values."""
    return value.item() if isinstance(value, np.generic) else value


def sorted_order(labels: tuple) -> list[int]:
    """The indices of LABELS in sorted order (as text where they cannot be compared)."""
    try:
        return sorted(range(len(labels)), key=lambda i: labels[i])
    except TypeError:
        return sorted(range(len(labels)), key=lambda i: str(labels[i]))


def texts(labels: tuple) -> list[str]:
    """LABELS as as_text writes a column holding them."""
    return as_text(pd.Series(list(labels), dtype=object)).tolist()


def as_text(values: pd.Series) -> pd.Series:
    """Categories as strings, value by value: a whole number is written as an integer ('1', never '1.0'),
    so a code reads the same whatever else is in the batch and however the file was read."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & np.isfinite(values) & (values == values.round()) & (values.abs() < 2**53)
        text = values.astype("string")
        text[whole] = values[whole].astype("int64").astype("string")
        return text
    if pd.api.types.is_object_dtype(values.dtype):
        values = values.map(one_text, na_action="ignore")
    # "1.0" read as text from a CSV that pandas wrote for a float column is the code "1" ("007" stays "007").
    return values.astype("string").str.replace(r"^([+-]?\d+)\.0+$", r"\1", regex=True)


def one_text(value: object) -> str:
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def new_labels(known: tuple, values: pd.Series, keep_order: bool = False) -> tuple:
    """The labels among VALUES that KNOWN lacks (compared as text; one per text), as values of KNOWN's type where
    they read as one (3 beside integer labels, '3' beside text labels), sorted unless KEEP_ORDER."""
    text = as_text(values)
    fresh = (text.notna() & ~text.isin(set(texts(known)))).to_numpy(bool)
    found: dict[str, object] = {}
    for value, written in zip(values[fresh], text[fresh], strict=True):
        found.setdefault(written, _like(known, written, plain(value)))
    labels = list(found.values())
    return tuple(labels if keep_order else sorted(labels, key=str))


def _like(known: tuple, written: str, value: object) -> object:
    """VALUE (written WRITTEN) as a label of the same type as the KNOWN ones, so the predictions hold one type."""
    kinds = {type(c) for c in known}
    if kinds == {str}:
        return written
    if kinds == {int} and written.lstrip("+-").isdigit():
        return int(written)
    if kinds == {float}:
        try:
            return float(written)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # a whole float (a code column read as floats) is the integer label
    return value
