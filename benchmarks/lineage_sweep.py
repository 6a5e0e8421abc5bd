"""Defaults for the retrain that runs most, tuned on validation rows: `python -m rewarm.benchmarks.lineage_sweep`.

Where arch_sweep trains a cold start at a few rounds, this follows each candidate as the service's warm lineage
lives: a cold bootstrap on the first month, then a shrink-perturb retrain every month from the candidate's own
previous model, under the configured budget (the newest month plus a replay sample, early stopping on the
validation rows). A candidate is chosen by its mean metric on the **validation rows**; the round's holdout and
all of the next month, which tuning never sees, are reported beside it, with default LightGBM refitted on the
same rows and the cost of each (training seconds over all rounds, epochs). One seed; never run in CI.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rewarm import metrics, rounds
from rewarm.config import Settings, load_settings
from rewarm.models.strategies import COLD, Strategy, initialise
from rewarm.training import pick_device, predict, score_holdout, train

from . import trees
from .arch_sweep import ranked
from .replay import forward, network, stage
from .run import Options, streams

# name -> ([model] overrides, [train] overrides); the first is today's default
TABM = {"architecture": "tabm", "hidden": (32, 32), "ensemble_size": 4, "numeric_bins": 16}  # today's default
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "tabm k4 32x32, 16 bins": (TABM, {}),
    "tabm k4 64x64, 48 bins": (TABM | {"hidden": (64, 64), "numeric_bins": 48}, {}),
    "tabm k4 64x64, 16 bins": (TABM | {"hidden": (64, 64)}, {}),
    "tabm k4 32x32, 8 bins": (TABM | {"numeric_bins": 8}, {}),
    "tabm k4 16x16, 16 bins": (TABM | {"hidden": (16, 16)}, {}),
    "tabm k2 32x32, 16 bins": (TABM | {"ensemble_size": 2}, {}),
    "tabm k8 32x32, 16 bins": (TABM | {"ensemble_size": 8}, {}),
    "tabm k4 32x32, replay 0.1": (TABM, {"warm_replay_fraction": 0.1}),
    "tabm k4 32x32, warm 6 epochs": (TABM, {"warm_max_epochs": 6}),
    "tabm k4 32x32, λ 0.9": (TABM, {"shrink": 0.9}),
    "tabm k4 32x32, λ 0.93": (TABM, {"shrink": 0.93}),
    "tabm k4 32x32, patience 2": (TABM, {"patience": 2}),
    "tabm k4 32x32, warm patience 2": (TABM, {"warm_patience": 2}),
    "tabm k4 32x32, warm patience 1": (TABM, {"warm_patience": 1}),
    "tabm k4 16x16, warm patience 2": (TABM | {"hidden": (16, 16)}, {"warm_patience": 2}),
    "tabm k2 16x16, warm patience 2": (TABM | {"hidden": (16, 16), "ensemble_size": 2}, {"warm_patience": 2}),
    "tabm k4 32x32, warm lr 0.006": (TABM, {"warm_lr": 0.006}),
    "tabm k4 32x32, warm lr 0.0015": (TABM, {"warm_lr": 0.0015}),
    "tabm k4 32x32, batch 512": (TABM, {"batch_size": 512}),
    "tabm k4 32x32, batch 2048, lr 0.006": (TABM, {"batch_size": 2048, "lr": 0.006}),
    "tabm k4 32x32, batch 4096, lr 0.006": (TABM, {"batch_size": 4096, "lr": 0.006}),
    "tabm k4 32x32, batch 4096, lr 0.012": (TABM, {"batch_size": 4096, "lr": 0.012}),
    "tabm k4 32x32, batch 8192, lr 0.012": (TABM, {"batch_size": 8192, "lr": 0.012}),
    "tabm k2 16x16, 8 bins, warm patience 2": (
        TABM | {"hidden": (16, 16), "ensemble_size": 2, "numeric_bins": 8},
        {"warm_patience": 2},
    ),
    "tabm k4 32x32, replay 0.5": (TABM, {"warm_replay_fraction": 0.5}),
    "tabm k2 16x16, 8 bins": (TABM | {"hidden": (16, 16), "ensemble_size": 2, "numeric_bins": 8}, {}),
    "tabm k2 32x32, 8 bins, warm patience 2": (
        TABM | {"ensemble_size": 2, "numeric_bins": 8},
        {"warm_patience": 2},
    ),
    "tabm k2 16x16, 8 bins, warm patience 2, batch 2048, lr 0.006": (
        TABM | {"hidden": (16, 16), "ensemble_size": 2, "numeric_bins": 8},
        {"warm_patience": 2, "batch_size": 2048, "lr": 0.006},
    ),
    "tabm k1 16x16, 8 bins, warm patience 2": (
        TABM | {"hidden": (16, 16), "ensemble_size": 1, "numeric_bins": 8},
        {"warm_patience": 2},
    ),
    "tabm k4 16x16, 8 bins, warm patience 2": (
        TABM | {"hidden": (16, 16), "numeric_bins": 8},
        {"warm_patience": 2},
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="rewarm.toml")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--only", default="", help="candidate names separated by ';' (default: all)")
    parser.add_argument("--out", default=".rewarm/benchmarks/lineage-sweep")
    args = parser.parse_args(argv)
    base = load_settings(Path(args.config))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    staged = stage(streams(base, Options(months=args.months, small_rows=None))["monthly"], out / "snapshots")
    rows = _trees(base, staged)
    for name in [n for n in args.only.split(";") if n] or list(CANDIDATES):
        model_over, train_over = CANDIDATES[name]
        settings = base.model_copy(
            update={
                "model": base.model.model_copy(update=model_over),
                "train": base.train.model_copy(update=train_over),
            }
        )
        rows += _lineage(settings, name, staged)
        pd.DataFrame(rows).to_csv(out / "rows.csv", index=False)
    table = summarise(pd.DataFrame(rows), base.metric)
    (out / "summary.md").write_text(table)
    print(table)


def _lineage(settings: Settings, name: str, staged: list) -> list[dict]:
    """One candidate's warm lineage over the stream: a row per shrink-perturb retrain."""
    device, rows, parent, model = pick_device(settings.train.device), [], None, None
    strategy = Strategy("shrink_perturb", settings.train.shrink, settings.train.perturb)
    for index, (info, frame) in enumerate(staged):
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, device)
        parent = (data.preprocessor, data.arch)
        warm = model is not None
        module = initialise(strategy if warm else COLD, data.arch, model, settings.train.seed + info.sequence)
        result = train(
            module, data.train_for(warm), data.val, data.preprocessor.task, settings.train.for_candidate(warm)
        )
        model = module
        if not warm:
            continue
        after = staged[index + 1][1] if index + 1 < len(staged) else None
        pre, metric = data.preprocessor, settings.metric
        y_val = pre.metric_targets(data.train_frame[data.val_rows][pre.target])
        outputs = pre.metric_outputs(predict(module, data.val.x_num, data.val.x_cat, pre.task))
        rows.append(
            {
                "candidate": name,
                "round": info.sequence,
                "validation": metrics.score(pre.task, y_val, outputs)[metric],
                "holdout": score_holdout(module, data.holdout, data.y_holdout, pre)[1][metric],
                "next": forward(pre, after, metric, network(module)),
                "seconds": result.seconds,
                "epochs": result.epochs,
            }
        )
        print(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    return rows


def _trees(settings: Settings, staged: list) -> list[dict]:
    """Default LightGBM refitted at every round on the rows cold trains on (validation included)."""
    rows, parent = [], None
    for index, (info, frame) in enumerate(staged):
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, pick_device("cpu"))
        parent = (data.preprocessor, data.arch)
        if index == 0:
            continue
        after = staged[index + 1][1] if index + 1 < len(staged) else None
        fitted, seconds = trees.fit(data.preprocessor, data.train_frame, 0)
        outputs = trees.predict(fitted, data.preprocessor, data.holdout_frame)
        holdout = metrics.score(data.preprocessor.task, data.y_holdout, outputs)[settings.metric]
        nxt = forward(data.preprocessor, after, settings.metric, trees.predictor(fitted))
        rows.append({"candidate": "lightgbm", "round": info.sequence, "validation": np.nan, "holdout": holdout})
        rows[-1] |= {"next": nxt, "seconds": seconds, "epochs": np.nan}
    return rows


def summarise(df: pd.DataFrame, metric: str) -> str:
    """Mean per candidate over rounds, best validation first; seconds summed over the rounds."""
    agg = ranked(df, metric, seconds=("seconds", "sum"), epochs=("epochs", "mean"))
    lines = [
        f"| candidate | mean validation {metric} | mean holdout | mean next snapshot | training s, all rounds "
        "| epochs per round |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in agg.iterrows():
        val = "(fits on them)" if np.isnan(r.validation) else f"{r.validation:.4f}"
        epochs = "" if np.isnan(r.epochs) else f"{r.epochs:.1f}"
        lines.append(f"| {name} | {val} | {r.holdout:.4f} | {r.next:.4f} | {r.seconds:.1f} | {epochs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"{time.perf_counter() - started:.0f} s")
