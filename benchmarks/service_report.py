"""`rewarm benchmark service`'s output: totals against the cold-only service, plots, the report, the MLflow run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from rewarm.metrics import HIGHER_IS_BETTER

SHIFT_FRACTION = 2 / 3  # the shift lands two thirds into the stream: month 8 of 12 (not on the cadence)
TOLERANCE = 0.01  # the target: the champion within 0.01 (metric units) of the cold-only service's, every round


def shift_month(months: int) -> int:
    """The round the shifted stream's change lands on: two thirds in (month 8 of 12), off the default cadence."""
    return max(2, round(months * SHIFT_FRACTION))


def cold_where_needed(
    df: pd.DataFrame, metric: str, tolerance: float = TOLERANCE
) -> dict[str, tuple[float, list[int]]]:
    """Per stream, in hindsight: the rewarm service's seconds had it trained its warm-started candidates as it did
    and cold in full only in the rounds where, in that seed, cold led the best of them by more than TOLERANCE on
    the holdout (cold-only's cold is the same training: same rows, seed and budget), as a share of the cold-only
    service's seconds; with those rounds (in any seed). A round whose comparison is NaN (no warm-started
    candidate, or a metric the holdout cannot give) counts as needing cold. This keeps every seed's every round
    within TOLERANCE of its own cold start, which is stricter than the target (the champion against the
    cold-only service's, averaged over seeds); and the lineage would have run differently, since a cold start
    promoted or not changes the next round's parent."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    later = df[df["round"] > df["round"].min()]
    keys = ["stream", "seed", "round"]
    mine = later[later["service"] == "rewarm"].set_index(keys).sort_index()
    cold = later[later["service"] == "cold-only"].set_index(keys).sort_index()
    if not mine.index.equals(cold.index):
        differ = mine.index.symmetric_difference(cold.index)
        raise ValueError(f"the services' rows differ in (stream, seed, round): {list(differ)[:5]}; replay both")
    needed = ~(sign * (cold["cold"] - mine["best_warm"]) <= tolerance)  # no warm-started candidate: cold needed
    seconds = mine["warm_seconds"] + cold["seconds"].where(needed, 0.0)
    out = {}
    for stream in seconds.index.unique("stream"):
        rounds = sorted({int(r) for (_, r), n in needed.xs(stream).items() if n})
        out[stream] = (float(seconds.xs(stream).sum() / cold["seconds"].xs(stream).sum()), rounds)
    return out


def totals(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per stream and service over rounds 2 on: training seconds (mean over seeds), the ratio to cold-only,
    the champion's mean metric, the worst per-round gap to the cold-only champion (seed means), and for rewarm
    the ratio cold_where_needed gives."""
    floor = cold_where_needed(df, metric)
    later = df[df["round"] > df["round"].min()]
    values = ["seconds", "champion_metric", "champion_next"]
    per_round = later.groupby(["stream", "service", "round"])[values].mean().reset_index()
    out = []
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    for (stream, service), part in per_round.groupby(["stream", "service"], sort=False):
        cold = per_round[(per_round["stream"] == stream) & (per_round["service"] == "cold-only")].set_index("round")
        mine = part.set_index("round")
        gap = sign * (mine["champion_metric"] - cold["champion_metric"])
        out.append(
            {
                "stream": stream,
                "service": service,
                "train_seconds": mine["seconds"].sum(),
                "vs_cold_only": mine["seconds"].sum() / cold["seconds"].sum(),
                "champion_metric_mean": mine["champion_metric"].mean(),
                "champion_next_mean": mine["champion_next"].mean(),  # the last round has no next snapshot
                "worst_round_gap": gap.min(),
                "worst_round": int(gap.idxmin()),
                "cold_full_rounds": int(
                    later[(later["stream"] == stream) & (later["service"] == service)]
                    .groupby("round")["cold_full"]
                    .any()
                    .sum()
                ),
                "cold_where_needed": floor[stream][0] if service == "rewarm" else 1.0,
            }
        )
    return pd.DataFrame(out)


