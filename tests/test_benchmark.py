"""The benchmark's bookkeeping: every arm sees the same data and seeds; totals and ratios come from the raw rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient

from rewarm.benchmarks import scaling, summary
from rewarm.benchmarks.replay import replay, stage
from rewarm.benchmarks.report import markdown, write
from rewarm.benchmarks.run import Options, arms
from rewarm.cli import main
from rewarm.config import load_settings
from rewarm.splits import validation_mask


@pytest.fixture
def tiny(tmp_path: Path, flights: pd.DataFrame) -> tuple:
    settings = load_settings(write_config(tmp_path, name="bench-test"))
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"max_epochs": 3})})
    stream = [(f"2013-{m:02d}", small_month(flights, m, rows=500, seed=m)) for m in (1, 2, 3)]
    return settings, stage(stream, tmp_path / "snapshots")


def test_every_arm_sees_the_same_rows_and_seeds(tiny: tuple) -> None:
    settings, staged = tiny
    chosen = arms(settings, Options())
    rows = pd.DataFrame(r.to_dict() for r in replay(settings, "tiny", staged, chosen, [7, 8], torch.device("cpu")))
    assert len(rows) == 3 * len(chosen) * 2  # rounds x arms x seeds, the bootstrap recorded for every arm
    assert set(rows["arm"]) == {"cold", "warm", "shrink_perturb", "lightgbm", "lightgbm_continued"}
    trees = rows[rows["arm"].str.startswith("lightgbm")]
    rows = rows[~rows["arm"].str.startswith("lightgbm")]
    # Every arm trains on the rows a retrain gives its strategy: cold on all of them, the warm-started arms on
    # one and the same sample (the newest snapshot plus a replay share); the same for every seed.
    later_rows = rows[rows["round"] > 1]
    assert (later_rows.groupby(["round", "arm"])["rows_train"].nunique() == 1).all()
    per_arm = later_rows.groupby(["round", "arm"])["rows_train"].first().unstack()
    assert (per_arm["warm"] == per_arm["shrink_perturb"]).all() and (per_arm["warm"] < per_arm["cold"]).all()
    assert (rows[rows["round"] == 1]["rows_train"].nunique()) == 1  # the bootstrap: one cold start for all
    assert per_arm["cold"].is_monotonic_increasing  # cumulative history grows
    for _, cell in rows.groupby(["round", "arm"]):
        assert sorted(cell["seed"]) == [7, 8]
    # Round 1 is one cold start per seed, shared: identical numbers under every arm.
    first = rows[rows["round"] == 1]
    assert (first.groupby("seed")["value"].nunique() == 1).all()
    # After it the lineages differ: a warm start does not reproduce cold's model.
    later = rows[(rows["round"] == 2) & (rows["seed"] == 7)].set_index("arm")
    assert later.loc["warm", "value"] != later.loc["cold", "value"]
    sp = rows[(rows["arm"] == "shrink_perturb") & (rows["round"] > 1)]
    assert set(sp["shrink"]) == {settings.train.shrink} and set(sp["perturb"]) == {settings.train.perturb}
    # The trees: refitted on every training row (cold's rows), or continued on the newest snapshot's alone.
    fits = trees[trees["seed"] == 7].set_index(["round", "arm"])["rows_train"].unstack()
    cold_rows = rows[(rows["arm"] == "cold") & (rows["seed"] == 7)].set_index("round")["rows_train"]
    assert (fits["lightgbm"] == cold_rows).all()
    assert fits.loc[1, "lightgbm_continued"] == fits.loc[1, "lightgbm"]  # round 1: nothing to continue
    assert (fits.loc[[2, 3], "lightgbm_continued"] < fits.loc[[2, 3], "lightgbm"]).all()
    # Every arm's model is also scored on the whole next snapshot; the last round has none.
    both = pd.concat([rows, trees])
    assert (
        both[both["round"] < 3]["next_value"].between(0, 1).all()
        and both[both["round"] == 3]["next_value"].isna().all()
    )


def test_continued_trees_boost_on_from_the_last_model(tiny: tuple) -> None:
    from rewarm.benchmarks import trees
    from rewarm.rounds import prepare

    settings, staged = tiny
    first = prepare(settings, staged[0][0], staged[0][1], [], None, torch.device("cpu"))
    second = prepare(settings, staged[1][0], staged[1][1], [staged[0][0]], (first.preprocessor, first.arch), "cpu")
    old, _ = trees.fit(first.preprocessor, first.train_frame)
    newest = second.train_frame.tail(second.newest_rows)
    continued, _ = trees.fit(second.preprocessor, newest, init_model=old)
    fresh, _ = trees.fit(second.preprocessor, newest)
    assert continued.booster_.num_trees() == old.booster_.num_trees() + fresh.booster_.num_trees()
    seen = [trees.predict(m, second.preprocessor, second.holdout_frame) for m in (continued, fresh)]
    assert not (seen[0] == seen[1]).all()


def test_a_seed_reproduces_its_numbers(tiny: tuple) -> None:
    settings, staged = tiny
    chosen = arms(settings, Options())[:2]
    once, twice = ([r.value for r in replay(settings, "t", staged, chosen, [3], torch.device("cpu"))] for _ in range(2))
    assert once == twice


def _row(arm: str, seed: int, rnd: int, value: float, seconds: float, samples: int) -> dict:
    return {
        "stream": "s",
        "arm": arm,
        "seed": seed,
        "round": rnd,
        "snapshot": f"m{rnd}",
        "metric": "roc_auc",
        "value": value,
        "seconds": seconds,
        "epochs": 1,
        "samples_seen": samples,
    }


def test_totals_and_ratios_are_computed_from_the_raw_rows() -> None:
    rows = [
        # round 1 (the shared bootstrap) is left out of the totals whatever it cost
        *[_row(a, s, 1, 0.60, 100.0, 1000) for a in ("cold", "sp") for s in (0, 1)],
        _row("cold", 0, 2, 0.70, 10.0, 400),
        _row("cold", 1, 2, 0.72, 14.0, 600),
        _row("cold", 0, 3, 0.80, 20.0, 800),
        _row("cold", 1, 3, 0.80, 16.0, 800),
        _row("sp", 0, 2, 0.705, 3.0, 100),
        _row("sp", 1, 2, 0.70, 5.0, 100),
        _row("sp", 0, 3, 0.70, 6.0, 200),
        _row("sp", 1, 3, 0.70, 4.0, 200),
    ]
    tot = summary.totals(pd.DataFrame(rows)).set_index("arm")
    # cold: per-seed sums 30 and 30 -> 30 s; sp: 9 and 9 -> 9 s; ratio 0.3
    assert tot.loc["cold", "cum_seconds"] == pytest.approx(30.0) and tot.loc["sp", "cum_seconds"] == pytest.approx(9.0)
    assert tot.loc["sp", "seconds_vs_cold"] == pytest.approx(0.3)
    assert tot.loc["sp", "samples_vs_cold"] == pytest.approx(300 / 1300)
    assert tot.loc["sp", "metric_mean"] == pytest.approx((0.705 + 0.70 + 0.70 + 0.70) / 4)
    # round 2: cold 0.71 ± 0.01, sp 0.7025 >= 0.70 -> within; round 3: cold 0.80 ± 0, sp 0.70 -> not
    assert tot.loc["sp", "rounds_within_cold_1std"] == 1 and tot.loc["sp", "rounds"] == 2
    per = summary.per_round(pd.DataFrame(rows)).set_index(["arm", "round"])
    assert per.loc[("cold", 2), "value_mean"] == pytest.approx(0.71)
    assert per.loc[("cold", 2), "value_std"] == pytest.approx(0.01)
    text = markdown(pd.DataFrame(rows), "t")
    assert tot.loc["sp", "metric_std"] == pytest.approx(0.00125)  # seeds' means 0.7025 and 0.70
    assert "| 9.00 (± 0.00) | 0.30 | 0.23 | 1/2 |" in text and "| sp | 0.7012 ± 0.001" in text


def test_the_sweep_adds_one_arm_per_grid_point(tiny: tuple) -> None:
    settings, _ = tiny
    chosen = arms(settings, Options(sweep=True, shrink_grid=(0.3, 0.6), perturb_grid=(0.0, 0.01, 0.1)))
    assert [a.label for a in chosen[:2]] == ["cold", "warm"] and len(chosen) == 2 + 6
    assert {(a.strategy.shrink, a.strategy.perturb) for a in chosen[2:]} == {
        (s, p) for s in (0.3, 0.6) for p in (0.0, 0.01, 0.1)
    }


def test_outputs_are_written(tiny: tuple, tmp_path: Path) -> None:
    settings, staged = tiny
    rows = replay(settings, "tiny", staged, arms(settings, Options())[:2], [0], torch.device("cpu"))
    files = write(pd.DataFrame(r.to_dict() for r in rows), tmp_path / "out", "t", {"seeds": [0]})
    assert {f.name for f in files} == {"rows.csv", "rows.json", "report.md", "tiny.png"}
    assert len(pd.read_csv(tmp_path / "out" / "rows.csv")) == len(rows)
    assert (tmp_path / "out" / "tiny.png").read_bytes()[:4] == b"\x89PNG"
    # What each arm costs beside what it scores: samples a second and the network's parameters.
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| samples/s | parameters |" in report
    params = max(r.parameters for r in rows if r.round > 1 and r.arm == "cold")
    assert params > 0 and f"| {params:,} |" in report


@pytest.mark.slow
def test_benchmark_command_logs_to_mlflow(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, name="bench-cli")
    out = tmp_path / "bench"
    argv = ["benchmark", "--config", str(config), "--months", "2", "--seeds", "1", "--small-rows", "200"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "## monthly" in capsys.readouterr().out and (out / "small-200.png").is_file()
    client = MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("rewarm-benchmark").experiment_id])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"rows.csv", "report.md", "monthly.png"}
    assert "monthly.shrink_perturb.seconds_vs_cold" in run.data.metrics


@pytest.mark.slow
def test_scaling_measures_each_size_and_both_caps(tmp_path: Path, flights: pd.DataFrame) -> None:
    settings = load_settings(write_config(tmp_path, name="scaling-test"))
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"max_epochs": 1})})
    text = scaling.run(settings, tmp_path / "out", quick=True)  # 1x and 2x of the demo's year, one epoch each

    rows = json.loads((tmp_path / "out" / "scaling.json").read_text())
    assert list(rows) == [
        "cumulative 1x",
        "cumulative 2x",
        "window: last 3 months",
        "replay: newest month + 25% of history",
    ]
    for row in rows.values():
        assert set(row) == {"cold", "shrink_perturb"} and row["cold"]["rows"] == row["shrink_perturb"]["rows"]
        assert all(r["epochs"] == 1 and r["seconds"] > 0 and r["samples_per_s"] > 0 for r in row.values())
    train_share = 1 - settings.data.validation_fraction
    one = rows["cumulative 1x"]["cold"]["rows"]
    assert rows["cumulative 2x"]["cold"]["rows"] == 2 * one  # each copy keeps its original's validation side
    assert one == pytest.approx(len(flights) * train_share, rel=0.02)
    december, autumn = (flights["month"] == 12).sum(), (flights["month"] >= 10).sum()
    assert rows["window: last 3 months"]["cold"]["rows"] == pytest.approx(autumn * train_share, rel=0.02)
    replayed = december + 0.25 * (len(flights) - december)
    assert rows["replay: newest month + 25% of history"]["cold"]["rows"] == pytest.approx(
        replayed * train_share, rel=0.03
    )
    assert "cumulative 2x" in text and (tmp_path / "out" / "scaling.md").read_text() == text
    # the configured [model] is what is measured (tabm by default, with the tiny config's width), not a plain MLP
    assert "tabm, 4 members of 16, 16 bins" in text


def test_scaling_holds_out_each_months_last_rows_when_snapshots_are_in_time_order(tmp_path: Path) -> None:
    spec = load_settings(write_config(tmp_path)).data
    spec = spec.model_copy(update={"holdout_split": "tail", "validation_split": "auto", "validation_fraction": 0.25})
    month = np.array([1, 2, 1, 2, 1, 2, 1, 2, 3, 3, 3, 3])  # the months' rows interleaved, each in time order
    year = pd.DataFrame({"late": np.arange(len(month))})
    held = scaling.held_out(spec, year, month)
    assert np.flatnonzero(held).tolist() == [6, 7, 11]  # the last of each month's four rows
    hashed = spec.model_copy(update={"holdout_split": "hash"})
    expected = np.zeros(len(year), dtype=bool)  # by content, each month a snapshot (at least one row of each)
    for m in (1, 2, 3):
        expected[month == m] = validation_mask(year[month == m], 0.25)
    assert scaling.held_out(hashed, year, month).tolist() == expected.tolist()


def test_the_lineage_sweep_follows_each_candidate_from_its_own_last_model(tiny: tuple) -> None:
    from rewarm.benchmarks import lineage_sweep

    settings, staged = tiny
    rows = pd.DataFrame(lineage_sweep._lineage(settings, "a", staged) + lineage_sweep._trees(settings, staged))
    assert sorted(rows["round"]) == [2, 2, 3, 3]  # a retrain per month after the bootstrap, beside the trees
    net = rows[rows["candidate"] == "a"]
    assert net[["validation", "holdout"]].stack().between(0, 1).all() and (net["epochs"] >= 1).all()
    assert net["next"].iloc[0] > 0 and np.isnan(net["next"].iloc[-1])  # the last month has no next snapshot
    worse = net.assign(candidate="b", validation=net["validation"] - 0.05)
    table = lineage_sweep.summarise(pd.concat([worse, rows]), "roc_auc")
    assert table.index("| a |") < table.index("| b |") < table.index("| lightgbm | (fits on them)")  # by validation
