"""Racing and cold audits through the real retrain flow: real Prefect, real MLflow registry, real flight rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient

from rewarm import audits, status
from rewarm.cli import main
from rewarm.flows.retrain import retrain

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

NAME = "flights-race"


def _config(folder: Path) -> Path:
    """Two retrains between cadence audits; a race that stops cold after one epoch behind; no evidence audits."""
    path = write_config(folder, NAME)
    text = path.read_text().replace(
        "[train]\n", "[train]\ncold_every = 2\nrace_min_epochs = 1\nrace_horizon = 0.0\naudit_margin = 1.0\n"
    )
    path.write_text(text)
    return path


def test_cold_races_between_audits_and_the_cadence_is_read_from_the_registry(
    tmp_path: Path, home: Path, flights: pd.DataFrame
) -> None:
    (tmp_path / "landing").mkdir()
    months = []
    for m in range(1, 5):
        months.append(tmp_path / "landing" / f"flights-2013-{m:02d}.parquet")
        small_month(flights, m).to_parquet(months[-1], index=False)
    config = str(_config(tmp_path))
    first = retrain(str(months[0]), config=config)
    client = MlflowClient()  # the store the flow opened

    def tags(version: int) -> dict[str, str]:
        return client.get_model_version(NAME, str(version)).tags

    assert tags(first.version)[audits.AUDIT] == "first model" and tags(first.version)[audits.COLD_FULL] == "true"
    assert audits.restarted(tags(first.version))  # the flow writes what the audit plan reads: cold, promoted

    second = retrain(str(months[1]), config=config)  # between audits: cold races and trails after one epoch
    assert second.strategies["cold"]["stopped"] == 1.0 and second.strategies["cold"]["epochs"] == 1
    assert tags(second.version)[audits.COLD_FULL] == "false"
    assert not audits.restarted(tags(second.version))  # cold was stopped: it did not win
    assert second.winner == "shrink_perturb" or second.decision == "keep"
    assert "cold stopped at epoch 1: roc_auc " in second.reason  # the race reads the gate's metric
    cold_run = _nested(client, second, "cold")
    assert cold_run.data.tags["rewarm.stopped"].startswith("cold stopped at epoch 1")
    assert len(client.get_metric_history(cold_run.info.run_id, "val_loss")) == 1  # its curve, as it stood
    assert "holdout_roc_auc" in cold_run.data.metrics  # its holdout score as it stood

    # The cadence comes from the registry, not from this process: mark round 2 an audit by hand and round 3
    # is no longer one.
    client.set_model_version_tag(NAME, str(second.version), audits.COLD_FULL, "true")
    third = retrain(str(months[2]), config=config)
    assert third.strategies["cold"]["stopped"] == 1.0 and tags(third.version)[audits.COLD_FULL] == "false"

    text = status.render(status.collect(client, NAME, cold_every=2))
    assert "next retrain, cold: cadence: every 2 retrains (1 since the last audit)" in text
    # Round 2's audit as the champion-trails evidence called it, cold losing: a backoff of 2 doubles the margin,
    # the default (1) never widens it.
    client.set_model_version_tag(NAME, str(second.version), audits.AUDIT, f"{audits.TRAILS} shrink_perturb by 0.1")
    assert "evidence margin" not in status.render(status.collect(client, NAME, cold_every=2))
    widened = status.render(status.collect(client, NAME, cold_every=2, backoff=2.0))
    assert "evidence margin: audit_margin x2 after 1 champion-trails audit(s) in a row that cold lost" in widened
    fourth = retrain(str(months[3]), config=config)  # two retrains since the last audit: cold in full
    assert fourth.strategies["cold"]["stopped"] == 0.0
    assert tags(fourth.version)[audits.AUDIT].startswith("cadence: every 2 retrains")
    assert tags(fourth.version)[audits.COLD_FULL] == "true"
    assert "cold audit (cadence" in fourth.reason


def test_skipping_cold_between_audits_trains_no_cold_start_until_the_cadence(
    tmp_path: Path, home: Path, flights: pd.DataFrame, capsys: pytest.CaptureFixture
) -> None:
    """cold_between_audits 'skip': the round between audits trains shrink-perturb alone (no cold run in MLflow),
    and status says so; the cadence's audit then makes and trains cold in full."""
    (tmp_path / "landing").mkdir()
    months = []
    for m in range(1, 4):
        months.append(tmp_path / "landing" / f"flights-2013-{m:02d}.parquet")
        small_month(flights, m).to_parquet(months[-1], index=False)
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('cold_between_audits = "race"', 'cold_between_audits = "skip"'))
    config = str(path)
    retrain(str(months[0]), config=config)
    client = MlflowClient()

    second = retrain(str(months[1]), config=config)
    assert list(second.strategies) == ["shrink_perturb"]
    assert "cold not trained (no audit this round, no evidence; cold_between_audits skip)" in second.reason
    assert client.get_model_version(NAME, str(second.version)).tags[audits.COLD_FULL] == "false"
    winner = client.get_run(client.get_model_version(NAME, str(second.version)).run_id)
    round_params = client.get_run(winner.data.tags["mlflow.parentRunId"]).data.params
    assert (round_params["audit_margin"], round_params["audit_backoff"]) == ("1.0", "1.0")  # what judged evidence
    with pytest.raises(StopIteration):
        _nested(client, second, "cold")
    assert main(["status", "--config", config]) == 0  # what the next retrain does, read from the config
    assert "next retrain, cold: cadence: every 2 retrains" in capsys.readouterr().out

    third = retrain(str(months[2]), config=config)
    assert third.strategies["cold"]["stopped"] == 0.0
    assert client.get_model_version(NAME, str(third.version)).tags[audits.AUDIT].startswith("cadence: every 2")
    assert "holdout_roc_auc" in _nested(client, third, "cold").data.metrics
    # with no audit due, status says cold is skipped, not that it races
    client.set_model_version_tag(NAME, str(third.version), audits.WARM_LOST, "false")
    assert main(["status", "--config", config]) == 0
    assert f"next retrain, cold: {status.SKIPPED}" in capsys.readouterr().out
    path.write_text(path.read_text().replace('cold_between_audits = "skip"', 'cold_between_audits = "race"'))
    assert main(["status", "--config", config]) == 0
    assert "next retrain, cold: races (stopped once it cannot catch up)" in capsys.readouterr().out


