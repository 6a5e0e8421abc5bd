"""`rewarm benchmark service`'s bookkeeping (benchmarks/service.py): both services on the same rounds, the shift,
the totals; tiny models on real flight rows."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config

from rewarm.benchmarks import service, service_report
from rewarm.config import load_settings


@pytest.fixture
def stream(flights: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(f"2013-{m:02d}", small_month(flights, m, rows=1500, seed=m)) for m in (1, 2, 3, 4)]


def test_the_shift_changes_only_the_hours_from_its_month_on(stream: list) -> None:
    moved = service.shifted(stream)
    start = service.shift_month(len(stream))
    assert start == 3 and service.shift_month(12) == 8  # off the default cadence (audits at 1, 7, 13)
    for month, ((_, before), (_, after)) in enumerate(zip(stream, moved, strict=True), start=1):
        hours = ["sched_dep_hour", "sched_arr_hour"]
        rest = [c for c in before.columns if c not in hours]
        pd.testing.assert_frame_equal(before[rest], after[rest])
        same = (before[hours] == after[hours]).all().all()
        assert same == (month < start), month
        if month >= start:
            assert ((after[hours] - before[hours]) % 24 == service.UTC_OFFSET_HOURS).all().all()


def test_both_services_train_every_round_and_cold_only_trains_cold_in_full(tmp_path: Path, stream: list) -> None:
    settings = load_settings(write_config(tmp_path, name="service-bench"))
    train = settings.train.model_copy(update={"max_epochs": 6, "cold_every": 2})
    settings = settings.model_copy(update={"train": train})
    rows = pd.DataFrame(asdict(r) for r in service.replay(settings, "t", stream, tmp_path, [0], lambda row: None))

    assert len(rows) == 2 * len(stream)  # both services, every round, one seed
    cold_only, mine = rows[rows["service"] == "cold-only"], rows[rows["service"] == "rewarm"]
    assert cold_only["cold_full"].all() and (cold_only["audit"] == "first model").sum() == 1
    assert mine.iloc[0]["audit"] == "first model" and mine.iloc[0]["decision"] == "first_model cold"
    # round 1 is shared: the same bootstrap on the same rows gives the same champion
    first = rows[rows["round"] == 1].set_index("service")["champion_metric"]
    assert first["rewarm"] == first["cold-only"]
    # cold_every 2: a round whose previous round raced cold (stopped) is an audit, so cold never races twice in a row
    full = mine.sort_values("round")["cold_full"].tolist()
    audits = mine.sort_values("round")["audit"].tolist()
    after_race = [i for i in range(1, len(full)) if not full[i - 1]]
    assert after_race, f"cold trained in full every round ({audits}): the cadence was not exercised"
    for i in after_race:
        assert full[i] and audits[i].startswith(("cadence", "evidence")), (i + 1, audits)
    assert (rows["seconds"] > 0).all()
    totals = service_report.totals(rows, settings.metric).set_index("service")
    assert totals.loc["cold-only", "vs_cold_only"] == 1.0
    expected = mine[mine["round"] > 1]["seconds"].sum() / cold_only[cold_only["round"] > 1]["seconds"].sum()
    assert totals.loc["rewarm", "vs_cold_only"] == pytest.approx(expected)
    # Each round's champion is also scored on all of the next snapshot (the last round has none); round 1's
    # champions are the same model, so they forecast alike.
    last = rows["round"] == rows["round"].max()
    assert rows[~last]["champion_next"].between(0, 1).all() and rows[last]["champion_next"].isna().all()
    ahead = rows[rows["round"] == 1].set_index("service")["champion_next"]
    assert ahead["rewarm"] == ahead["cold-only"]
    assert 0 < totals.loc["rewarm", "champion_next_mean"] < 1
    assert "on the next snapshot" in service_report.text(totals.reset_index(), rows, settings.metric)
    # In hindsight: shrink-perturb's seconds every round, plus a full cold's where it led by more than the tolerance
    assert (cold_only["warm_seconds"] == 0).all() and (mine["warm_seconds"] < mine["seconds"]).any()
    later = lambda part: part[part["round"] > 1].set_index("round")  # noqa: E731
    warm, cold = later(mine), later(cold_only)
    never, _ = service_report.cold_where_needed(rows, settings.metric, tolerance=1.0)["t"]
    always, every = service_report.cold_where_needed(rows, settings.metric, tolerance=-1.0)["t"]
    assert never == pytest.approx(warm["warm_seconds"].sum() / cold["seconds"].sum())
    assert always == pytest.approx(never + 1.0) and every == list(range(2, len(stream) + 1))
    ratio, needed = service_report.cold_where_needed(rows, settings.metric)["t"]
    lead = cold["cold"] - warm["best_warm"]
    assert needed == [r for r in warm.index if lead[r] > service_report.TOLERANCE]
    assert ratio == pytest.approx((warm["warm_seconds"].sum() + cold["seconds"][needed].sum()) / cold["seconds"].sum())
    assert totals.loc["rewarm", "cold_where_needed"] == pytest.approx(ratio)


def test_the_report_is_logged_to_mlflow_with_its_plots(tmp_path: Path, home: Path, stream: list) -> None:
    from mlflow import MlflowClient

    settings = load_settings(write_config(tmp_path, name="service-log"))
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"max_epochs": 2})})
    rows = pd.DataFrame(asdict(r) for r in service.replay(settings, "t", stream[:3], tmp_path, [0], lambda r: None))
    table = service_report.totals(rows, settings.metric)
    files = []
    for name, figure in service_report.plot(rows, settings.metric).items():
        figure.savefig(tmp_path / name)
        files.append(tmp_path / name)
    service_report.log(rows, table, files, {"title": "service test", "seeds": [0]}, settings.metric)

    client = MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("rewarm-benchmark").experiment_id])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"service-t.png"}
    rewarm = table.set_index("service").loc["rewarm"]
    assert run.data.metrics["t.rewarm.cold_where_needed"] == pytest.approx(rewarm["cold_where_needed"])
    assert run.data.metrics["t.rewarm.vs_cold_only"] == pytest.approx(rewarm["vs_cold_only"])
    history = client.get_metric_history(run.info.run_id, f"t.cold-only.champion_{settings.metric}")
    assert [m.step for m in history] == [1, 2, 3]


def test_cold_where_needed_reads_lower_is_better_metrics_nans_and_refuses_missing_rows() -> None:
    def row(service: str, rnd: int, seconds: float, **values: float) -> dict:
        empty = {"warm_seconds": 0.0, "best_warm": float("nan"), "cold": float("nan")}
        return {"stream": "s", "seed": 0, "round": rnd, "service": service, "seconds": seconds} | empty | values

    rows = [row("rewarm", 1, 1.0), row("cold-only", 1, 1.0)]
    # log loss, lower is better: round 2 cold leads by 0.02 (needed), round 3 by 0.005 (not), round 4 has no warm
    for rnd, warm, cold in ((2, 0.52, 0.50), (3, 0.505, 0.50), (4, float("nan"), 0.50)):
        rows += [row("rewarm", rnd, 2.0, warm_seconds=1.0, best_warm=warm), row("cold-only", rnd, 4.0, cold=cold)]
    ratio, needed = service_report.cold_where_needed(pd.DataFrame(rows), "log_loss")["s"]
    assert needed == [2, 4] and ratio == pytest.approx((3 * 1.0 + 4.0 + 4.0) / 12.0)
    with pytest.raises(ValueError, match="rows differ"):
        service_report.cold_where_needed(pd.DataFrame(rows[:-1]), "log_loss")
