"""`rewarm benchmark --zoo`: every zoo dataset streamed through rewarm's rounds, beside default LightGBM.

Per dataset, each snapshot is a round as the service runs it: the configured strategies start from the
champion (the first round is a cold start), the champion is scored on the same holdout, the gate decides, and
the champion after the round is what is reported. LightGBM (default settings) is refitted from scratch on the
same training rows and scored on the same holdout rows with the same metric code. Both training times are
measured in the same process, one after the other.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from rich.console import Console

from rewarm import gate, rounds
from rewarm.config import Settings, parse_settings
from rewarm.metrics import HIGHER_IS_BETTER, METRICS
from rewarm.models.network import TabularMLP
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import COLD, initialise, strategy
from rewarm.snapshots import drop_unlabelled
from rewarm.training import Tensors, pick_device, score_holdout, train

from . import trees
from .replay import stage
from .zoo import DATASETS, ZooDataset


@dataclass(frozen=True)
class ZooRow:
    """One round of one dataset: the champion rewarm leaves and what default trees score on the same rows."""

    dataset: str
    seed: int
    round: int
    snapshot: str
    rows_snapshot: int
    rows_train: int
    rows_holdout: int
    metric: str
    champion: float  # holdout metric of the champion after the round
    trees: float  # default LightGBM's, same rows
    rewarm_seconds: float  # every candidate's training this round
    trees_seconds: float
    decision: str


def settings_for(dataset: ZooDataset, train: dict | None = None, architecture: str | None = None) -> Settings:
    """The settings a user gets from the dataset's rewarm.toml (TRAIN: overrides for a capped run; ARCHITECTURE:
    [model] architecture instead of the config's)."""
    import tomllib

    columns = list(dataset.snapshots(5)[0][1].columns)
    raw = tomllib.loads(dataset.toml("unused-landing", columns, train=train))
    if architecture:
        raw["model"]["architecture"] = architecture
    return parse_settings(raw, source=dataset.name)


def replay_dataset(
    dataset: ZooDataset, settings: Settings, folder: Path, seed: int, device: torch.device, max_rows: int | None
) -> list[ZooRow]:
    """Every snapshot of DATASET as a round; one ZooRow per round."""
    # As a round reads a landed file: rows without a label are left out where data.unlabelled drops them.
    labelled = [
        (name, drop_unlabelled(frame, settings.data)[0] if settings.data.unlabelled == "drop" else frame)
        for name, frame in dataset.snapshots(max_rows)
    ]
    staged = stage(labelled, folder / dataset.name)
    cfg, metric = settings.train.model_copy(update={"seed": seed}), settings.metric
    champion: tuple[TabularMLP, Preprocessor] | None = None
    out = []
    for index, (info, frame) in enumerate(staged):
        parent = (champion[1], champion[0].arch) if champion else None
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, device)
        choices = [COLD] if champion is None else [strategy(n, cfg.shrink, cfg.perturb) for n in cfg.strategies]
        candidates, seconds = {}, 0.0
        for choice in choices:
            module = initialise(choice, data.arch, champion[0] if champion else None, seed + info.sequence)
            seconds += train(module, data.train, data.val, data.preprocessor.task, cfg).seconds
            candidates[choice.name] = (
                module,
                score_holdout(module, data.holdout, data.y_holdout, data.preprocessor)[0],
            )
        before = _champion_predictions(champion, data, device)
        predictions = {name: p for name, (_, p) in candidates.items()}
        decision = gate.decide(settings.gate, metric, data.y_holdout, predictions, before, index, seed)
        if decision.promoted:
            champion = (candidates[decision.winner][0], data.preprocessor)
            value = decision.winner_value
        else:
            value = METRICS[metric](data.y_holdout, before)
        forest = trees.fit_and_score(data, seed)
        out.append(
            ZooRow(
                dataset.name,
                seed,
                info.sequence,
                info.name,
                len(frame),
                len(data.train) + len(data.val),
                len(data.holdout),
                metric,
                float(value),
                float(forest.scores[metric]),
                seconds,
                forest.seconds,
                decision.action,
            )
        )
    return out


