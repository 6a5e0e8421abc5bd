"""The retrain loop end to end: real Prefect (test server), real MLflow (temp SQLite), real flight data."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from flight_snapshots import logged_by, small_month, write_config
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from rewarm import quarantine, racing, registry, status
from rewarm.errors import RegistryError, SnapshotRejected
from rewarm.flows.retrain import retrain
from rewarm.snapshots import list_history
from rewarm.store import resolve_store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def months(tmp_path: Path, flights: pd.DataFrame) -> list[Path]:
    """Three monthly snapshots; March brings a destination never seen in January or February."""
    landing = tmp_path / "landing"
    landing.mkdir()
    jan, feb, mar = (small_month(flights, m) for m in (1, 2, 3))
    newcomer = "ZZZ"  # not an airport in 2013's data: certainly absent from earlier vocabularies
    jan = jan[jan["dest"] != newcomer]
    mar.loc[:199, "dest"] = newcomer
    paths = []
    for i, frame in enumerate((jan, feb, mar), start=1):
        path = landing / f"flights-2013-{i:02d}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def test_bootstrap_then_two_retrains(tmp_path: Path, home: Path, months: list[Path]) -> None:
    config = write_config(tmp_path)
    first = retrain(str(months[0]), config=str(config))
    second = retrain(str(months[1]), config=str(config))
    third = retrain(str(months[2]), config=str(config), strategies=["shrink_perturb", "cold", "warm"])
    client, name = MlflowClient(), "flights-test"

    assert first.decision == "first_model" and first.version == 1
    assert list(first.strategies) == ["cold"]  # no champion yet: bootstrap is a cold start
    assert "first model" in first.reason
    assert set(second.strategies) == {"shrink_perturb", "cold"}
    assert set(third.strategies) == {"shrink_perturb", "cold", "warm"}
    for before, summary in ((first, second), (second, third)):
        champion_then = 1 if before.decision == "keep" else before.version  # v1 is the bootstrap
        assert summary.decision in ("promote", "keep")
        assert summary.reason.startswith(summary.decision)
        assert f"champion v{champion_then} " in summary.reason and "95% CI" in summary.reason

    # Aliases: champion on a complete version; challenger only when the last round kept the champion.
    champion = registry.current_version(client, name, registry.CHAMPION)
    expected = third.version if third.decision == "promote" else (second.version if second.decision == "promote" else 1)
    assert champion == expected
    assert registry.is_complete(client, name, champion)
    challenger = registry.current_version(client, name, registry.CHALLENGER)
    assert challenger == (None if third.decision == "promote" else third.version)
    assert len(client.search_model_versions(f"name = '{name}'")) == 3  # one version per retrain

    # Runs: one parent per retrain with nested runs per strategy plus the champion's scoring.
    experiment = client.get_experiment_by_name(name)
    parents = client.search_runs(
        [experiment.experiment_id], "tags.`rewarm.kind` = 'retrain'", order_by=["attributes.start_time ASC"]
    )
    assert len(parents) == 3
    last = parents[-1]
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{last.info.run_id}'")
    assert sorted(r.info.run_name for r in children) == ["champion", "cold", "shrink_perturb", "warm"]
    keys = {
        "holdout_roc_auc",
        "holdout_log_loss",
        "holdout_accuracy",
        "train_seconds",
        "epochs",
        "samples_seen",
    }
    for child in children:
        assert keys <= set(child.data.metrics), child.info.run_name
        assert child.info.status == "FINISHED"
    sp = next(c for c in children if c.info.run_name == "shrink_perturb")
    assert sp.data.params["strategy"] == "shrink_perturb"
    assert float(sp.data.params["shrink"]) == 0.8 and float(sp.data.params["perturb"]) == 0.01
    assert {"max_epochs", "seed", "batch_size"} <= set(sp.data.params)
    curve = client.get_metric_history(sp.info.run_id, "val_loss")
    assert [m.step for m in curve] == list(range(1, int(sp.data.metrics["epochs"]) + 1))

    # Lineage on the parent run and on the registered version.
    assert last.data.tags["rewarm.snapshot"] == "flights-2013-03.parquet"
    assert len(last.data.tags["rewarm.snapshot_sha256"]) == 64
    assert last.data.tags["rewarm.parent_version"] == str(expected if third.decision == "keep" else third.replaced)
    assert int(last.data.tags["rewarm.rows_train"]) > 2000
    assert last.data.tags["rewarm.decision"] == third.decision
    assert last.data.metrics["train_seconds_total"] == pytest.approx(
        sum(s["train_seconds"] for s in third.strategies.values())
    )
    # compute saved against cold is only known when cold trained in full (not stopped by the race)
    assert ("compute_saved_vs_cold" in last.data.metrics) == (not third.strategies["cold"]["stopped"])
    assert last.inputs.dataset_inputs, "training data is logged as an MLflow dataset input"
    artifacts = [a.path for a in client.list_artifacts(last.info.run_id)]
    assert "learning_curves.png" in artifacts
    version = client.get_model_version(name, str(third.version))
    assert version.tags["rewarm.snapshot_sha256"] == third.sha256
    assert version.tags["rewarm.reason"] == third.reason
    assert version.run_id == next(c for c in children if c.info.run_name == third.winner).info.run_id
    # What the MLflow UI shows: the round's run lists the model it logged (and so the version registered from
    # it), a model-training experiment, and one history run whose metrics are lines over rounds.
    [output] = last.outputs.model_outputs
    assert output.model_id == version.source.removeprefix("models:/") and output.step == 3
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    [history] = client.search_runs([experiment.experiment_id], "tags.`rewarm.kind` = 'history'")
    assert history.info.status == "FINISHED"
    champions = client.get_metric_history(history.info.run_id, "roc_auc/champion_after")
    assert [m.step for m in sorted(champions, key=lambda m: m.step)] == [1, 2, 3]
    assert [m.step for m in client.get_metric_history(history.info.run_id, "roc_auc/warm")] == [3]

    # The champion loads with plain pyfunc and scores raw rows, a never-seen destination included.
    rows = pd.read_parquet(months[2]).drop(columns="late")
    predicted = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(rows)
    assert len(predicted) == len(rows) and predicted["probability"].between(0, 1).all()

    text = status.render(status.collect(client, name))
    assert f"champion: v{champion}" in text and "flights-2013-03.parquet" in text
    # The line status gives for a user's own Python loads the champion in a fresh process, with no MLflow setting
    [snippet] = [line.split("in Python: ", 1)[1] for line in text.splitlines() if "in Python: " in line]
    rows.head(50).to_parquet(tmp_path / "rows.parquet")
    code = (
        f"{snippet}; import pandas; print(len(model.predict(pandas.read_parquet({str(tmp_path / 'rows.parquet')!r}))))"
    )
    server = not mlflow.get_tracking_uri().startswith("sqlite:")  # the production profile: a tracking server
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") or server}
    assert ("MLFLOW_TRACKING_URI" in snippet) == server
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split()[-1] == "50", done.stderr[-2000:]
    assert f"/#/models/{name}/versions/{champion}?workflowType=machine_learning" in text
    assert f"/runs/{history.info.run_id}/model-metrics?workflowType=machine_learning" in text


def test_a_long_training_shows_its_curves_in_mlflow_while_it_trains(
    tmp_path: Path, home: Path, months: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every epoch counts as long here, so each is logged as it ends, and the end of the training adds none twice."""
    monkeypatch.setattr(racing, "PROGRESS_SECONDS", 0.0)
    config = write_config(tmp_path, name="live-curves")
    retrain(str(months[0]), config=str(config))
    with logged_by("prefect.task_runs") as lines:
        retrain(str(months[1]), config=str(config), strategies=["shrink_perturb", "cold"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("live-curves")
    runs = client.search_runs([experiment.experiment_id], "tags.`rewarm.kind` = 'candidate'")
    assert {r.info.run_name for r in runs} >= {"shrink_perturb", "cold"}
    for run in runs:
        epochs = int(run.data.metrics["epochs"])
        for curve in ("train_loss", "val_loss"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, curve)]
            assert sorted(steps) == list(range(1, epochs + 1)), (run.info.run_name, curve)
    assert any(line.startswith("shrink_perturb: epoch 1 of at most ") for line in lines)


def test_vocabulary_grows_by_appending_through_the_registry(tmp_path: Path, home: Path, months: list[Path]) -> None:
    config = write_config(tmp_path, name="vocab-test")
    months[1].rename(tmp_path / months[1].name)  # February never lands: March follows January directly
    retrain(str(months[0]), config=str(config))
    first = registry.load_alias(MlflowClient(), "vocab-test")
    summary = retrain(str(months[2]), config=str(config), strategies=["warm"])
    client = MlflowClient()
    newest = registry.load_version(client, "vocab-test", summary.version)
    assert newest.version == 2 and newest.tags["rewarm.parent_version"] == "1"
    old_vocab, new_vocab = first.preprocessor.categorical["dest"], newest.preprocessor.categorical["dest"]
    assert "ZZZ" not in old_vocab and new_vocab[: len(old_vocab)] == old_vocab  # appended, never re-indexed
    assert "ZZZ" in new_vocab[len(old_vocab) :]
    assert newest.arch.cardinalities[2] == len(new_vocab) + 1
    # The registered preprocessing gives the newcomer its own embedding row, old categories their old rows.
    rows = pd.read_parquet(months[2]).head(300)
    _, old_codes = first.preprocessor.features(rows)
    _, new_codes = newest.preprocessor.features(rows)
    newcomer = (rows["dest"] == "ZZZ").to_numpy()
    assert (old_codes[newcomer, 2] == 0).all() and (new_codes[newcomer, 2] == new_vocab.index("ZZZ") + 1).all()
    known = old_codes != 0
    assert (new_codes[known] == old_codes[known]).all()  # nothing the parent knew moved
    # The trainable module was rebuilt from config + weights_only state_dict, and can train.
    newest.module.train()
    assert all(p.requires_grad for p in newest.module.parameters())


def test_rollback_restores_previous_champion(tmp_path: Path, home: Path, months: list[Path]) -> None:
    config = write_config(tmp_path, name="rollback-test", min_delta="-1.0")  # promote every round
    retrain(str(months[0]), config=str(config))
    client = MlflowClient()
    with pytest.raises(RegistryError, match="first champion"):
        registry.rollback(client, "rollback-test")
    second = retrain(str(months[1]), config=str(config))
    assert second.decision == "promote"
    assert registry.rollback(client, "rollback-test") == (2, 1)
    assert registry.current_version(client, "rollback-test", registry.CHAMPION) == 1


def test_keep_marks_challenger(tmp_path: Path, home: Path, months: list[Path]) -> None:
    config = write_config(tmp_path, name="keep-test", min_delta="0.9")  # nothing beats the champion by 0.9
    first = retrain(str(months[0]), config=str(config))
    kept = retrain(str(months[1]), config=str(config))
    client = MlflowClient()
    assert kept.decision == "keep" and "not above min_delta 0.9" in kept.reason
    assert registry.current_version(client, "keep-test", registry.CHAMPION) == 1
    assert registry.current_version(client, "keep-test", registry.CHALLENGER) == 2
    # The same reason reaches the Prefect UI as a markdown artifact, one per decision.
    with get_client(sync_client=True) as prefect:
        found = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["keep-test-decision"]))
        )
    assert sorted(a.description for a in found) == sorted([kept.reason, first.reason])
    assert any("| shrink_perturb |" in a.data for a in found)


