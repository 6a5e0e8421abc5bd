"""The promotion gate: pick the best challenger, compare it with the champion, explain the decision."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np

from rewarm.config import TASK_METRICS, GateSection
from rewarm.errors import PromotionRefused
from rewarm.metrics import HIGHER_IS_BETTER, METRICS, paired_bootstrap

FIRST_MODEL, PROMOTE, KEEP = "first_model", "promote", "keep"
NOT_TRAINED = "not trained (no audit this round, no evidence; cold_between_audits skip)"  # cold between audits


@dataclass(frozen=True)
class Decision:
    """What the gate decided and why, in one line a person can read."""

    action: str  # first_model | promote | keep
    winner: str  # the best challenger's strategy
    metric: str
    winner_value: float
    champion_value: float | None = None
    improvement: float | None = None  # positive = winner better, in metric units
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str = ""

    @property
    def promoted(self) -> bool:
        return self.action in (FIRST_MODEL, PROMOTE)

    def to_dict(self) -> dict:
        return asdict(self)


def best_candidate(metric: str, y: np.ndarray, predictions: dict[str, np.ndarray]) -> tuple[str, float]:
    """Return (name, value) of the candidate with the best METRIC; ties go to the first listed."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    values = {name: METRICS[metric](y, p) for name, p in predictions.items()}
    name = max(values, key=lambda k: sign * values[k])
    return name, values[name]


def decide_round(
    cfg: GateSection,
    metric: str,
    y: np.ndarray,
    outcomes: Mapping,
    champion: np.ndarray | None,
    champion_version: int | None = None,
    seed: int = 0,
    skipped: Collection[str] = (),
) -> Decision:
    """decide() over a round's candidates (rewarm.racing.Outcome by name): only those that trained to the end
    compete (a stopped one cannot win); the race's stops, a cold audit, and the SKIPPED candidates (configured,
    not trained: cold between audits) are added to the reason."""
    finished = {o.name: o.predictions for o in outcomes.values() if not o.stopped}
    decision = decide(cfg, metric, y, finished, champion, champion_version, seed)
    notes = [o.stopped for o in outcomes.values() if o.stopped]
    notes += [f"cold audit ({o.audit})" for o in outcomes.values() if o.audit]
    notes += [f"{n} {NOT_TRAINED}" for n in skipped]
    return replace(decision, reason="; ".join([decision.reason, *notes])) if notes else decision


def decide(
    cfg: GateSection,
    metric: str,
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    champion: np.ndarray | None,
    champion_version: int | None = None,
    seed: int = 0,
) -> Decision:
    """Decide first_model, promote or keep from holdout predictions of every challenger and the champion."""
    winner, value = best_candidate(metric, y, predictions)
    if np.isnan(value) and champion is None:  # a first model needs a score (rewarm.rounds refuses it earlier)
        raise PromotionRefused(
            f"holdout {metric} is undefined on these {len(y)} rows (a single class?); "
            "land a larger snapshot or gate on log_loss or accuracy"
        )
    if champion is not None and one_class(metric, y):  # a snapshot of one class (rewarm.advice.one_class)
        reason = _one_class(metric, y, champion_version)
        return Decision(KEEP, winner, metric, value, METRICS[metric](y, champion), reason=reason)
    if champion is None:
        reason = f"first model: {winner} has holdout {metric} {value:.4f}; no champion to compare with"
        return Decision(FIRST_MODEL, winner, metric, value, reason=reason)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    base = METRICS[metric](y, champion)
    improvement = sign * (value - base)
    low, high = sorted(
        sign * d
        for d in paired_bootstrap(metric, y, predictions[winner], champion, cfg.bootstrap, cfg.confidence, seed)
    )
    promote = improvement > cfg.min_delta and (not cfg.require_significant or low > 0)
    reason = _explain(promote, cfg, metric, winner, value, base, improvement, (low, high), champion_version)
    return Decision(PROMOTE if promote else KEEP, winner, metric, value, base, improvement, low, high, reason)


def one_class(metric: str, y: np.ndarray) -> bool:
    """A classification holdout whose rows hold one class: roc_auc is undefined there, and log loss and accuracy
    reward whichever model leans furthest towards that class, so no metric can compare models on it."""
    return metric not in TASK_METRICS["regression"] and len(np.unique(y)) < 2


def _one_class(metric: str, y: np.ndarray, champion_version: int | None) -> str:
    undefined = "is undefined" if metric == "roc_auc" else "cannot compare models"
    return (
        f"keep champion v{champion_version}: holdout {metric} {undefined} on these {len(y)} rows of one class; "
        "its rows join the history that later rounds train on"
    )


def _explain(
    promote: bool,
    cfg: GateSection,
    metric: str,
    winner: str,
    value: float,
    base: float,
    improvement: float,
    ci: tuple[float, float],
    champion_version: int | None,
) -> str:
    pct = round(cfg.confidence * 100)
    numbers = (
        f"holdout {metric} {value:.4f} vs champion v{champion_version} {base:.4f} "
        f"(improvement {improvement:+.4f}, {pct}% CI {ci[0]:+.4f}..{ci[1]:+.4f})"
    )
    if promote:
        rule = f"above min_delta {cfg.min_delta:g}" + (" and the CI excludes zero" if cfg.require_significant else "")
        return f"promote {winner}: {numbers}, {rule}"
    keep = f"keep champion v{champion_version}: best challenger {winner} {numbers}"
    if improvement <= cfg.min_delta:
        return f"{keep}, not above min_delta {cfg.min_delta:g}"
    return f"{keep}, CI includes zero (require_significant)"