def plot(df: pd.DataFrame, metric: str) -> dict[str, Figure]:
    """Per stream: cumulative training seconds and the champion's holdout metric by round, for both services."""
    figures = {}
    for stream, part in df.groupby("stream", sort=False):
        fig = Figure(figsize=(11, 4.2))
        left, right = fig.subplots(1, 2)
        for service, s in part.groupby("service", sort=False):
            by_round = s.groupby("round")[["seconds", "champion_metric"]].mean()
            later = by_round[by_round.index > by_round.index.min()]
            left.plot(later.index, later["seconds"].cumsum(), marker="o", label=service)
            right.plot(by_round.index, by_round["champion_metric"], marker="o", label=service)
        if stream == "shifted":
            right.axvline(shift_month(part["round"].max()), color="grey", linestyle=":", label="shift")
        left.set(xlabel="round", ylabel="cumulative training seconds", title=f"{stream}: compute")
        right.set(xlabel="round", ylabel=f"champion holdout {metric}", title=f"{stream}: champion")
        left.legend(fontsize=8)
        right.legend(fontsize=8)
        fig.tight_layout()
        figures[f"service-{stream}.png"] = fig
    return figures


def text(table: pd.DataFrame, df: pd.DataFrame, metric: str) -> str:
    lines = [
        f"| stream | service | training s (rounds 2+) | vs cold-only | mean champion {metric} | worst round gap "
        f"| rounds with cold in full | mean champion {metric} on the next snapshot |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.stream} | {r.service} | {r.train_seconds:.1f} | {r.vs_cold_only:.2f} | "
            f"{r.champion_metric_mean:.4f} | {r.worst_round_gap:+.4f} (round {r.worst_round}) | {r.cold_full_rounds} |"
            f" {r.champion_next_mean:.4f} |"
        )
    for stream, (ratio, needed) in cold_where_needed(df, metric).items():
        lines.append(
            f"\n{stream}: cold in full only where, in that seed, it led the best warm-started candidate by more than "
            f"{TOLERANCE} on the holdout (in hindsight: rounds {', '.join(map(str, needed)) or 'none'}, in some seed) "
            f"would have trained {ratio:.2f}x the cold-only service's seconds, beside shrink-perturb every round"
        )
    start = shift_month(int(df["round"].max()))
    for stream in [s for s in ("shifted", "monthly") if s in set(df["stream"])]:  # monthly, unshifted: the control
        mine = df[(df["stream"] == stream) & (df["service"] == "rewarm")]
        near = mine[mine["round"].between(start, start + 1)]
        fired = near.groupby("seed")["audit"].agg(lambda a: any(x.startswith("evidence") for x in a))
        cold_won = near.groupby("seed")["winner"].agg(lambda w: (w == "cold").any())
        gaps = []
        for r in range(start, start + 3):
            at = df[(df["stream"] == stream) & (df["round"] == r)].groupby("service")["champion_metric"].mean()
            gaps.append(f"round {r} {at.get('rewarm', float('nan')) - at.get('cold-only', float('nan')):+.4f}")
        lines.append(
            f"\n{stream}{' (control)' if stream == 'monthly' else ''}, rounds {start}-{start + 1}: evidence audit "
            f"(cold in full) in {int(fired.sum())} of {len(fired)} seeds; cold promoted in {int(cold_won.sum())}; "
            f"rewarm's champion minus cold-only's (mean over seeds): {', '.join(gaps)}"
        )
    return "\n".join(lines)


def log(df: pd.DataFrame, table: pd.DataFrame, files: list[Path], meta: dict, metric: str) -> None:
    """One MLflow run in rewarm-benchmark: both services' champion metric and cumulative seconds (step = round)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from rewarm.store import experiment_id, open_store, resolve_store

    store = open_store(resolve_store())
    client = MlflowClient()
    rid = client.create_run(experiment_id(store, "rewarm-benchmark"), run_name=meta["title"]).info.run_id
    points = []
    for (stream, service), part in df.groupby(["stream", "service"], sort=False):
        by_round = part.groupby("round")[["seconds", "champion_metric"]].mean()
        cumulative = by_round["seconds"].where(by_round.index > by_round.index.min(), 0.0).cumsum()
        for rnd, r in by_round.iterrows():
            points.append(Metric(f"{stream}.{service}.champion_{metric}", float(r["champion_metric"]), 0, int(rnd)))
            points.append(Metric(f"{stream}.{service}.cum_train_seconds", float(cumulative[rnd]), 0, int(rnd)))
    for r in table.itertuples():
        points.append(Metric(f"{r.stream}.{r.service}.vs_cold_only", float(r.vs_cold_only), 0, 0))
        if r.service == "rewarm":
            points.append(Metric(f"{r.stream}.rewarm.cold_where_needed", float(r.cold_where_needed), 0, 0))
    params = [Param(k, str(v)[:500]) for k, v in meta.items()]
    for i in range(0, len(points), 900):
        client.log_batch(rid, metrics=points[i : i + 900], params=params if i == 0 else [])
    for path in files:
        client.log_artifact(rid, str(path))
    client.set_terminated(rid)