def test_a_month_of_one_class_after_the_first_model_joins_the_history_and_keeps_the_champion(
    tmp_path: Path, home: Path, months: list[Path]
) -> None:
    """No late flight in February's file (a rare class, or a file sorted by its label): its rows are admitted and
    trained on, the undefined AUC keeps the champion, and March's round trains on all three months."""
    config = write_config(tmp_path, name="one-class-test")
    retrain(str(months[0]), config=str(config))
    on_time = tmp_path / "flights-2013-02-on-time.parquet"  # named on the command line: March waits in landing
    feb = pd.read_parquet(months[1])
    feb[feb["late"] == 0].to_parquet(on_time, index=False)
    months[1].unlink()  # this February instead of the landed one

    held = retrain(str(on_time), config=str(config))
    assert held.decision == "keep" and held.version == 2
    assert (
        held.reason.startswith("keep champion v1: holdout roc_auc is undefined on these")
        and "of one class" in held.reason
    )
    client = MlflowClient()
    assert registry.current_version(client, "one-class-test", registry.CHAMPION) == 1
    assert registry.current_version(client, "one-class-test", registry.CHALLENGER) == 2
    history = home / "snapshots" / "one-class-test"
    assert [i.name for i in list_history(history)] == ["flights-2013-01.parquet", on_time.name]
    march = retrain(str(months[2]), config=str(config))
    assert march.decision in ("promote", "keep") and "undefined" not in march.reason
    assert len(list_history(history)) == 3 and march.round == 3


