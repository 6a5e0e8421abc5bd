"""Benchmark output: raw rows (CSV and JSON), a Markdown report, PNG plots, and one MLflow run holding them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from . import summary


def markdown(df: pd.DataFrame, title: str) -> str:
    """Per stream: totals (cumulative seconds and ratio to cold), then every round's metric mean ± std."""
    metric = df["metric"].iloc[0]
    lines = [f"# {title}", ""]
    tot = summary.totals(df)
    for stream, part in df.groupby("stream", sort=False):
        t = tot[tot["stream"] == stream]
        lines += [
            f"## {stream}",
            "",
            f"Totals over rounds 2-{part['round'].max()} ({part['seed'].nunique()} seeds):",
            "",
        ]
        forward, cost = "next_mean" in t, "parameters" in t
        lines += [
            f"| arm | mean holdout {metric} (± std over seeds) | cumulative training s (± std) | vs cold "
            "| samples vs cold | rounds ≥ cold − 1 std |"
            + (f" mean {metric} on the next snapshot |" if forward else "")
            + (" samples/s | parameters |" if cost else ""),
            "| --- | --- | --- | --- | --- | --- |" + (" --- |" if forward else "") + (" --- | --- |" if cost else ""),
        ]
        for r in t.itertuples():
            lines.append(
                f"| {r.arm} | {r.metric_mean:.4f} ± {r.metric_std:.4f} | "
                f"{r.cum_seconds:.2f} (± {r.cum_seconds_std:.2f}) | "
                f"{r.seconds_vs_cold:.2f} | {r.samples_vs_cold:.2f} | {r.rounds_within_cold_1std}/{r.rounds} |"
                + (f" {r.next_mean:.4f} |" if forward else "")
                + (f" {_rate(r.samples_per_s, r.parameters)} | {_parameters(r.parameters)} |" if cost else "")
            )
        lines += ["", f"Per round: holdout {metric} mean ± std over seeds / mean training seconds:", ""]
        rounds = summary.per_round(part)
        arms = list(dict.fromkeys(part["arm"]))
        lines += ["| round | snapshot | " + " | ".join(arms) + " |", "| --- | --- |" + " --- |" * len(arms)]
        for rnd, cells in rounds.groupby("round"):
            by_arm = cells.set_index("arm")
            row = [_cell(by_arm.loc[a]) for a in arms]
            lines.append(f"| {rnd} | {cells['snapshot'].iloc[0]} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def _rate(samples_per_s: float, parameters: float) -> str:
    """Rows a second times epochs for a network; blank for trees, whose samples count boosting iterations."""
    return f"{samples_per_s:,.0f}" if parameters > 0 else ""


def _parameters(count: float) -> str:
    """A network's parameter count; trees arms have none that compare (their rows say 0)."""
    return f"{int(count):,}" if count > 0 else "(trees)"


def _cell(r: pd.Series) -> str:
    return f"{r['value_mean']:.4f} ± {r['value_std']:.4f} / {r['seconds']:.2f}s"


def plots(df: pd.DataFrame) -> dict[str, Figure]:
    """Per stream: the metric per round per arm (mean, band of ± one std), and cumulative training seconds."""
    figures = {}
    metric = df["metric"].iloc[0]
    for stream, part in df.groupby("stream", sort=False):
        fig = Figure(figsize=(11, 4.2))
        left, right = fig.subplots(1, 2)
        rounds = summary.per_round(part)
        for arm, r in rounds.groupby("arm", sort=False):
            left.plot(r["round"], r["value_mean"], marker="o", label=arm)
            left.fill_between(r["round"], r["value_mean"] - r["value_std"], r["value_mean"] + r["value_std"], alpha=0.2)
            later = r[r["round"] > r["round"].min()]
            right.plot(later["round"], later["seconds"].cumsum(), marker="o", label=arm)
        left.set(xlabel="round (snapshot)", ylabel=f"holdout {metric}", title=f"{stream}: holdout {metric}")
        right.set(xlabel="round (snapshot)", ylabel="cumulative training seconds", title=f"{stream}: training time")
        left.legend(fontsize=8)
        right.legend(fontsize=8)
        fig.tight_layout()
        figures[f"{stream}.png"] = fig
    return figures


def write(df: pd.DataFrame, folder: Path, title: str, meta: dict) -> list[Path]:
    """Write raw rows, the Markdown report and the plots into FOLDER; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "rows.csv", folder / "rows.json", folder / "report.md"]
    df.to_csv(written[0], index=False)
    written[1].write_text(json.dumps({"meta": meta, "rows": df.to_dict(orient="records")}, indent=1))
    written[2].write_text(markdown(df, title))
    for name, fig in plots(df).items():
        fig.savefig(folder / name, dpi=110)
        written.append(folder / name)
    return written


def log_to_mlflow(df: pd.DataFrame, files: list[Path], meta: dict, experiment: str = "rewarm-benchmark") -> str:
    """One MLflow run: the benchmark's settings, every arm's metric per round (step = round), totals, files."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from rewarm.store import experiment_id, open_store, resolve_store

    store = open_store(resolve_store())
    client = MlflowClient()
    run = client.create_run(experiment_id(store, experiment), run_name=meta.get("title", "benchmark"))
    rid = run.info.run_id
    params = [Param(k, str(v)[:500]) for k, v in meta.items()]
    rounds = summary.per_round(df)
    points = [
        Metric(f"{r.stream}.{r.arm}.holdout_{df['metric'].iloc[0]}", float(r.value_mean), 0, int(r.round))
        for r in rounds.itertuples()
    ]
    for t in summary.totals(df).itertuples():
        points.append(Metric(f"{t.stream}.{t.arm}.seconds_vs_cold", float(t.seconds_vs_cold), 0, 0))
        points.append(Metric(f"{t.stream}.{t.arm}.cum_train_seconds", float(t.cum_seconds), 0, 0))
    for i in range(0, len(points), 900):  # MLflow's batch limit is 1000 metrics
        client.log_batch(rid, metrics=points[i : i + 900], params=params if i == 0 else [])
    for path in files:
        client.log_artifact(rid, str(path))
    client.set_terminated(rid)
    return rid