def _champion_predictions(champion, data: rounds.RoundData, device: torch.device) -> np.ndarray | None:
    """The champion's holdout predictions through its own preprocessing (its vocabulary may be older)."""
    if champion is None:
        return None
    module, pre = champion
    x_num, x_cat = pre.features(data.holdout_frame)
    holdout = Tensors.build(x_num, x_cat, data.y_holdout, device)
    return score_holdout(module.to(device), holdout, data.y_holdout, pre.scored_as(data.preprocessor))[0]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, over rounds 2..N and seeds: mean metrics, who leads, training seconds."""
    later = df[df["round"] > 1]
    rows = []
    for name, part in later.groupby("dataset", sort=False):
        metric = part["metric"].iloc[0]
        sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        champion, forest = part["champion"].mean(), part["trees"].mean()
        rows.append(
            {
                "dataset": name,
                "rounds": int(part["round"].max()),
                "rows": int(df[(df["dataset"] == name) & (df["seed"] == df["seed"].min())]["rows_snapshot"].sum()),
                "metric": metric,
                "rewarm": champion,
                "trees": forest,
                "lead": sign * (champion - forest),  # positive: rewarm ahead
                "rounds_ahead": int((sign * (part["champion"] - part["trees"]) >= 0).sum()),
                "rounds_scored": len(part),
                "rewarm_seconds": part.groupby("seed")["rewarm_seconds"].sum().mean(),
                "trees_seconds": part.groupby("seed")["trees_seconds"].sum().mean(),
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, meta: dict) -> str:
    lines = [
        "# rewarm benchmark --zoo",
        "",
        f"Rounds 2..N of each dataset, {len(meta['seeds'])} seed(s), architecture: {meta.get('architecture')}; "
        "rewarm's champion after each round beside "
        "default LightGBM refitted on the same rows; seconds are training time summed over those rounds.",
        "",
        "| dataset | rows | rounds | metric | rewarm champion | LightGBM | rewarm lead | rounds rewarm ≥ trees "
        "| rewarm train s | LightGBM s |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.dataset} | {r.rows:,} | {r.rounds} | {r.metric} | {r.rewarm:.4f} | {r.trees:.4f} | "
            f"{r.lead:+.4f} | {r.rounds_ahead}/{r.rounds_scored} | {r.rewarm_seconds:.1f} | {r.trees_seconds:.1f} |"
        )
    ahead = int((table["lead"] >= 0).sum())
    behind = ", ".join(f"{r.dataset} ({r.lead:+.4f} {r.metric})" for r in table.itertuples() if r.lead < 0)
    lines += ["", f"rewarm at least matches the trees on {ahead} of {len(table)} datasets; behind: {behind or 'none'}."]
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame) -> Figure:
    """rewarm's lead over the trees per dataset, relative to the trees' metric (positive: rewarm ahead), so that
    an RMSE in dollars and an AUC share one axis."""
    relative = 100 * table["lead"] / table["trees"].abs().clip(lower=1e-12)
    fig = Figure(figsize=(8, 0.45 * len(table) + 1.2))
    ax = fig.subplots()
    colours = ["tab:green" if v >= 0 else "tab:red" for v in relative]
    labels = [f"{d} ({m})" for d, m in zip(table["dataset"], table["metric"], strict=True)]
    ax.barh(labels, relative, color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("rewarm's lead, % of the trees' metric (right: rewarm better)")
    ax.set_title("rewarm vs gradient-boosted trees on the dataset zoo, rounds 2..N")
    fig.tight_layout()
    return fig


def run(
    folder: Path,
    names: list[str] | None = None,
    seeds: int = 1,
    max_rows: int | None = None,
    log_mlflow: bool = True,
    train: dict | None = None,
    architecture: str | None = None,
) -> tuple[pd.DataFrame, list[Path]]:
    """Replay the chosen zoo datasets (all by default); write rows, a Markdown table and a plot into FOLDER."""
    console = Console()
    chosen = [d for d in DATASETS if names is None or d.name in names]
    unknown = sorted(set(names or ()) - {d.name for d in DATASETS})
    if unknown:
        raise ValueError(f"no zoo dataset named {unknown}; the zoo has {[d.name for d in DATASETS]}")
    started, rows = time.perf_counter(), []
    for dataset in chosen:
        settings = settings_for(dataset, train, architecture)
        device = pick_device(settings.train.device)
        for seed in range(settings.train.seed, settings.train.seed + seeds):
            t0 = time.perf_counter()
            rows += replay_dataset(dataset, settings, folder / "snapshots", seed, device, max_rows)
            console.print(f"{dataset.name} seed {seed}: {time.perf_counter() - t0:.1f} s")
    df = pd.DataFrame([asdict(r) for r in rows])
    table = summarise(df)
    meta = {
        "title": "rewarm benchmark zoo",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "seeds": sorted({int(s) for s in df["seed"]}) if len(df) else [],
        "max_rows": max_rows,
        "architecture": architecture or "each config's",
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "zoo_rows.csv", folder / "zoo.csv", folder / "report.md", folder / "zoo.png"]
    df.to_csv(files[0], index=False)
    table.to_csv(files[1], index=False)
    files[2].write_text(markdown(table, meta))
    plot(table).savefig(files[3], dpi=110)
    if log_mlflow:
        _log(table, files, meta)
    return table, files


def _log(table: pd.DataFrame, files: list[Path], meta: dict) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from rewarm.store import experiment_id, open_store, resolve_store

    store = open_store(resolve_store())
    client = MlflowClient()
    rid = client.create_run(experiment_id(store, "rewarm-benchmark"), run_name=meta["title"]).info.run_id
    points = [
        Metric(f"zoo.{r.dataset}.{key}", float(getattr(r, key)), 0, 0)
        for r in table.itertuples()
        for key in ("rewarm", "trees", "lead", "rewarm_seconds", "trees_seconds")
    ]
    client.log_batch(rid, metrics=points, params=[Param(k, str(v)[:500]) for k, v in meta.items()])
    for path in files:
        client.log_artifact(rid, str(path))
    client.set_terminated(rid)