def test_evidence_mid_round_makes_the_skipped_cold_start_in_its_own_run(
    tmp_path: Path, home: Path, flights: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cold_between_audits 'skip': evidence found after shrink-perturb is scored makes cold, in full, in a nested
    run of its own that the version's tags and the decision name. The evidence is forced (whether a real month's
    champion trails by the margin depends on the rows); everything after it runs for real."""
    from rewarm.tasks import candidates

    (tmp_path / "landing").mkdir()
    months = []
    for m in (1, 2):
        months.append(tmp_path / "landing" / f"flights-2013-{m:02d}.parquet")
        small_month(flights, m).to_parquet(months[-1], index=False)
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('cold_between_audits = "race"', 'cold_between_audits = "skip"'))
    retrain(str(months[0]), config=str(path))
    seen: list[list[str]] = []
    forced = "evidence: forced by the test"
    monkeypatch.setattr(
        candidates, "_evidence", lambda cfg, plan, data, outcomes: seen.append(list(outcomes)) or forced
    )

    second = retrain(str(months[1]), config=str(path))

    assert seen == [["shrink_perturb"]]  # read once, from the warm candidate alone
    assert set(second.strategies) == {"shrink_perturb", "cold"} and second.strategies["cold"]["stopped"] == 0.0
    client = MlflowClient()
    tags = client.get_model_version(NAME, str(second.version)).tags
    assert tags[audits.COLD_FULL] == "true" and tags[audits.AUDIT] == forced
    assert f"cold audit ({forced})" in second.reason and "not trained" not in second.reason
    cold_run = _nested(client, second, "cold")
    assert cold_run.data.tags["rewarm.audit"] == forced and "holdout_roc_auc" in cold_run.data.metrics
    assert len(client.get_metric_history(cold_run.info.run_id, "val_loss")) == int(second.strategies["cold"]["epochs"])


def _nested(client: MlflowClient, result, name: str):
    version = client.get_model_version(NAME, str(result.version))
    parent = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    experiment = client.get_experiment_by_name(NAME).experiment_id
    runs = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    return next(r for r in runs if r.info.run_name == name)
