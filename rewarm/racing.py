"""Racing: a round's candidates train side by side, an epoch each in turn, on the same validation rows; one that
can no longer catch up with the leader is stopped, so a safeguard candidate costs a few epochs, not a training.

Candidates race on the newest snapshot's validation rows (the population the gate's holdout is drawn from),
compared on the gate's metric (a RaceScore; train.race_on) or on their loss: either way a lower-is-better curve.
The rule is a bound from the learning curve. A candidate's curve improves by less and less each epoch (the
cosine schedule decays, and the curve flattens), so from epoch e on it is taken to gain at most HORIZON times
its recent per-epoch improvement (the mean over the last two epochs of its best value). When even that leaves
it behind the leader's best, it is stopped. HORIZON is 0 by default (stopped as soon as it trails): on the demo
stream's metric curves a larger one bought nothing but epochs (`python -m rewarm.benchmarks.curves`,
docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
from torch import nn

from rewarm.config import TrainSection
from rewarm.training import Training, TrainResult

log = logging.getLogger("rewarm.racing")
PROGRESS_SECONDS = 10.0  # a candidate training longer than this logs a progress line this often (large snapshots)


@dataclass
class Outcome:
    """A trained candidate (or the champion) with its holdout predictions and metrics."""

    name: str
    module: nn.Module
    predictions: np.ndarray
    metrics: dict[str, float]
    result: TrainResult | None = None  # None for the champion, which is scored untouched
    run_id: str = ""  # the nested MLflow run it was logged in
    audit: str = ""  # why this (cold) candidate trained in full, when it did

    @property
    def stopped(self) -> str:
        """Why the race stopped it ('' when it trained to the end): a stopped candidate cannot win."""
        return self.result.stopped if self.result is not None else ""


@dataclass(frozen=True)
class RaceScore:
    """What candidates race on when it is the gate's METRIC (train.race_on 'metric'): SCORE of a model on the race
    rows, times SIGN (-1 where higher is better), so that the race compares lower-is-better numbers throughout."""

    metric: str
    sign: float
    score: Callable[[nn.Module], float]

    def __call__(self, model: nn.Module) -> float:
        return self.sign * self.score(model)


def _line(name: str, training: Training, leader: str, lead: float, margin: float = 0.0) -> str:
    """Why NAME was stopped, in the race's numbers as people read them: the gate metric on its own scale (e.g.
    `cold stopped at epoch 4: roc_auc 0.7012, shrink_perturb 0.7140`), or the validation loss; with the margin
    cold has to lead by, when there is one."""
    s = training.race_score
    label, sign = (s.metric, s.sign) if isinstance(s, RaceScore) else ("val_loss", 1.0)
    mine, theirs = sign * training.race_best, sign * lead
    line = f"{name} stopped at epoch {training.result.epochs}: {label} {mine:.4f}, {leader} {theirs:.4f}"
    return line + (f" (cold has to lead by {margin:.4f})" if margin else "")


@dataclass(frozen=True)
class RaceRule:
    """When a racing candidate is stopped: after MIN_EPOCHS, once even HORIZON times its recent gain leaves it
    behind the leader's best, where cold counts as ahead of a warm-started candidate only by more than
    COLD_MARGIN."""

    min_epochs: int = 2
    horizon: float = 0.0
    cold_margin: float = 0.0  # how far cold has to be ahead of a warm-started candidate to count as ahead

    @classmethod
    def configured(cls, cfg: TrainSection) -> RaceRule | None:
        """The rule [train] asks for (None without racing)."""
        return cls(cfg.race_min_epochs, cfg.race_horizon, cfg.race_cold_margin) if cfg.racing else None

    def reachable(self, curve: list[float], initial: float) -> float:
        """The lowest value (loss, or negated metric) a candidate with best-so-far CURVE (epoch 0 = INITIAL) is
        taken to reach."""
        best = [initial]
        for v in curve:
            best.append(min(best[-1], v))
        window = min(2, len(best) - 1)
        gain = (best[-1 - window] - best[-1]) / window if window else 0.0
        return best[-1] - self.horizon * max(0.0, gain)


def race(
    trainings: Mapping[str, Training],
    rule: RaceRule | None,
    full: Collection[str] = (),
    progress: Callable[[str, Training], None] | None = None,
) -> dict[str, str]:
    """Train every candidate, an epoch each in turn, until each is done; without RULE nothing is stopped early.
    Candidates named in FULL are never stopped (a cold audit). Return the stopped ones' lines, by name. A
    candidate training for long is handed to PROGRESS every PROGRESS_SECONDS (default: its progress_line logged)."""
    progress = progress or (lambda name, training: log.info(progress_line(name, training)))
    full = [n for n in full if n in trainings]
    for name in full:  # stopped in an earlier run of this round (a checkpoint): trained in full now
        trainings[name].result.stopped = trainings[name].result.stopped_by = ""
    stopped: dict[str, str] = {n: t.result.stopped for n, t in trainings.items() if t.result.stopped}
    reported = {n: t.earlier + t.seconds for n, t in trainings.items()}
    while live := [n for n, t in trainings.items() if not t.finished]:
        # Those furthest behind train first: after a resume from checkpoints written one candidate at a time,
        # the rule compares candidates at the same epoch again.
        fewest = min(trainings[n].result.epochs for n in live)
        for name in live:
            if trainings[name].result.epochs == fewest:
                trainings[name].epoch()
                if (spent := trainings[name].earlier + trainings[name].seconds) - reported[name] >= PROGRESS_SECONDS:
                    reported[name] = spent
                    progress(name, trainings[name])
        if rule is None or len(trainings) < 2:
            continue
        # A tie goes to the warm lineage, the cheaper one to keep: cold counts as ahead only by more than the margin.
        handicap = {n: rule.cold_margin if n == "cold" else 0.0 for n in trainings}
        leader = min(trainings, key=lambda n: trainings[n].race_best + handicap[n])
        lead = trainings[leader].race_best
        for name in live:
            t = trainings[name]
            if name in full or name == leader or t.finished or t.result.epochs < rule.min_epochs:
                continue
            if rule.reachable(t.result.race_loss, t.initial_race) + handicap[name] > lead + handicap[leader]:
                line = _line(name, t, leader, lead, handicap["cold"] if "cold" in (name, leader) else 0.0)
                t.stop(line, leader)
                stopped[name] = line
                log.info(line)
    return stopped


def progress_line(name: str, t: Training) -> str:
    """Where a long training is: its epoch and budget, seconds, rows, and validation loss against its best."""
    r, (best, at) = t.result, t.best[:2]
    return (
        f"{name}: epoch {r.epochs} of at most {t.cfg.max_epochs}, {t.earlier + t.seconds:.0f} s on "
        f"{len(t.train_set):,} rows; "
        f"validation loss {r.val_loss[-1]:.4f} (best {best:.4f} at epoch {at}; patience {t.cfg.patience})"
    )


def contest(
    trainings: Mapping[str, Training],
    score: Callable[[nn.Module], tuple[np.ndarray, dict[str, float]]],
    rule: RaceRule | None,
    audit: str = "",
    evidence: Callable[[dict[str, Outcome]], str] = lambda outcomes: "",
    cold: Callable[[], Training] | None = None,
    progress: Callable[[str, Training], None] | None = None,
) -> dict[str, Outcome]:
    """A round's candidates, raced and scored: cold trains in full when AUDIT says why; otherwise, when
    EVIDENCE (read from the scored outcomes) finds a reason, a cold start the race stopped goes on, in full.
    COLD, where given, makes a cold start that is not in TRAININGS (train.cold_between_audits 'skip'): it is made
    and trained in full on an AUDIT or on EVIDENCE, and not at all otherwise. Each outcome holds its best
    epoch's weights, on the training device."""
    trainings = dict(trainings)
    if audit and cold is not None and "cold" not in trainings:
        trainings["cold"] = cold()
    stopped = race(trainings, rule, {"cold"} if audit else (), progress)
    outcomes = {n: _scored(n, t, score) for n, t in trainings.items()}
    if not audit and ("cold" in trainings or cold is not None):
        audit = evidence(outcomes)
    if audit and "cold" not in trainings and cold is not None:  # the data moved: cold trains now, in full
        log.warning("%s: training cold in full", audit)
        trainings["cold"] = cold()
        race({"cold": trainings["cold"]}, None, {"cold"}, progress)
        outcomes["cold"] = _scored("cold", trainings["cold"], score)
    elif audit and "cold" in stopped and "cold" in trainings:  # the data moved: cold goes on from its last epoch
        log.warning("%s; %s: training cold in full", stopped["cold"], audit)
        race({"cold": trainings["cold"]}, None, {"cold"}, progress)
        outcomes["cold"] = _scored("cold", trainings["cold"], score)
    if audit and "cold" in outcomes:
        outcomes["cold"].audit = audit
    return outcomes


def _scored(name: str, training: Training, score: Callable) -> Outcome:
    result = training.finish()
    predictions, metrics = score(training.model)
    return Outcome(name, training.model, predictions, metrics, result)
