"""The promotion gate on crafted holdout predictions (rewarm/gate.py)."""

from __future__ import annotations

import numpy as np
import pytest

from rewarm import metrics
from rewarm.config import GateSection
from rewarm.errors import RewarmError
from rewarm.gate import FIRST_MODEL, KEEP, PROMOTE, best_candidate, decide

FAST = GateSection(bootstrap=200)


@pytest.fixture
def holdout() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    return {
        "y": y,
        "good": np.clip(0.5 * y + rng.uniform(0.1, 0.45, 400), 0.02, 0.98),  # nearly separates
        "poor": rng.uniform(0.05, 0.95, 400),  # noise
    }


def _accuracy_case(champion_right: int, challenger_right: int, n: int = 64):
    """Labels alternating 0 and 1; each model is right (P=0.9 on the label) on its first K rows and wrong on the
    rest (a holdout of one class keeps the champion whatever the numbers: test_a_later_single_class...)."""
    y = np.arange(n, dtype=np.int64) % 2
    champion = np.where((np.arange(n) < champion_right) == (y == 1), 0.9, 0.1)
    challenger = np.where((np.arange(n) < challenger_right) == (y == 1), 0.9, 0.1)
    return y, champion, challenger


def test_first_model_names_the_winner_and_its_value(holdout: dict[str, np.ndarray]) -> None:
    y = holdout["y"]
    decision = decide(FAST, "roc_auc", y, {"cold": holdout["poor"], "shrink_perturb": holdout["good"]}, None)
    auc = metrics.roc_auc(y, holdout["good"])
    assert decision.action == FIRST_MODEL and decision.promoted
    assert decision.winner == "shrink_perturb"
    assert decision.winner_value == pytest.approx(auc)
    assert (decision.champion_value, decision.improvement, decision.ci_low, decision.ci_high) == (None,) * 4
    assert "shrink_perturb" in decision.reason and f"{auc:.4f}" in decision.reason
    assert decision.reason.startswith("first model")


def test_promote_when_the_challenger_clearly_beats_the_champion(holdout: dict[str, np.ndarray]) -> None:
    y, good, poor = holdout["y"], holdout["good"], holdout["poor"]
    decision = decide(FAST, "roc_auc", y, {"shrink_perturb": good, "cold": poor}, poor, champion_version=3)
    value, base = metrics.roc_auc(y, good), metrics.roc_auc(y, poor)
    assert decision.action == PROMOTE and decision.promoted
    assert decision.winner == "shrink_perturb"
    assert decision.champion_value == pytest.approx(base)
    assert decision.improvement == pytest.approx(value - base)
    assert 0 < decision.ci_low <= decision.improvement <= decision.ci_high
    reason = decision.reason
    assert reason.startswith("promote shrink_perturb")
    for text in (
        f"{value:.4f}",
        f"{base:.4f}",
        f"{value - base:+.4f}",
        "v3",
        "95% CI",
        f"{decision.ci_low:+.4f}..{decision.ci_high:+.4f}",
        "min_delta 0",
    ):
        assert text in reason, text


def test_keep_when_the_challenger_is_worse(holdout: dict[str, np.ndarray]) -> None:
    y, good, poor = holdout["y"], holdout["good"], holdout["poor"]
    decision = decide(FAST, "roc_auc", y, {"warm": poor}, good, champion_version=7)
    assert decision.action == KEEP and not decision.promoted
    assert decision.improvement == pytest.approx(metrics.roc_auc(y, poor) - metrics.roc_auc(y, good))
    assert decision.improvement < 0
    assert decision.ci_high < 0
    assert decision.reason.startswith("keep champion v7: best challenger warm")
    assert "not above min_delta" in decision.reason


def test_keep_when_the_improvement_is_not_above_min_delta() -> None:
    y, champion, challenger = _accuracy_case(champion_right=48, challenger_right=50)  # +2/64 = 0.03125
    cfg = GateSection(bootstrap=200, min_delta=0.05)
    decision = decide(cfg, "accuracy", y, {"shrink_perturb": challenger}, champion, champion_version=1)
    assert decision.improvement == 2 / 64
    assert decision.action == KEEP
    assert "not above min_delta 0.05" in decision.reason
    # improvement exactly equal to min_delta is not "above" it
    at_edge = decide(
        GateSection(bootstrap=200, min_delta=2 / 64),
        "accuracy",
        y,
        {"shrink_perturb": challenger},
        champion,
        champion_version=1,
    )
    assert at_edge.action == KEEP
    # and just below it, the same predictions are promoted
    below = decide(
        GateSection(bootstrap=200, min_delta=0.03),
        "accuracy",
        y,
        {"shrink_perturb": challenger},
        champion,
        champion_version=1,
    )
    assert below.action == PROMOTE


def test_require_significant_keeps_when_the_ci_includes_zero() -> None:
    y, champion, challenger = _accuracy_case(champion_right=48, challenger_right=50)
    loose = decide(GateSection(bootstrap=400), "accuracy", y, {"sp": challenger}, champion, champion_version=2)
    strict = decide(
        GateSection(bootstrap=400, require_significant=True),
        "accuracy",
        y,
        {"sp": challenger},
        champion,
        champion_version=2,
    )
    # the two differing rows are missed by many resamples, so the CI's lower edge is zero
    assert loose.ci_low == strict.ci_low == 0.0
    assert loose.action == PROMOTE
    assert strict.action == KEEP
    assert "CI includes zero (require_significant)" in strict.reason


