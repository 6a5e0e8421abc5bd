"""What a valid snapshot suggests was not meant: warnings with what to do, never a rejection."""

from __future__ import annotations

import pandas as pd

from rewarm.config import DataSection
from rewarm.models.labels import as_text

ID_MIN_ROWS = 100  # below this many rows, a column of distinct values can be a real category by chance
ID_SHARE = 0.9  # a categorical column with this share of distinct values (or more) is read as an identifier


def identifiers(df: pd.DataFrame, spec: DataSection) -> dict[str, tuple[int, int]]:
    """Categorical columns of DF that look like row identifiers (an order number, a customer id, a name): at least
    ID_SHARE of their values distinct over at least ID_MIN_ROWS rows. Column -> (distinct values, rows)."""
    if len(df) < ID_MIN_ROWS:
        return {}
    found = {}
    for column in spec.categorical:
        values = df[column].dropna()
        if len(values) < ID_MIN_ROWS or values.nunique() < ID_SHARE * len(values):
            continue  # the usual case, decided without text: spellings of one code (1, 1.0) only merge values
        distinct = as_text(values).nunique()
        if distinct >= ID_SHARE * len(values):
            found[column] = (distinct, len(values))
    return found


def identifier_note(name: str, column: str, distinct: int, rows: int) -> str:
    """Why an identifier-like category column helps no model, and what to do."""
    return (
        f"{name}: categorical column {column!r} has {distinct} distinct value(s) in {rows} row(s), like an identifier: "
        "a value the model never saw scores as unknown, so it cannot help on new rows, and each snapshot grows its "
        f"embedding by as many rows; if it is an id, leave {column!r} out of data.categorical "
        '(with extra_columns = "ignore" the files may keep it)'
    )


def one_class(df: pd.DataFrame, spec: DataSection, classes: tuple) -> str:
    """Where a snapshot's labels are all one class of a model that knows CLASSES (a day without a rare event, a
    file sorted by its label): why it is admitted, and what its round can and cannot decide; '' otherwise."""
    if spec.task == "regression" or len(classes) < 2 or spec.target not in df:
        return ""
    labels = as_text(df[spec.target].dropna()).unique()
    if len(labels) != 1:
        return ""
    return (
        f"every one of its {len(df)} row(s) has {spec.target!r} = {labels[0]!r}: admitted, as the model knows "
        f"{len(classes)} classes, and trained on from now on; but its holdout holds one class, on which no metric "
        "can compare models (roc_auc is undefined; log loss and accuracy favour whichever predicts only that class), "
        "so the champion is kept this round (a rare class: land several days' rows as one snapshot)"
    )
