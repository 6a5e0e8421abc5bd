"""`rewarm benchmark service`: the stream as the service runs it, beside a cold-only service.

Both services see the same snapshots, rows and holdouts. The rewarm service runs the configured candidates with
racing and cold audits (rewarm/racing.py, rewarm/audits.py: the code the retrain flow runs), gates them against
its champion and keeps its own registry of version tags; the cold-only service trains cold in full every round
through the same gate. Per round and seed: the training seconds of everything trained, and the holdout metric of
the champion each service leaves (its score on that round's holdout rows). Two streams: the demo's months, and
the same months with a feature whose meaning changes part-way through (from shift_month(), the scheduled
departure and arrival hours are recorded in UTC instead of New York time), where the warm lineage's learned
hours are wrong and evidence audits must fire (the shift is placed off the default cadence, so that the cadence
alone cannot pass for the safeguard).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from rewarm import audits, gate, rounds
from rewarm.config import Settings
from rewarm.metrics import HIGHER_IS_BETTER
from rewarm.models.strategies import initialise, strategy
from rewarm.racing import Outcome, RaceRule, contest
from rewarm.training import Tensors, Training, pick_device, score_holdout

from . import service_report
from .replay import forward, network, stage
from .run import Options, streams
from .service_report import shift_month

UTC_OFFSET_HOURS = 5  # New York in winter; the shift is in what the column means, not exact time zones


@dataclass(frozen=True)
class Row:
    stream: str
    service: str
    seed: int
    round: int
    snapshot: str
    seconds: float  # every candidate's training this round
    champion_metric: float  # the champion the round leaves, scored on this round's holdout
    decision: str
    winner: str
    cold_full: bool
    audit: str
    stopped: str
    champion_before: float  # the champion the round started with, on this round's holdout (nan: none)
    best_warm: float  # the best warm-started candidate's holdout metric (nan: none trained)
    cold: float  # cold's holdout metric, as it stood when stopped (nan: not trained)
    champion_next: float = float("nan")  # the champion the round leaves, on all of the next snapshot (out of time)
    warm_seconds: float = 0.0  # the warm-started candidates' share of seconds


@dataclass
class Service:
    """One service's state across rounds: its champion (with its own preprocessing) and its versions' tags."""

    name: str
    strategies: tuple[str, ...]
    racing: bool
    champion: tuple | None = None  # (module, preprocessor)
    champion_version: int | None = None
    versions: list[dict[str, str]] = field(default_factory=list)


def shifted(stream: list[tuple[str, pd.DataFrame]]) -> list[tuple[str, pd.DataFrame]]:
    """The stream with the hour columns recorded in UTC from shift_month() on (the same flights, a new meaning)."""
    out, start = [], shift_month(len(stream))
    for month, (name, frame) in enumerate(stream, start=1):
        if month >= start:
            frame = frame.copy()
            for col in ("sched_dep_hour", "sched_arr_hour"):
                frame[col] = (frame[col] + UTC_OFFSET_HOURS) % 24
        out.append((name, frame))
    return out


def _round(settings: Settings, service: Service, data: rounds.RoundData, seed: int) -> tuple[Row, float]:
    """One round of SERVICE; return its row (minus stream) and the seconds trained."""
    t, metric = settings.train, settings.metric
    incumbent = None
    if service.champion is not None:
        module, pre = service.champion
        x_num, x_cat = pre.features(data.holdout_frame)
        held = Tensors.build(x_num, x_cat, data.y_holdout, data.holdout.y.device)
        p, scores = score_holdout(module, held, data.y_holdout, pre.scored_as(data.preprocessor))
        incumbent = Outcome("champion", module, p, scores)
    names = service.strategies if service.champion is not None else ("cold",)
    audit = audits.planned(service.versions, t.cold_every) if "cold" in names else ""

    def make(name: str) -> Training:
        choice = strategy(name, t.shrink, t.perturb)
        warm = choice.from_parent and service.champion is not None
        parent = service.champion[0] if service.champion is not None else None
        model = initialise(choice, data.arch, parent, seed + data.snapshot.sequence)
        cfg = t.for_candidate(warm).model_copy(update={"seed": seed})
        scorer = data.race_scorer(metric) if t.racing and t.race_on == "metric" else None
        task = data.preprocessor.task
        return Training(model, data.train_for(warm), data.val, task, cfg, race_set=data.race_val, race_score=scorer)

    skip = t.skips_cold(len(names))  # cold only on audits (the cold-only service trains cold alone: always)
    trainings = {name: make(name) for name in names if not (skip and name == "cold")}
    cold = (lambda: make("cold")) if skip and "cold" in names else None

    def evidence(outcomes: dict[str, Outcome]) -> str:
        champion = incumbent.metrics if incumbent else None
        widen = (t.audit_backoff, audits.fruitless(service.versions))
        return audits.evidence(
            metric, t.audit_margin, champion, outcomes, data.preprocessor.task, data.y_holdout, widen, data.y_fit()
        )

    rule = RaceRule.configured(t) if service.racing else None
    score = lambda m: score_holdout(m, data.holdout, data.y_holdout, data.preprocessor)  # noqa: E731
    outcomes = contest(trainings, score, rule, audit, evidence, cold)
    before = incumbent.predictions if incumbent is not None else None
    decision = gate.decide_round(
        settings.gate, metric, data.y_holdout, outcomes, before, service.champion_version, seed
    )
    tags = audits.version_tags(metric, outcomes) | {"rewarm.round": str(data.snapshot.sequence)}
    tags |= {audits.STRATEGY: decision.winner, audits.DECISION: decision.action}  # as the flow's version tags
    service.versions.append(tags)
    if decision.promoted:
        tags[audits.PROMOTED_AT] = "promoted"  # the flow writes it as the alias moves
        service.champion = (outcomes[decision.winner].module, data.preprocessor)
        service.champion_version = len(service.versions)
        value = outcomes[decision.winner].metrics[metric]
    else:
        value = incumbent.metrics[metric]
    seconds = sum(o.result.seconds for o in outcomes.values())
    row = Row(
        stream="",
        service=service.name,
        seed=seed,
        round=data.snapshot.sequence,
        snapshot=data.snapshot.name,
        seconds=seconds,
        champion_metric=float(value),
        decision=f"{decision.action} {decision.winner}",
        winner=decision.winner if decision.promoted else "champion",
        cold_full=tags[audits.COLD_FULL] == "true",
        audit=tags[audits.AUDIT],
        stopped="; ".join(o.stopped for o in outcomes.values() if o.stopped),
        champion_before=incumbent.metrics[metric] if incumbent is not None else float("nan"),
        best_warm=_best([o.metrics[metric] for n, o in outcomes.items() if n != "cold"], metric),
        cold=outcomes["cold"].metrics[metric] if "cold" in outcomes else float("nan"),
        warm_seconds=sum(o.result.seconds for n, o in outcomes.items() if n != "cold"),
    )
    return row, seconds


def _best(values: list[float], metric: str) -> float:
    if not values:
        return float("nan")
    return max(values) if HIGHER_IS_BETTER[metric] else min(values)


def replay(settings: Settings, name: str, stream: list, folder: Path, seeds: list[int], tick) -> list[Row]:
    """Both services over STREAM for every seed, interleaved round by round so machine drift hits both."""
    device = pick_device(settings.train.device)
    staged = stage(stream, folder / "snapshots" / name)
    rows, parent = [], None
    services = {
        seed: [
            Service("rewarm", tuple(settings.train.strategies), racing=True),
            Service("cold-only", ("cold",), racing=False),
        ]
        for seed in seeds
    }
    for index, (info, frame) in enumerate(staged):
        data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:index]], parent, device)
        parent = (data.preprocessor, data.arch)
        after = staged[index + 1][1] if index + 1 < len(staged) else None
        for seed in seeds:
            pair = services[seed] if index % 2 == 0 else services[seed][::-1]  # no service always goes first
            for service in pair:
                row, _ = _round(settings, service, data, seed)
                module, pre = service.champion
                ahead = forward(pre, after, settings.metric, network(module))  # as production uses it
                rows.append(Row(**{**asdict(row), "stream": name, "champion_next": ahead}))
                tick(rows[-1])
    return rows


def run(settings: Settings, folder: Path, quick: bool = False, seeds: int = 3, log_mlflow: bool = True) -> str:
    """Replay both streams with both services; write rows, totals, plots; log them to MLflow; return a report."""
    options = Options.quick(small_rows=None) if quick else Options(small_rows=None)
    demo = streams(settings, options)["monthly"]
    chosen = [settings.train.seed + i for i in range(seeds)]
    started, rows = time.perf_counter(), []

    def tick(row: Row) -> None:
        print(
            f"{row.stream} round {row.round} seed {row.seed} {row.service}: {row.champion_metric:.4f} "
            f"{row.seconds:.1f}s {row.decision}{' [cold in full]' if row.cold_full else ''}",
            flush=True,
        )

    for name, stream in {"monthly": demo, "shifted": shifted(demo)}.items():
        rows += replay(settings, name, stream, folder, chosen, tick)
    df = pd.DataFrame([asdict(r) for r in rows])
    table = service_report.totals(df, settings.metric)
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "service-rows.csv", folder / "service-totals.csv", folder / "service.json"]
    df.to_csv(files[0], index=False)
    table.to_csv(files[1], index=False)
    meta = {
        "title": "rewarm benchmark service",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "seeds": chosen,
        "quick": quick,
        "shift_month": shift_month(options.months),
        "train": settings.train.model_dump(),
    }
    files[2].write_text(json.dumps({"meta": meta, "totals": table.to_dict(orient="records")}, indent=1))
    for fname, fig in service_report.plot(df, settings.metric).items():
        fig.savefig(folder / fname, dpi=110)
        files.append(folder / fname)
    if log_mlflow:
        service_report.log(df, table, files, meta, settings.metric)
    return service_report.text(table, df, settings.metric) + "\nwritten: " + ", ".join(str(f) for f in files)
