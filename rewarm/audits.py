"""Cold audits: when the cold baseline trains in full instead of racing.

A raced cold start is usually stopped after a few epochs: the warm lineage leads. That is only safe while the
warm lineage keeps up, so cold also trains in full (an audit)
- on the first model;
- every train.cold_every retrains (counted over the registry's versions, so restarts keep the cadence);
- on evidence, compared on the same holdout rows, never one month's metric against another's:
  - shrink_perturb (or any warm-started candidate) lost to cold at the last audit, and that cold start was not
    promoted (a promoted cold start is the next round's parent: the warm lineage it lost with has ended, and the
    new one races until the cadence or the evidence below calls an audit; measured in docs/benchmarks.md);
  - this round, the best warm-started candidate does no better than a constant prediction (the training rows'
    mean or class shares): the lineage learned nothing (a degenerate first model that shrink-perturb keeps
    ranking as it did);
  - this round, the untouched champion trails the best warm-started candidate by more than
    train.audit_margin (the data moved under the champion): a cold start stopped by the race is resumed
    and trained in full in the same round. With train.audit_backoff above 1, the margin widens by that factor
    for each such audit in a row that cold lost (fruitless), until cold wins an audit again.
With train.cold_between_audits 'skip', cold does not race between audits: it trains only on the audits above
(made after the warm-started candidates when the evidence comes mid-round), and not at all in other rounds.
Each version records whether cold trained in full (rewarm.cold_full) and whether warm lost (rewarm.warm_lost).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from rewarm import metrics
from rewarm.gate import FIRST_MODEL, PROMOTE, one_class
from rewarm.metrics import HIGHER_IS_BETTER

COLD_FULL, WARM_LOST, AUDIT = "rewarm.cold_full", "rewarm.warm_lost", "rewarm.audit"
STRATEGY, DECISION = "rewarm.strategy", "rewarm.decision"  # the version's winner and the gate's action
PROMOTED_AT, ROLLED_BACK_AT = "rewarm.promoted_at", "rewarm.rolled_back_at"  # written as the alias moves


def planned(versions: Iterable[Mapping[str, str]], cold_every: int) -> str:
    """Why this round's cold start trains in full, from the tags of the model's earlier versions, oldest first
    (registry order: a --force rerun is a retrain too); '' if it races (or, with cold_between_audits 'skip',
    waits for evidence). A version from before audits existed counts as one: every round then trained cold in
    full."""
    rounds = list(versions)
    if not rounds:
        return "first model"
    audits = [i for i, tags in enumerate(rounds) if tags.get(COLD_FULL, "true") == "true"]
    if not audits:
        since, last = len(rounds), None
    else:
        since, last = len(rounds) - 1 - audits[-1], rounds[audits[-1]]
    if last is not None and last.get(WARM_LOST) == "true" and not restarted(last):
        return f"evidence: warm-started candidates lost to cold at the last audit (round {last.get('rewarm.round')})"
    if cold_every and since + 1 >= cold_every:
        return f"cadence: every {cold_every} retrains ({since} since the last audit)"
    return ""


def restarted(tags: Mapping[str, str]) -> bool:
    """Whether this version's round promoted its cold start, so the next round's warm candidates start from it: a
    cold winner the gate promoted that became champion (a stale decision never applied has no promoted_at) and was
    not rolled back."""
    promoted = tags.get(DECISION) in (PROMOTE, FIRST_MODEL) and bool(tags.get(PROMOTED_AT))
    return tags.get(STRATEGY) == "cold" and promoted and not tags.get(ROLLED_BACK_AT)


def margin(metric: str, configured: float | None, champion_value: float) -> float:
    """How far the champion may trail a warm-started candidate before that is evidence (gate-metric units)."""
    if configured is not None:
        return configured
    if metric in ("roc_auc", "accuracy"):
        return 0.05
    return 0.10 * abs(champion_value)


TRAILS = "evidence: the champion trails"  # how the champion-trails evidence line begins


def fruitless(versions: Iterable[Mapping[str, str]]) -> int:
    """How many audits the champion-trails evidence called, in a row, in which cold did not beat the warm-started
    candidates: counted back from the newest of VERSIONS (tags, oldest first) to the last audit of any kind that
    cold won. Rounds without an audit, and audits called otherwise that cold lost, are passed over."""
    count = 0
    for tags in reversed(list(versions)):
        if tags.get(COLD_FULL) != "true":
            continue
        if tags.get(WARM_LOST) == "true":
            break
        count += tags.get(AUDIT, "").startswith(TRAILS)
    return count


def champion_trails(
    metric: str,
    configured: float | None,
    champion: float,
    warm: Mapping[str, float],
    widen: tuple[float, int] = (1.0, 0),
) -> str:
    """The evidence line when the champion trails the best warm-started candidate by more than the margin, widened
    by WIDEN = (train.audit_backoff, fruitless audits): the margin times backoff**n."""
    if not warm:
        return ""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    name = max(warm, key=lambda n: sign * warm[n])
    backoff, fruitless_audits = widen
    allowed = margin(metric, configured, champion) * backoff**fruitless_audits
    gap = sign * (warm[name] - champion)
    if not gap > allowed:  # NaN too: a holdout of one class gives no AUC, and so no evidence
        return ""
    why = f", widened {widening(widen)}" if fruitless_audits and backoff > 1 else ""
    return (
        f"{TRAILS} {name} by {gap:.4f} holdout {metric} on this round's rows "
        f"({champion:.4f} vs {warm[name]:.4f}, margin {allowed:.4f}{why})"
    )


def widened_out(
    metric: str, configured: float | None, champion: float, warm: Mapping[str, float], widen: tuple[float, int]
) -> str:
    """The line saying that the champion trails by more than audit_margin but within its widened margin (WIDEN, as
    champion_trails takes it), so that only train.audit_backoff kept it from being evidence; '' otherwise."""
    backoff, fruitless_audits = widen
    if backoff <= 1 or not fruitless_audits or champion_trails(metric, configured, champion, warm, widen):
        return ""
    line = champion_trails(metric, configured, champion, warm)
    return line and (
        f"no evidence audit: {line.removeprefix('evidence: ')}; within the margin widened by train.audit_backoff "
        f"{widening(widen)}"
    )


def widening(widen: tuple[float, int]) -> str:
    """How far WIDEN = (train.audit_backoff, fruitless audits) widens audit_margin, in words."""
    backoff, fruitless_audits = widen
    return f"x{backoff**fruitless_audits:g} after {fruitless_audits} champion-trails audit(s) in a row that cold lost"


def warm_scores(metric: str, outcomes: Mapping) -> dict[str, float]:
    """METRIC of each warm-started candidate that trained to the end (rewarm.racing.Outcome by name)."""
    return {n: o.metrics[metric] for n, o in outcomes.items() if n != "cold" and not o.stopped}


def evidence(
    metric: str,
    configured: float | None,
    champion: Mapping[str, float] | None,
    outcomes: Mapping,
    task: str = "",
    y: np.ndarray | None = None,
    widen: tuple[float, int] = (1.0, 0),
    y_fit: np.ndarray | None = None,
) -> str:
    """The mid-round evidence line from a round's scored candidates (rewarm.racing.Outcome by name): the best
    warm-started candidate that trained to the end scores no better on the holdout labels Y (of TASK) than a
    constant prediction fitted on the training targets Y_FIT (Y's own when None), or the champion (its holdout
    metrics; None before the first model) trails it. '' without a champion; WIDEN widens the champion-trails
    margin (champion_trails). rewarm.racing.contest asks only where cold can train."""
    if champion is None or (y is not None and one_class(metric, y)):  # one class: nothing compares (gate.one_class)
        return ""
    warm = warm_scores(metric, outcomes)
    shape = next(iter(outcomes.values())).predictions.shape if outcomes else ()
    constant = metrics.constant(task, y, shape, y_fit) if y is not None and outcomes else None
    trails = champion_trails(metric, configured, champion[metric], warm, widen)
    return learned_nothing(metric, constant, warm) or trails


def learned_nothing(metric: str, constant: Mapping[str, float] | None, warm: Mapping[str, float]) -> str:
    """The evidence line when even the best warm-started candidate scores no better than a constant prediction
    (a lineage stuck since a degenerate model: shrink-perturb keeps its ranking, so the champion-trails check
    cannot see it)."""
    if constant is None or not warm or math.isnan(constant[metric]):
        return ""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    name = max(warm, key=lambda n: sign * warm[n] if not math.isnan(warm[n]) else -math.inf)
    if math.isnan(warm[name]) or sign * (warm[name] - constant[metric]) > 0:
        return ""
    return (
        f"evidence: the best warm-started candidate, {name}, scores {warm[name]:.4f} holdout {metric} on this "
        f"round's rows, no better than a constant prediction fitted on the training rows ({constant[metric]:.4f})"
    )


def warm_lost(metric: str, cold: float, warm: Mapping[str, float]) -> bool:
    """At an audit: did cold beat every warm-started candidate on the holdout?"""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return bool(warm) and all(sign * (cold - v) > 0 for v in warm.values())


def version_tags(metric: str, outcomes: Mapping) -> dict[str, str]:
    """What the next rounds' plans read from this round's version: did cold train in full, did warm lose to it,
    and why cold trained in full. OUTCOMES: rewarm.racing.Outcome by candidate name."""
    cold = outcomes.get("cold")
    full = cold is not None and not cold.stopped
    warm = {o.name: o.metrics[metric] for o in outcomes.values() if o.name != "cold" and not o.stopped}
    # a warm-started candidate the race stopped behind cold (which then trained in full) lost to it; one stopped
    # behind another warm-started candidate did not
    stopped = [o for o in outcomes.values() if o.name != "cold" and o.stopped and o.result.stopped_by == "cold"]
    lost = full and (bool(stopped) or warm_lost(metric, cold.metrics[metric], warm))
    return {COLD_FULL: str(full).lower(), WARM_LOST: str(lost).lower(), AUDIT: cold.audit if cold else ""}
