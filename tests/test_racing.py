"""Racing and cold audits (rewarm/racing.py, rewarm/audits.py) on real flight rows, tiny models, the CPU."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from flight_snapshots import small_month

from rewarm import audits, gate, metrics, racing, rounds
from rewarm.config import Settings
from rewarm.models.strategies import COLD, Strategy, initialise
from rewarm.racing import Outcome, RaceRule, contest, race
from rewarm.snapshots import SnapshotInfo
from rewarm.training import Training, predict, score_holdout, train

SP = Strategy("shrink_perturb", 0.8, 0.01)


def _settings(**train: object) -> Settings:
    data = {
        "target": "late",
        "task": "binary",
        "numeric": ["distance", "sched_dep_hour", "temp", "visib"],
        "categorical": ["carrier", "origin", "dest"],
        "landing": "unused",
        "extra_columns": "ignore",
    }
    cfg = {"max_epochs": 8, "patience": 2, "batch_size": 128, **train}
    return Settings.model_validate(
        {"model": {"name": "race", "hidden": [16], "embedding_dim": 4}, "data": data, "train": cfg}
    )


def _two_rounds(settings: Settings, flights: pd.DataFrame, folder: Path) -> tuple[rounds.RoundData, rounds.RoundData]:
    """January's and February's rounds, January kept as a Parquet file the way the history keeps it."""
    jan, feb = small_month(flights, 1, 1500), small_month(flights, 2, 1500)
    jan.to_parquet(folder / "jan.parquet", index=False)
    first = SnapshotInfo("jan", "jan", "a" * 64, len(jan), str(folder / "jan.parquet"), 1, "", None)
    second = SnapshotInfo("feb", "feb", "b" * 64, len(feb), "", 2, "", None)
    cpu = torch.device("cpu")
    data1 = rounds.prepare(settings, first, jan, [], None, cpu)
    return data1, rounds.prepare(settings, second, feb, [first], (data1.preprocessor, data1.arch), cpu)


@pytest.fixture(scope="module")
def round_two(flights: pd.DataFrame, tmp_path_factory) -> tuple[Settings, rounds.RoundData, torch.nn.Module]:
    """February's round on January's trained champion: real rows, split as a retrain splits them."""
    settings = _settings()
    data1, data2 = _two_rounds(settings, flights, tmp_path_factory.mktemp("race"))
    champion = initialise(COLD, data1.arch, None, 1)
    train(champion, data1.train, data1.val, "binary", settings.train)
    return settings, data2, champion


def _trainings(settings: Settings, data: rounds.RoundData, champion: torch.nn.Module) -> dict[str, Training]:
    t = settings.train
    out = {}
    for choice in (SP, COLD):
        model = initialise(choice, data.arch, champion, 7)
        warm = choice.from_parent
        budget = t.for_candidate(warm)
        out[choice.name] = Training(model, data.train_for(warm), data.val, "binary", budget, race_set=data.race_val)
    return out


def _score(data: rounds.RoundData):
    return lambda m: score_holdout(m, data.holdout, data.y_holdout, data.preprocessor)


def test_the_race_stops_the_trailing_candidate_and_the_leader_trains_as_if_alone(round_two) -> None:
    settings, data, champion = round_two
    trainings = _trainings(settings, data, champion)

    stopped = race(trainings, RaceRule(min_epochs=1, horizon=0.0))

    assert list(stopped) == ["cold"]
    cold = trainings["cold"].result
    assert cold.stopped == stopped["cold"] and cold.epochs < settings.train.max_epochs
    assert stopped["cold"].startswith(f"cold stopped at epoch {cold.epochs}: val_loss ")
    assert "shrink_perturb" in stopped["cold"] and cold.stopped_by == "shrink_perturb"
    leader = trainings["shrink_perturb"].finish()
    # the leader's training is untouched by the race: bit for bit what it does alone
    alone = initialise(SP, data.arch, champion, 7)
    reference = train(alone, data.train_for(True), data.val, "binary", settings.train.for_candidate(True))
    assert leader.val_loss == reference.val_loss and leader.best_epoch == reference.best_epoch
    for name, value in trainings["shrink_perturb"].model.state_dict().items():
        assert torch.equal(value, reference.state_dict[name]), name  # the best epoch's weights, not the last


def test_without_a_rule_or_on_an_audit_nothing_is_stopped(round_two) -> None:
    settings, data, champion = round_two
    assert race(_trainings(settings, data, champion), None) == {}
    trainings = _trainings(settings, data, champion)
    outcomes = contest(trainings, _score(data), RaceRule(1, 0.0), audit="cadence: every 2 retrains")
    assert not outcomes["cold"].stopped and outcomes["cold"].audit == "cadence: every 2 retrains"
    assert trainings["cold"].done  # by its own rule: early stopping or the budget


def test_a_long_training_logs_its_progress_and_a_short_one_does_not(
    round_two, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings, data, champion = round_two
    monkeypatch.setattr(racing, "PROGRESS_SECONDS", float("inf"))  # no training is long
    with caplog.at_level(logging.INFO, logger="rewarm.racing"):
        race(_trainings(settings, data, champion), None)
    assert not [r for r in caplog.records if " of at most " in r.getMessage()]

    caplog.clear()
    monkeypatch.setattr(racing, "PROGRESS_SECONDS", 0.0)  # every epoch counts as long: no slow test needed
    trainings = _trainings(settings, data, champion)
    with caplog.at_level(logging.INFO, logger="rewarm.racing"):
        race(trainings, None)
    lines = [r.getMessage() for r in caplog.records if " of at most " in r.getMessage()]
    for name, training in trainings.items():
        mine = [line for line in lines if line.startswith(f"{name}: epoch ")]
        assert len(mine) == training.result.epochs  # one a training epoch, numbered in order
        assert mine[0].startswith(f"{name}: epoch 1 of at most {training.cfg.max_epochs}, ")
        assert f" on {len(training.train_set):,} rows; validation loss " in mine[0]
        assert f"(best {training.best[0]:.4f} at epoch {training.best[1]};" in mine[-1]


def test_evidence_resumes_a_stopped_cold_start_in_full(round_two) -> None:
    settings, data, champion = round_two
    raced = contest(_trainings(settings, data, champion), _score(data), RaceRule(1, 0.0))
    assert raced["cold"].stopped  # what the race alone does

    seen: list[dict[str, Outcome]] = []
    evidence = lambda outcomes: seen.append(outcomes) or "evidence: the data moved"  # noqa: E731
    trainings = _trainings(settings, data, champion)
    audited = contest(trainings, _score(data), RaceRule(1, 0.0), evidence=evidence)

    assert seen and not audited["cold"].stopped and audited["cold"].audit == "evidence: the data moved"
    assert audited["cold"].result.epochs > raced["cold"].result.epochs
    # resumed from where it stopped: the curve goes on from the stopped epochs, not from a fresh start
    assert audited["cold"].result.val_loss[: raced["cold"].result.epochs] == raced["cold"].result.val_loss


def test_skipping_cold_between_audits_makes_it_only_on_an_audit_or_evidence(round_two) -> None:
    """train.cold_between_audits 'skip': no evidence, no audit: cold is never made; evidence: it is made after
    the warm candidates and trained in full; an audit: it is made first and trained in full."""
    settings, data, champion = round_two
    made: list[Training] = []

    def cold() -> Training:
        made.append(_trainings(settings, data, champion)["cold"])
        return made[-1]

    def warm() -> dict[str, Training]:
        return {"shrink_perturb": _trainings(settings, data, champion)["shrink_perturb"]}

    quiet = contest(warm(), _score(data), RaceRule(1, 0.0), evidence=lambda outcomes: "", cold=cold)
    assert list(quiet) == ["shrink_perturb"] and made == []
    assert audits.version_tags("roc_auc", quiet)[audits.COLD_FULL] == "false"

    seen: list[list[str]] = []
    moved = lambda outcomes: seen.append(list(outcomes)) or "evidence: the data moved"  # noqa: E731
    audited = contest(warm(), _score(data), RaceRule(1, 0.0), evidence=moved, cold=cold)
    assert seen == [["shrink_perturb"]] and len(made) == 1  # read from the warm candidates, then cold was made
    assert not audited["cold"].stopped and audited["cold"].audit == "evidence: the data moved"
    assert made[0].done and audited["cold"].result.epochs >= settings.train.patience + 1
    assert audits.version_tags("roc_auc", audited)[audits.COLD_FULL] == "true"

    planned = contest(warm(), _score(data), RaceRule(1, 0.0), "cadence: every 2 retrains", moved, cold)
    assert len(made) == 2 and len(seen) == 1  # an audit needs no evidence
    assert not planned["cold"].stopped and planned["cold"].audit == "cadence: every 2 retrains"


def test_a_stopped_candidate_never_wins_the_gate(round_two) -> None:
    settings, data, champion = round_two
    outcomes = contest(_trainings(settings, data, champion), _score(data), RaceRule(1, 0.0))
    perfect = data.y_holdout.astype(float)  # a stopped cold start that would score perfectly
    outcomes["cold"].predictions = perfect
    decision = gate.decide_round(settings.gate, "roc_auc", data.y_holdout, outcomes, None)
    assert decision.winner == "shrink_perturb"
    assert outcomes["cold"].stopped in decision.reason


def test_warm_started_candidates_train_on_the_newest_snapshot_plus_a_replay_sample(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    sizes = {}
    for fraction in (1.0, 0.25):
        _, data = _two_rounds(_settings(warm_replay_fraction=fraction), flights, tmp_path)
        sizes[fraction] = (len(data.train_for(False)), len(data.train_for(True)))
    full, _ = sizes[1.0]
    assert sizes[1.0] == (full, full)  # 1.0: the same rows as cold
    cold_rows, warm_rows = sizes[0.25]
    assert cold_rows == full
    newest = 0.8 * 0.8 * 1500  # February's rows outside the holdout and the validation, roughly
    older = full - newest
    assert abs(warm_rows - (newest + 0.25 * older)) < 0.06 * full


def test_the_reachable_loss_is_the_best_minus_horizon_times_the_recent_gain() -> None:
    rule = RaceRule(min_epochs=2, horizon=3.0)
    # best so far: 0.70 (start), 0.60, 0.55, 0.52 -> mean gain over the last two epochs 0.04
    assert rule.reachable([0.60, 0.55, 0.52], 0.70) == pytest.approx(0.52 - 3 * 0.04)
    assert rule.reachable([0.60, 0.61, 0.62], 0.70) == pytest.approx(0.60)  # no recent gain: no credit
    assert RaceRule(2, 0.0).reachable([0.5], 0.7) == 0.5


# ---- audits --------------------------------------------------------------------------------------


def _version(round_: int, cold_full: bool, warm_lost: bool = False) -> dict[str, str]:
    tags = {"rewarm.round": str(round_), audits.COLD_FULL: str(cold_full).lower()}
    return tags | {audits.WARM_LOST: str(warm_lost).lower()}


def test_an_audit_on_the_first_model_then_on_the_cadence() -> None:
    assert audits.planned([], 4) == "first model"
    history = [_version(1, True)]
    plans = []
    for r in range(2, 10):
        plan = audits.planned(history, 4)
        plans.append(plan)
        history.append(_version(r, bool(plan)))
    assert [bool(p) for p in plans] == [False, False, False, True, False, False, False, True]
    assert plans[3].startswith("cadence: every 4 retrains")
    assert audits.planned([_version(1, True), _version(2, False)], 0) == ""  # 0: never on cadence


def test_an_audit_after_warm_lost_at_the_last_one() -> None:
    history = [_version(1, True), _version(2, True, warm_lost=True), _version(3, False)]
    assert audits.planned(history, 10).startswith("evidence: warm-started candidates lost to cold")
    assert audits.planned([*history, _version(4, True)], 10) == ""  # the last audit is the one that counts
    legacy = [{"rewarm.round": "1"}, {"rewarm.round": "2"}]  # versions from before audits: cold ran in full
    assert audits.planned(legacy, 3) == ""


def test_no_evidence_audit_after_a_promoted_cold_start() -> None:
    """Cold won the audit and became champion: the next warm candidates start from it, a new lineage that races;
    cold kept out (the champion held) leaves the old lineage in place, still under evidence."""
    lost = _version(2, True, warm_lost=True)
    promoted = lost | {audits.STRATEGY: "cold", audits.DECISION: "promote", audits.PROMOTED_AT: "2026-12-03"}
    held = lost | {audits.STRATEGY: "cold", audits.DECISION: "keep"}
    never_applied = promoted | {audits.PROMOTED_AT: ""}  # the round crashed before the alias moved
    rolled_back = promoted | {audits.ROLLED_BACK_AT: "2026-12-04"}  # the old lineage's parent is champion again
    assert audits.planned([_version(1, True), promoted], 10) == ""
    for kept in (held, never_applied, rolled_back):
        assert audits.planned([_version(1, True), kept], 10).startswith("evidence: warm-started candidates lost")
    assert audits.planned([_version(1, True), promoted, _version(3, False)], 2).startswith("cadence")


def test_the_champion_trailing_the_warm_candidate_is_evidence_in_the_metrics_direction() -> None:
    assert audits.champion_trails("roc_auc", None, 0.60, {"shrink_perturb": 0.66}).startswith("evidence:")
    assert audits.champion_trails("roc_auc", None, 0.60, {"shrink_perturb": 0.64}) == ""
    assert audits.champion_trails("roc_auc", 0.01, 0.60, {"shrink_perturb": 0.62}).startswith("evidence:")
    assert audits.champion_trails("log_loss", None, 0.60, {"shrink_perturb": 0.50}).startswith("evidence:")
    assert audits.champion_trails("log_loss", None, 0.60, {"shrink_perturb": 0.55}) == ""
    assert audits.champion_trails("rmse", 1.0, 10.0, {"warm": 9.5}) == ""  # a configured margin, in metric units
    nan = float("nan")  # a holdout of one class: no AUC, and so no evidence either way
    assert audits.champion_trails("roc_auc", None, nan, {"shrink_perturb": nan}) == ""
    assert audits.warm_lost("roc_auc", 0.7, {"shrink_perturb": 0.69}) and not audits.warm_lost("rmse", 2.0, {"w": 1.0})


def test_the_margin_widens_after_each_evidence_audit_cold_lost_until_cold_wins_one() -> None:
    trails = {audits.AUDIT: "evidence: the champion trails shrink_perturb by 0.0800 holdout roc_auc"}
    lost_trail = _version(3, True) | trails  # cold trained in full on that evidence, and did not win
    cadence_lost = _version(5, True) | {audits.AUDIT: "cadence: every 6 retrains"}
    history = [_version(1, True), _version(2, False), lost_trail, _version(4, False), cadence_lost, lost_trail]
    assert audits.fruitless(history) == 2  # quiet rounds and a cadence audit cold lost are passed over
    assert audits.fruitless([*history, _version(7, True, warm_lost=True) | trails]) == 0  # cold won: reset
    assert audits.fruitless([*history, _version(7, True, warm_lost=True), lost_trail]) == 1  # a cadence win too
    assert audits.fruitless([]) == 0 and audits.fruitless([_version(1, True)]) == 0  # the first model

    warm = {"shrink_perturb": 0.68}  # the champion trails by 0.08
    assert audits.champion_trails("roc_auc", None, 0.60, warm, (2.0, 0)).endswith("margin 0.0500)")
    assert audits.champion_trails("roc_auc", None, 0.60, warm, (2.0, 1)) == ""  # 0.08 within the widened 0.10
    assert audits.champion_trails("roc_auc", None, 0.60, {"shrink_perturb": 0.71}, (2.0, 1)).endswith(
        "margin 0.1000, widened x2 after 1 champion-trails audit(s) in a row that cold lost)"
    )
    assert audits.champion_trails("roc_auc", None, 0.60, warm, (1.0, 5)).startswith("evidence:")  # backoff 1: off
    y = np.array([0, 1, 1, 0, 1, 1])
    args = ("roc_auc", None, {"roc_auc": 0.60}, {"shrink_perturb": _outcome(0.68)}, "binary", y)
    assert audits.evidence(*args).startswith("evidence: the champion trails") and audits.evidence(*args, (2.0, 1)) == ""
    # What the log says when only the widening kept the evidence back, and nothing otherwise.
    held = audits.widened_out("roc_auc", None, 0.60, warm, (2.0, 1))
    assert held.startswith("no evidence audit: the champion trails shrink_perturb by 0.0800 holdout roc_auc")
    assert held.endswith(
        "within the margin widened by train.audit_backoff x2 after 1 champion-trails audit(s) in a row that cold lost"
    )
    assert audits.widened_out("roc_auc", None, 0.60, {"shrink_perturb": 0.71}, (2.0, 1)) == ""  # it was evidence
    assert audits.widened_out("roc_auc", None, 0.60, {"shrink_perturb": 0.64}, (2.0, 1)) == ""  # within 0.05
    assert audits.widened_out("roc_auc", None, 0.60, warm, (1.0, 3)) == ""  # backoff off


def test_a_warm_lineage_no_better_than_a_constant_is_evidence() -> None:
    """A lineage stuck since a degenerate first model (titanic in the zoo: AUC 0.11, and shrink-perturb keeps
    the ranking, so the champion does not trail it) is evidence for cold, whatever the champion scores."""
    y = np.array([0, 1, 1, 0, 1, 1])
    constant = metrics.constant("binary", y, (6,))
    assert constant["roc_auc"] == 0.5 and constant["log_loss"] == pytest.approx(
        -np.log([1 / 3, 2 / 3]) @ [1 / 3, 2 / 3]
    )
    stuck = audits.evidence("roc_auc", None, {"roc_auc": 0.11}, {"shrink_perturb": _outcome(0.11)}, "binary", y)
    assert stuck.startswith("evidence: the best warm-started candidate, shrink_perturb, scores 0.1100 holdout")
    assert "no better than a constant prediction fitted on the training rows (0.5000)" in stuck
    assert audits.evidence("roc_auc", None, {"roc_auc": 0.70}, {"shrink_perturb": _outcome(0.71)}, "binary", y) == ""
    assert audits.learned_nothing("roc_auc", {"roc_auc": float("nan")}, {"shrink_perturb": 0.3}) == ""  # one class
    # a holdout of one class: a constant scores accuracy 1.0 there, which is no evidence that the lineage is stuck
    ones = np.ones(6, dtype=np.int64)
    assert audits.evidence("accuracy", None, {"accuracy": 0.5}, {"shrink_perturb": _outcome(0.9)}, "binary", ones) == ""
    three = metrics.constant("multiclass", np.array([0, 0, 2, 2]), (4, 3))  # a class absent from the holdout
    assert three["log_loss"] == pytest.approx(np.log(2)) and three["accuracy"] == 0.5
    assert metrics.constant("regression", np.array([1.0, 3.0]), (2,))["rmse"] == 1.0
    assert audits.learned_nothing("rmse", {"rmse": 1.0}, {"warm": 1.2, "shrink_perturb": 0.9}) == ""  # the best leads


def test_the_constant_is_fitted_on_the_training_rows_not_the_holdout() -> None:
    """On a trending target the holdout's own mean is an oracle no model matches (ggplot2's economics, each
    decade's last two years held out: every round called cold on it). A model that learned nothing from the
    features predicts the mean, or the class shares, of the rows it trained on."""
    y_fit, y = np.arange(100.0), np.array([190.0, 200.0, 210.0])
    assert metrics.constant("regression", y, (3,))["rmse"] == pytest.approx(np.sqrt(200 / 3))  # the oracle
    assert metrics.constant("regression", y, (3,), y_fit)["rmse"] == pytest.approx(np.sqrt(150.5**2 + 200 / 3))
    tracked = {"shrink_perturb": _outcome(20.0, "rmse", 3)}  # a model that follows the trend, 20 off
    assert audits.evidence("rmse", None, {"rmse": 21.0}, tracked, "regression", y).startswith("evidence: the best")
    assert audits.evidence("rmse", None, {"rmse": 21.0}, tracked, "regression", y, (1.0, 0), y_fit) == ""
    shares = metrics.constant("multiclass", np.array([0, 1, 2]), (3, 3), np.array([0, 0, 1, 1]))  # 2 never trained
    assert np.isfinite(shares["log_loss"]) and shares["log_loss"] > np.log(3)
    assert metrics.constant("binary", np.array([0, 1]), (2,), np.array([1, 1, 1, 0]))["log_loss"] == pytest.approx(
        -(np.log(0.25) + np.log(0.75)) / 2
    )


def _outcome(value: float, metric: str = "roc_auc", rows: int = 6) -> Outcome:
    from rewarm.training import TrainResult

    return Outcome(
        "shrink_perturb", torch.nn.Linear(1, 1), np.zeros(rows), {metric: value}, TrainResult({}, 3, 2, 10, 0.1)
    )


def test_without_cold_among_the_candidates_there_is_no_audit_to_run(round_two) -> None:
    from rewarm.tasks.candidates import plan_race

    settings, data, champion = round_two
    assert plan_race.fn("race", settings.train, [SP], None, "roc_auc").audit == ""  # the registry is not even read
    trainings = {"shrink_perturb": _trainings(settings, data, champion)["shrink_perturb"]}
    outcomes = contest(trainings, _score(data), RaceRule(1, 0.0), audit="cadence: every 2 retrains")
    assert list(outcomes) == ["shrink_perturb"] and not outcomes["shrink_perturb"].stopped


def test_version_tags_record_what_the_next_plan_reads() -> None:
    def outcome(name: str, auc: float, stopped: str = "", audit: str = "", by: str = "cold") -> Outcome:
        from rewarm.training import TrainResult

        result = TrainResult({}, 3, 2, 10, 0.1, stopped=stopped, stopped_by=by if stopped else "")
        return Outcome(name, torch.nn.Linear(1, 1), np.zeros(1), {"roc_auc": auc}, result, audit=audit)

    raced = {"shrink_perturb": outcome("shrink_perturb", 0.7), "cold": outcome("cold", 0.6, stopped="cold stopped")}
    assert audits.version_tags("roc_auc", raced) == {
        audits.COLD_FULL: "false",
        audits.WARM_LOST: "false",
        audits.AUDIT: "",
    }
    full = {"shrink_perturb": outcome("shrink_perturb", 0.7), "cold": outcome("cold", 0.72, audit="cadence")}
    assert audits.version_tags("roc_auc", full) == {
        audits.COLD_FULL: "true",
        audits.WARM_LOST: "true",
        audits.AUDIT: "cadence",
    }
    held = {"shrink_perturb": outcome("shrink_perturb", 0.75), "cold": outcome("cold", 0.72, audit="cadence")}
    assert audits.version_tags("roc_auc", held)[audits.WARM_LOST] == "false"
    # at an audit, a warm-started candidate the race stopped fell behind cold: warm lost
    behind = {
        "shrink_perturb": outcome("shrink_perturb", 0.75, stopped="shrink_perturb stopped at epoch 2"),
        "cold": outcome("cold", 0.72, audit="evidence: ..."),
    }
    assert audits.version_tags("roc_auc", behind)[audits.WARM_LOST] == "true"
    # one stopped behind another warm-started candidate did not lose to cold (which may have trained only later)
    beside = {
        "shrink_perturb": outcome("shrink_perturb", 0.75),
        "warm": outcome("warm", 0.74, stopped="warm stopped at epoch 2", by="shrink_perturb"),
        "cold": outcome("cold", 0.72, audit="evidence: ..."),
    }
    assert audits.version_tags("roc_auc", beside)[audits.WARM_LOST] == "false"


def test_racing_on_the_gate_metric_scores_the_newest_validation_rows(flights: pd.DataFrame, tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    settings = _settings(max_epochs=4)
    jan, feb = small_month(flights, 1, 800), small_month(flights, 2, 2600)
    jan.to_parquet(tmp_path / "jan.parquet", index=False)
    first = SnapshotInfo("jan", "jan", "a" * 64, len(jan), str(tmp_path / "jan.parquet"), 1, "", None)
    one = rounds.prepare(settings, first, jan, [], None, torch.device("cpu"))
    second = SnapshotInfo("feb", "feb", "b" * 64, len(feb), "", 2, "", None)
    data = rounds.prepare(settings, second, feb, [first], (one.preprocessor, one.arch), torch.device("cpu"))
    assert data.race_val is not None and len(data.race_val) < len(data.val)  # February's own validation rows
    scorer = data.race_scorer("roc_auc")
    model = initialise(COLD, data.arch, None, 3)

    expected = roc_auc_score(
        data.race_val.y.numpy(), predict(model, data.race_val.x_num, data.race_val.x_cat, "binary")
    )
    assert scorer(model) == pytest.approx(-expected)  # lower is better: the AUC negated, on the race rows' labels
    one_class = replace(data, train_frame=data.train_frame.assign(late=data.train_frame["late"].iloc[0]))
    assert one_class.race_scorer("roc_auc") is None and one_class.race_scorer("log_loss") is not None  # no AUC

    trainings = {
        c.name: Training(
            initialise(c, data.arch, None, 5 + i), data.train, data.val, "binary", settings.train, race_score=scorer
        )
        for i, c in enumerate((COLD, Strategy("cold_twin", 0.0, 1.0, from_parent=False)))
    }
    stopped = race(trainings, RaceRule(min_epochs=1, horizon=0.0))
    assert len(stopped) == 1  # horizon 0: the one behind on AUC is stopped at once
    for name, t in trainings.items():
        assert t.result.race_loss and all(-1.0 <= v <= 0.0 for v in t.result.race_loss)  # AUCs, negated
        if name in stopped:
            assert ": roc_auc 0." in stopped[name] and ", " in stopped[name]  # read on the metric's own scale