def test_bad_snapshot_fails_the_run_and_leaves_the_champion(tmp_path: Path, home: Path, months: list[Path]) -> None:
    config = write_config(tmp_path, name="bad-test")
    retrain(str(months[0]), config=str(config))
    broken = tmp_path / "broken.parquet"  # outside the landing folder: only this file is retrained
    pd.read_parquet(months[1]).drop(columns="carrier").to_parquet(broken)
    with pytest.raises(SnapshotRejected, match=r"broken.parquet.*carrier"):
        retrain(str(broken), config=str(config))
    assert broken.exists()  # the user's file is never deleted
    assert registry.current_version(MlflowClient(), "bad-test", registry.CHAMPION) == 1
    assert [i.name for i in list_history(home / "snapshots" / "bad-test")] == ["flights-2013-01.parquet"]


def test_a_snapshot_rejected_by_the_round_never_joins_the_history(
    tmp_path: Path, home: Path, months: list[Path]
) -> None:
    config = write_config(tmp_path, name="three-class-test")
    odd = tmp_path / "odd.parquet"
    frame = pd.read_parquet(months[0])
    frame.loc[:5, "late"] = 2  # a third label in a binary task: readable, but no model can train on it
    frame.to_parquet(odd)
    with pytest.raises(SnapshotRejected, match=r"takes 3 distinct values .* a binary task allows two"):
        retrain(str(odd), config=str(config))
    history = home / "snapshots" / "three-class-test"
    assert not history.exists() or not any(history.iterdir())
    first = retrain(str(months[0]), config=str(config))  # the next good snapshot bootstraps normally
    assert first.decision == "first_model" and first.round == 1


