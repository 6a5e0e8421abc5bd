"""Numbers from the raw rows: per round (mean ± std over seeds) and totals (cumulative seconds, ratios to cold).

Everything here is computed from the rows alone, so the tables and plots can be rebuilt from the raw CSV.
Totals cover the retrain rounds (2 onwards): round 1 is the same cold start for every arm.
"""

from __future__ import annotations

import pandas as pd

from rewarm.metrics import HIGHER_IS_BETTER

REFERENCE = "cold"


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def per_round(df: pd.DataFrame) -> pd.DataFrame:
    """Per stream, arm and round: the metric's mean and std over seeds, mean seconds, epochs and samples."""
    grouped = df.groupby(["stream", "arm", "round"], sort=True)
    out = grouped.agg(
        snapshot=("snapshot", "first"),
        value_mean=("value", "mean"),
        value_std=("value", lambda v: v.std(ddof=0)),
        seconds=("seconds", "mean"),
        epochs=("epochs", "mean"),
        samples_seen=("samples_seen", "mean"),
        seeds=("seed", "nunique"),
    )
    return out.reset_index()


def totals(df: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per stream and arm, over rounds 2+: cumulative training seconds and samples (mean ± std over seeds),
    their ratio to the reference arm's, the mean metric, and how the arm stands against cold and warm."""
    retrains = df[df["round"] > df.groupby("stream")["round"].transform("min")]
    per_seed = retrains.groupby(["stream", "arm", "seed"]).agg(
        seconds=("seconds", "sum"), samples=("samples_seen", "sum")
    )
    out = per_seed.groupby(["stream", "arm"]).agg(
        cum_seconds=("seconds", "mean"),
        cum_seconds_std=("seconds", lambda v: v.std(ddof=0)),
        cum_samples=("samples", "mean"),
    )
    out["samples_per_s"] = out["cum_samples"] / out["cum_seconds"]
    if "parameters" in retrains:  # what the arm's network holds (trees: 0, not counted)
        out["parameters"] = retrains.groupby(["stream", "arm"])["parameters"].max()
    out["metric_mean"] = retrains.groupby(["stream", "arm"])["value"].mean()
    if "next_value" in retrains:  # each round's model on all of the next snapshot (the last round has none)
        out["next_mean"] = retrains.groupby(["stream", "arm"])["next_value"].mean()
    seed_means = retrains.groupby(["stream", "arm", "seed"])["value"].mean()
    out["metric_std"] = seed_means.groupby(["stream", "arm"]).std(ddof=0)  # spread of the seeds' means
    out = out.reset_index()
    ref = out[out["arm"] == reference].set_index("stream")
    out["seconds_vs_cold"] = out["cum_seconds"] / out["stream"].map(ref["cum_seconds"])
    out["samples_vs_cold"] = out["cum_samples"] / out["stream"].map(ref["cum_samples"])
    out["rounds_within_cold_1std"] = [
        _within_cold(df, s, a, reference) for s, a in zip(out["stream"], out["arm"], strict=True)
    ]
    out["rounds"] = out["stream"].map(retrains.groupby("stream")["round"].nunique())
    return out


def _within_cold(df: pd.DataFrame, stream: str, arm: str, reference: str) -> int:
    """Rounds (2+) where ARM's mean metric is no worse than the reference's mean minus one std over seeds."""
    rounds = per_round(df[df["stream"] == stream])
    rounds = rounds[rounds["round"] > rounds["round"].min()]
    mine = rounds[rounds["arm"] == arm].set_index("round")
    ref = rounds[rounds["arm"] == reference].set_index("round")
    sign = 1.0 if HIGHER_IS_BETTER[df["metric"].iloc[0]] else -1.0
    floor = sign * ref["value_mean"] - ref["value_std"]
    return int((sign * mine["value_mean"] >= floor.reindex(mine.index)).sum())
