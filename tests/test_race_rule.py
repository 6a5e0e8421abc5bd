"""The race rule alone, on scripted curves: who is stopped, and the margin cold has to lead by (rewarm/racing.py)."""

from __future__ import annotations

import pytest

from rewarm.benchmarks.curves import Replayed, duel
from rewarm.config import TrainSection
from rewarm.racing import RaceRule, race


def _scripted(curve: list[float]) -> Replayed:
    """A candidate whose race curve is given (negated AUCs, lower is better, from 0 at epoch 0), for the rule
    alone: a recorded training played back, as benchmarks/curves.py races them."""
    return Replayed(curve, 0.0, "roc_auc")


@pytest.mark.parametrize(
    ("cold", "margin", "stopped"),
    [
        (-0.703, 0.0, "shrink_perturb"),  # no margin: cold 0.003 ahead, the warm candidate is stopped
        (-0.703, 0.005, "cold"),  # within the margin: a tie, which goes to the warm lineage
        (-0.710, 0.005, "shrink_perturb"),  # cold ahead by more than the margin still wins
    ],
)
def test_cold_has_to_lead_by_the_margin(cold: float, margin: float, stopped: str) -> None:
    trainings = {"shrink_perturb": _scripted([-0.69, -0.700, -0.701]), "cold": _scripted([-0.60, cold, cold])}
    lines = race(trainings, RaceRule(min_epochs=2, horizon=0.0, cold_margin=margin))  # type: ignore[arg-type]
    assert list(lines) == [stopped]
    assert ("cold has to lead by 0.0050" in lines[stopped]) == (margin > 0)
    leader = "cold" if stopped != "cold" else "shrink_perturb"
    assert not trainings[leader].result.stopped and trainings[stopped].result.stopped_by == leader


@pytest.mark.parametrize(("margin", "stopped"), [(0.0, ["shrink_perturb"]), (0.005, [])])
def test_a_warm_candidate_within_the_margin_of_a_leading_cold_start_goes_on(margin: float, stopped: list) -> None:
    """Cold leads by 0.010 and shrink_perturb can still reach 0.006 of it (horizon 2 x its 0.003 an epoch): stopped
    without a margin, kept going with cold counted 0.005 worse."""
    trainings = {
        "shrink_perturb": _scripted([-0.694, -0.697, -0.7, -0.701]),
        "cold": _scripted([-0.6, -0.7, -0.71, -0.711]),
    }
    lines = race(trainings, RaceRule(min_epochs=3, horizon=2.0, cold_margin=margin))  # type: ignore[arg-type]
    assert list(lines) == stopped


def test_the_configured_cold_margin() -> None:
    assert RaceRule.configured(TrainSection(racing=False)) is None
    assert RaceRule.configured(TrainSection()).cold_margin == 0.0  # by default the better number wins
    assert RaceRule.configured(TrainSection(race_cold_margin=0.005)).cold_margin == 0.005


def test_recorded_curves_race_offline_with_the_services_rule() -> None:
    # benchmarks/curves.py prices a racing rule on recorded curves through racing.race itself. Negated AUCs:
    # cold leads shrink-perturb by 0.004 from epoch 2 on; the gate would pick shrink-perturb (holdout 0.70).
    warm = {"seed": 0, "round": 2, "arm": "sp", "initial": -0.60, "val": [-0.700, -0.702, -0.703], "rows": 100}
    warm |= {"metric": 0.70}
    cold = {"seed": 0, "round": 2, "arm": "cold", "initial": -0.50, "val": [-0.690, -0.706, -0.707, -0.707]}
    cold |= {"rows": 400, "metric": 0.68}
    plain = duel([warm, cold], "sp", RaceRule(2, 0.0, 0.0)).iloc[0]
    assert plain.warm_stopped and not plain.cold_stopped  # stopped at epoch 2, trailing by 0.004
    assert plain.picked == pytest.approx(0.68) and plain.vs_both_in_full == pytest.approx(-0.02)
    assert plain.cost_vs_cold_only == pytest.approx((2 * 100 + 4 * 400) / (4 * 400))
    handicapped = duel([warm, cold], "sp", RaceRule(2, 0.0, 0.005)).iloc[0]
    assert handicapped.cold_stopped and not handicapped.warm_stopped  # 0.004 is within the margin
    assert handicapped.picked == pytest.approx(0.70) and handicapped.vs_cold_only == pytest.approx(0.02)
    assert handicapped.cost_vs_cold_only == pytest.approx((3 * 100 + 2 * 400) / (4 * 400))