def test_landing_order_exactly_once_and_force(tmp_path: Path, home: Path, months: list[Path]) -> None:
    config = write_config(tmp_path, name="order-test", min_delta="-1.0")
    config.write_text(config.read_text() + "\n[service]\nsettle_seconds = 0\n")
    broken = months[0].with_name("flights-2013-00-broken.parquet")
    pd.read_parquet(months[0]).drop(columns="carrier").to_parquet(broken)  # lands after the three months

    # An event's hash that no longer matches the file (rewritten since it landed): nothing is trained.
    stale = retrain(str(months[0]), config=str(config), sha256="0" * 64)
    assert stale.status == "skipped" and "rewritten since it landed" in stale.reason
    assert not MlflowClient().search_model_versions("name = 'order-test'")

    # Retraining March first retrains the earlier pending months, oldest first, each as a subflow.
    march = retrain(str(months[2]), config=str(config))
    client = MlflowClient()
    found = sorted(client.search_model_versions("name = 'order-test'"), key=lambda v: int(v.version))
    assert [v.tags["rewarm.snapshot"] for v in found] == [p.name for p in months]
    assert march.round == 3 and march.version == 3

    # The scheduled path: every pending snapshot; the broken one is rejected, quarantined and passed over.
    broken_bytes = broken.read_bytes()
    caught_up = retrain(config=str(config))
    [failed] = caught_up.processed
    assert failed.status == "rejected" and "carrier" in failed.reason and "moved to" in failed.reason
    [held] = quarantine.records(str(tmp_path / "quarantine"))
    assert held.landed_as == broken.name and held.kind == "missing_columns" and "carrier" in held.reason
    assert not broken.exists() and Path(held.location).read_bytes() == broken_bytes  # moved, never deleted
    assert retrain(config=str(config)).processed == ()  # out of the landing folder: nothing pending

    # Exactly once by content: a copy under another name is skipped, unless forced.
    copy = tmp_path / "march-again.parquet"
    copy.write_bytes(months[2].read_bytes())
    skipped = retrain(str(copy), config=str(config))
    assert skipped.status == "skipped" and skipped.version == 3 and "already processed" in skipped.reason
    forced = retrain(str(copy), config=str(config), force=True)
    assert forced.version == 4 and forced.round == 3
    with pytest.raises(SnapshotRejected, match="later rounds"):  # an older month cannot be redone after newer
        retrain(str(months[0]), config=str(config), force=True)
    assert len(client.search_model_versions("name = 'order-test'")) == 4


@pytest.mark.parametrize("where", ["folder", "memory"])
def test_workers_with_their_own_homes_train_on_one_shared_history(
    tmp_path: Path, home: Path, months: list[Path], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Two workers on two machines: each has its own REWARM_HOME (checkpoints), both reach the one MLflow
    store and data.history; the second worker's round trains on the month the first one kept. The history is
    a shared folder (NFS), or a URL of a filesystem MLflow knows no dataset source for (tests/test_s3.py runs
    s3:// through the flow)."""
    shared = str(tmp_path / "shared-history") if where == "folder" else f"memory://rewarm-history-{uuid.uuid4().hex}"
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("[data]\n", f'[data]\nhistory = "{shared}"\n'))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", resolve_store().tracking_uri)  # not the home's: both use it
    first = retrain(str(months[0]), config=str(config))
    monkeypatch.setenv("REWARM_HOME", str(tmp_path / "second-worker"))
    second = retrain(str(months[1]), config=str(config))

    assert (first.version, second.version) == (1, 2)
    assert [i.name for i in list_history(shared)] == [months[0].name, months[1].name]
    assert not (home / "snapshots").exists() and not (tmp_path / "second-worker" / "snapshots").exists()
    client = MlflowClient()
    experiment = client.get_experiment_by_name("flights-test").experiment_id
    parents = client.search_runs([experiment], "tags.`rewarm.kind` = 'retrain'", order_by=["attributes.start_time ASC"])
    rows = [int(r.data.tags["rewarm.rows_train"]) for r in parents]
    assert rows[1] > 1.5 * rows[0]  # January's rows and February's; a history of its own would hold February only
