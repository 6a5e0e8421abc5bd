"""Architectures and training defaults, tuned on validation rows: `python -m rewarm.benchmarks.arch_sweep`.

On a few rounds of the demo stream (cumulative months, as a cold start at that round trains), every candidate
configuration trains a cold start per seed; it is chosen by its mean **validation** metric (the rows early
stopping watches), and reported beside what tuning never saw: the round's holdout and all of the next snapshot.
Default LightGBM is fitted on the same rows and scored on the same holdout and next snapshot. Every candidate's
cost is reported too: training seconds, samples a second, parameters. The sweep never runs in CI.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewarm import metrics, rounds
from rewarm.config import load_settings
from rewarm.models.network import BINNED, NUMERIC_EMBEDDING, build_model, fit_bins
from rewarm.training import pick_device, predict, score_holdout, train

from . import trees
from .replay import forward, network, stage
from .run import Options, streams

# name -> ([model] overrides, [train] overrides); the first is today's default
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "mlp": ({}, {}),
    "mlp 256x256": ({"hidden": (256, 256)}, {}),
    "mlp lr1e-3": ({}, {"lr": 1e-3}),
    "mlp wd1e-2": ({}, {"weight_decay": 1e-2}),
    "mlp batch256": ({}, {"batch_size": 256}),
    "mlp_periodic": ({"architecture": "mlp_periodic"}, {}),
    "mlp_plr": ({"architecture": "mlp_plr"}, {}),
    "mlp_plr 256x256": ({"architecture": "mlp_plr", "hidden": (256, 256)}, {}),
    "mlp_plr lr1e-3": ({"architecture": "mlp_plr"}, {"lr": 1e-3}),
    "tabm k8 128x128": ({"architecture": "tabm", "hidden": (128, 128), "ensemble_size": 8}, {}),
    "tabm k4 64x64": ({"architecture": "tabm", "hidden": (64, 64), "ensemble_size": 4}, {}),
    "tabm k8 64x64": ({"architecture": "tabm", "hidden": (64, 64), "ensemble_size": 8}, {}),
    "mlp_plr wd1e-2": ({"architecture": "mlp_plr"}, {"weight_decay": 1e-2}),
    "mlp_plr batch256": ({"architecture": "mlp_plr"}, {"batch_size": 256}),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="rewarm.toml")
    parser.add_argument("--rounds", default="4,8,11", help="the rounds (months) to train a cold start at")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--out", default=".rewarm/benchmarks/arch-sweep")
    args = parser.parse_args(argv)
    settings = load_settings(Path(args.config))
    chosen = [int(r) for r in args.rounds.split(",")]
    names = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(settings.train.device)
    staged = stage(streams(settings, Options(months=max(chosen) + 1, small_rows=None))["monthly"], out / "snapshots")
    rows, parent, first_bins = [], None, None
    for index, (info, frame) in enumerate(staged[:-1]):
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, device)
        parent = (data.preprocessor, data.arch)
        if first_bins is None:  # a lineage's bins are fitted on its first training rows, then kept (as rounds.py)
            first_bins = fit_bins(torch.from_numpy(data.preprocessor.features(data.train_frame)[0]))
        if info.sequence not in chosen:
            continue
        after = staged[index + 1][1]
        fitted, seconds = trees.fit(data.preprocessor, data.train_frame, 0)
        rows.append(_row(settings, "lightgbm", info.sequence, 0, data, fitted, seconds, after, trees.predictor(fitted)))
        print(_line(rows[-1]), flush=True)
        for name in names:
            model_over, train_over = CANDIDATES[name]
            arch = _arch(data.arch, model_over, first_bins, settings.model.ensemble_size)
            for seed in range(settings.train.seed, settings.train.seed + args.seeds):
                cfg = settings.train.model_copy(update=train_over | {"seed": seed})
                module = build_model(arch, seed + info.sequence)
                result = train(module, data.train, data.val, data.preprocessor.task, cfg)
                row = _row(settings, name, info.sequence, seed, data, module, result.seconds, after, network(module))
                row |= {"samples_per_s": result.samples_seen / max(result.seconds, 1e-9), "epochs": result.epochs}
                row |= {"parameters": sum(p.numel() for p in module.parameters())}
                rows.append(row)
                print(_line(row), flush=True)
        pd.DataFrame(rows).to_csv(out / "rows.csv", index=False)
    table = summarise(pd.DataFrame(rows), settings.metric)
    (out / "summary.md").write_text(table)
    (out / "meta.json").write_text(json.dumps({"rounds": chosen, "seeds": args.seeds, "candidates": CANDIDATES}))
    print(table)


def _arch(base, model_over: dict, bins, ensemble_size: int):
    kind = model_over.get("architecture", "mlp")
    return replace(
        base,
        architecture=kind,
        hidden=tuple(model_over.get("hidden", base.hidden)),
        numeric_embedding=NUMERIC_EMBEDDING if kind != "mlp" else 0,
        k=model_over.get("ensemble_size", ensemble_size) if kind == "tabm" else 0,
        bins=bins if kind in BINNED else (),
    )


def _row(settings, name, round_, seed, data, model, seconds, after, predictor) -> dict:
    pre, metric = data.preprocessor, settings.metric
    if name == "lightgbm":
        holdout = metrics.score(pre.task, data.y_holdout, trees.predict(model, pre, data.holdout_frame))
        validation = float("nan")  # default LightGBM fits on the validation rows too
    else:
        _, holdout = score_holdout(model, data.holdout, data.y_holdout, pre)
        y_val = pre.metric_targets(data.train_frame[data.val_rows][pre.target])
        outputs = pre.metric_outputs(predict(model, data.val.x_num, data.val.x_cat, pre.task))
        validation = metrics.score(pre.task, y_val, outputs)[metric]
    return {
        "candidate": name,
        "round": round_,
        "seed": seed,
        "validation": validation,
        "holdout": holdout[metric],
        "next": forward(pre, after, metric, predictor),
        "seconds": seconds,
        "train_rows": len(data.train),
    }


def _line(row: dict) -> str:
    scores = " ".join(f"{k} {row[k]:.4f}" for k in ("validation", "holdout", "next"))
    return f"round {row['round']:>2} {row['candidate']:<18} {scores} {row['seconds']:.1f}s"


def ranked(df: pd.DataFrame, metric: str, **cost: tuple[str, str]) -> pd.DataFrame:
    """Per candidate: mean validation, holdout and next-snapshot metric, and the COST aggregations; best
    validation first (the trees, which fit on the validation rows, last)."""
    means = {k: (k, "mean") for k in ("validation", "holdout", "next")}
    agg = df.groupby("candidate").agg(**means, **cost)
    return agg.sort_values("validation", ascending=not metrics.HIGHER_IS_BETTER[metric], na_position="last")


def summarise(df: pd.DataFrame, metric: str) -> str:
    """Mean per candidate over rounds and seeds, best validation first; the cost columns beside."""
    cost = {"seconds": ("seconds", "mean"), "samples_per_s": ("samples_per_s", "mean")}
    agg = ranked(df, metric, **cost, parameters=("parameters", "max"))
    lines = [
        f"| candidate | mean validation {metric} | mean holdout | mean next snapshot | training s per round "
        "| samples/s | parameters |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in agg.iterrows():
        cost = "" if np.isnan(r.samples_per_s) else f"{r.samples_per_s:,.0f}"
        params = "" if np.isnan(r.parameters) else f"{int(r.parameters):,}"
        val = "(fits on them)" if np.isnan(r.validation) else f"{r.validation:.4f}"
        lines.append(f"| {name} | {val} | {r.holdout:.4f} | {r.next:.4f} | {r.seconds:.1f} | {cost} | {params} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"{time.perf_counter() - started:.0f} s")