def test_require_significant_promotes_when_the_ci_excludes_zero(holdout: dict[str, np.ndarray]) -> None:
    cfg = GateSection(bootstrap=200, require_significant=True)
    y, good, poor = holdout["y"], holdout["good"], holdout["poor"]
    decision = decide(cfg, "roc_auc", y, {"sp": good}, poor, champion_version=1)
    assert decision.action == PROMOTE
    assert "and the CI excludes zero" in decision.reason


def test_lower_is_better_metric_has_the_right_sign(holdout: dict[str, np.ndarray]) -> None:
    y, good, poor = holdout["y"], holdout["good"], holdout["poor"]
    ll_good, ll_poor = metrics.log_loss(y, good), metrics.log_loss(y, poor)
    assert ll_good < ll_poor

    better = decide(FAST, "log_loss", y, {"cold": poor, "sp": good}, poor, champion_version=1)
    assert better.winner == "sp" and better.winner_value == pytest.approx(ll_good)
    assert better.improvement == pytest.approx(ll_poor - ll_good)  # positive = winner better
    assert 0 < better.ci_low <= better.improvement <= better.ci_high
    assert better.action == PROMOTE

    worse = decide(FAST, "log_loss", y, {"cold": poor}, good, champion_version=1)
    assert worse.improvement == pytest.approx(ll_good - ll_poor) and worse.improvement < 0
    assert worse.ci_low <= worse.improvement <= worse.ci_high < 0
    assert worse.action == KEEP


def test_decide_is_deterministic_for_a_seed(holdout: dict[str, np.ndarray]) -> None:
    y, good, poor = holdout["y"], holdout["good"], holdout["poor"]
    mixed = np.where(np.arange(len(y)) % 2 == 0, good, poor)
    a = decide(FAST, "roc_auc", y, {"sp": mixed}, poor, champion_version=1, seed=5)
    b = decide(FAST, "roc_auc", y, {"sp": mixed}, poor, champion_version=1, seed=5)
    assert a == b
    assert a.to_dict()["action"] == a.action


def test_best_candidate_picks_the_best_for_each_direction(holdout: dict[str, np.ndarray]) -> None:
    y, good, poor = holdout["y"], holdout["good"], holdout["poor"]
    middling = np.where(np.arange(len(y)) % 2 == 0, good, poor)
    candidates = {"cold": poor, "warm": middling, "shrink_perturb": good}
    assert best_candidate("roc_auc", y, candidates) == ("shrink_perturb", metrics.roc_auc(y, good))
    assert best_candidate("log_loss", y, candidates) == ("shrink_perturb", metrics.log_loss(y, good))
    reversed_quality = {"cold": good, "warm": middling, "shrink_perturb": poor}
    assert best_candidate("log_loss", y, reversed_quality)[0] == "cold"
    assert best_candidate("accuracy", y, reversed_quality)[0] == "cold"


def test_best_candidate_ties_go_to_the_first_listed(holdout: dict[str, np.ndarray]) -> None:
    y, good = holdout["y"], holdout["good"]
    assert best_candidate("roc_auc", y, {"warm": good, "cold": good.copy()})[0] == "warm"
    assert best_candidate("log_loss", y, {"cold": good, "warm": good.copy()})[0] == "cold"


def test_a_first_model_on_a_single_class_holdout_is_refused_clearly_under_roc_auc() -> None:
    y = np.ones(60, dtype=np.int64)
    with pytest.raises(RewarmError, match="roc_auc"):
        decide(FAST, "roc_auc", y, {"cold": np.linspace(0.1, 0.9, 60)}, None)


def test_a_later_single_class_holdout_keeps_the_champion_and_says_why() -> None:
    """A day without a late flight: roc_auc is undefined, so nothing can be compared and nothing moves; the round
    still ends (its rows join the history) instead of failing on every retry."""
    y = np.ones(60, dtype=np.int64)
    challenger, champion = np.linspace(0.1, 0.9, 60), np.linspace(0.9, 0.1, 60)
    decision = decide(FAST, "roc_auc", y, {"shrink_perturb": challenger}, champion, champion_version=3)
    assert decision.action == KEEP and not decision.promoted and decision.winner == "shrink_perturb"
    assert np.isnan(decision.winner_value) and np.isnan(decision.champion_value)
    assert decision.reason.startswith("keep champion v3: holdout roc_auc is undefined on these 60 rows of one class")
    # log loss and accuracy are defined there, but favour whichever model predicts only that class: kept too
    for metric in ("log_loss", "accuracy"):
        leaning = decide(FAST, metric, y, {"shrink_perturb": np.full(60, 0.99)}, champion, 3)
        assert leaning.action == KEEP and f"holdout {metric} cannot compare models on these 60 rows" in leaning.reason
    # two classes, as any holdout of a snapshot with both: decided as usual
    assert decide(FAST, "log_loss", np.arange(60) % 2, {"w": np.tile([0.1, 0.9], 30)}, champion, 3).action == PROMOTE
