"""How rewarm runs as a service: the [service] settings (rewarm/config.py) and the retrain deployment built
from them (deployments/service.py). Built and inspected in process; nothing here needs a Prefect server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flight_snapshots import write_config
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.client.schemas.schedules import CronSchedule
from prefect.events import DeploymentEventTrigger, Event
from prefect.events.schemas.automations import Posture
from prefect.flows import load_flow_from_entrypoint

# Prefect's own renderer for the Jinja templates of automation actions (the server renders trigger
# parameters with it); used here to check the template against the event the watcher sends.
from prefect.server.utilities.user_templates import render_user_template_sync

from rewarm.config import ServiceSection, Settings, load_settings
from rewarm.deployments.service import deployment_name, retrain_deployment, watcher
from rewarm.errors import ConfigError
from rewarm.flows.retrain import retrain
from rewarm.landing import Arrival
from rewarm.watcher import LANDED, MODEL_LABEL, Watcher, landed_event, send_to_prefect

MODEL = "deployed-model"
SHA = "5e" * 32


def config_with(folder: Path, service: str = "", name: str = MODEL) -> Path:
    """The tiny test config with SERVICE appended as its [service] section."""
    path = write_config(folder, name=name)
    if service:
        path.write_text(path.read_text() + "\n[service]\n" + service)
    return path


def with_landing(path: Path, landing: str) -> Path:
    """Rewrite the config's data.landing line."""
    text = re.sub(r'^landing = ".*"$', f'landing = "{landing}"', path.read_text(), count=1, flags=re.M)
    path.write_text(text)
    return path


# --- [service] settings ---------------------------------------------------------------------------------


def test_service_defaults(tmp_path: Path) -> None:
    service = load_settings(config_with(tmp_path)).service

    assert service == ServiceSection()
    assert (service.cron, service.timezone, service.settle_seconds, service.poll_seconds) == (
        "0 * * * *",
        "UTC",
        5.0,
        30.0,
    )


def test_service_section_is_read(tmp_path: Path) -> None:
    text = 'cron = "*/15 6-20 * * 1-5"\ntimezone = "Europe/Paris"\nsettle_seconds = 0\npoll_seconds = 2.5\n'

    service = load_settings(config_with(tmp_path, text)).service

    assert service == ServiceSection(
        cron="*/15 6-20 * * 1-5", timezone="Europe/Paris", settle_seconds=0.0, poll_seconds=2.5
    )


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ('cron = "every hour"', ["service", "cron", "every hour"]),
        ('cron = "61 * * * *"', ["service", "cron", "61 * * * *"]),
        ('cron = ""', ["service", "cron"]),
        ('timezone = "Mars/Olympus"', ["service", "timezone", "Mars/Olympus"]),
        ('timezone = ""', ["service.timezone", "at least 1 character"]),
        ("settle_seconds = -1", ["service.settle_seconds", "greater than or equal to 0"]),
        ("poll_seconds = 0", ["service.poll_seconds", "greater than 0"]),
        ('colour = "blue"', ["service.colour", "not permitted"]),
    ],
)
def test_bad_service_settings_are_config_errors_naming_service(tmp_path: Path, line: str, fragments: list[str]) -> None:
    path = config_with(tmp_path, line + "\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


# --- data.landing is anchored at the config file's folder -----------------------------------------------


def test_a_relative_landing_is_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    path = with_landing(config_with(folder), "incoming/flights")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where a worker or `rewarm serve` happens to run

    assert load_settings(path).data.landing == str(folder.resolve() / "incoming" / "flights")
    assert load_settings("../project/rewarm.toml").data.landing == str(folder.resolve() / "incoming" / "flights")


@pytest.mark.parametrize(
    "landing",
    ["s3://bucket/landing", "gs://bucket/flights/landing", "memory://landing", "file:///srv/landing"],
)
def test_url_landings_are_left_alone(tmp_path: Path, landing: str) -> None:
    assert load_settings(with_landing(config_with(tmp_path), landing)).data.landing == landing


def test_an_absolute_landing_is_left_alone(tmp_path: Path) -> None:
    landing = str(tmp_path / "somewhere" / "landing")

    assert load_settings(with_landing(config_with(tmp_path), landing)).data.landing == landing


# --- the retrain deployment -----------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(config_with(tmp_path, 'cron = "30 2 * * *"\ntimezone = "America/New_York"\n'))


def test_the_deployment_is_named_for_the_model(settings: Settings) -> None:
    deployment = retrain_deployment(settings)

    assert deployment.name == MODEL
    assert deployment.flow_name == "retrain"
    assert f"{deployment.flow_name}/{deployment.name}" == deployment_name(settings) == f"retrain/{MODEL}"
    assert {"rewarm", MODEL} <= set(deployment.tags)
    assert settings.data.landing in deployment.description


def test_the_deployment_runs_on_the_configured_cron(settings: Settings) -> None:
    [schedule] = retrain_deployment(settings).schedules

    assert isinstance(schedule.schedule, CronSchedule)
    assert schedule.schedule.cron == "30 2 * * *"
    assert schedule.schedule.timezone == "America/New_York"
    assert schedule.active


def test_each_landed_snapshot_of_this_model_triggers_a_retrain(settings: Settings) -> None:
    [trigger] = retrain_deployment(settings).triggers

    assert isinstance(trigger, DeploymentEventTrigger)
    assert trigger.expect == {LANDED} == {"rewarm.snapshot.landed"}
    assert trigger.match[MODEL_LABEL] == [MODEL]
    assert trigger.parameters == {"snapshot": "{{ event.payload.uri }}", "sha256": "{{ event.payload.sha256 }}"}
    # Reactive, one event each: every landed snapshot fires its own run.
    assert trigger.posture == Posture.Reactive
    assert trigger.threshold == 1


def test_the_trigger_matches_this_models_events_only(settings: Settings, tmp_path: Path) -> None:
    [trigger] = retrain_deployment(settings).triggers
    arrival = Arrival(str(tmp_path / "landing" / "2013-01.parquet"), "2013-01.parquet", 1234, 1.7e9)

    mine = Event(**landed_event(MODEL, arrival, SHA))
    theirs = Event(**landed_event("another-model", arrival, SHA))

    assert trigger.match.matches(mine.resource)
    assert not trigger.match.matches(theirs.resource)


def test_the_trigger_passes_the_landed_uri_as_the_snapshot(settings: Settings) -> None:
    [trigger] = retrain_deployment(settings).triggers
    arrival = Arrival("s3://bucket/landing/2013-01.parquet", "2013-01.parquet", 1234, 1.7e9)
    event = Event(**landed_event(MODEL, arrival, SHA))

    rendered = {k: render_user_template_sync(v, {"event": event}) for k, v in trigger.parameters.items()}

    assert rendered == {"snapshot": "s3://bucket/landing/2013-01.parquet", "sha256": SHA}


def test_retrains_of_one_model_run_one_at_a_time_and_queue(settings: Settings) -> None:
    deployment = retrain_deployment(settings)

    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE


def test_the_settings_travel_as_the_deployments_parameters(settings: Settings) -> None:
    parameters = retrain_deployment(settings).parameters

    assert set(parameters) == {"settings"}
    assert Settings.model_validate(parameters["settings"]) == settings
    # As the flow will receive them when a worker runs it, without any rewarm.toml.
    assert retrain.validate_parameters(parameters)["settings"] == settings


def test_the_entrypoint_is_the_installed_retrain_flow(settings: Settings) -> None:
    entrypoint = retrain_deployment(settings).entrypoint

    assert entrypoint == "rewarm.flows.retrain.retrain"
    assert load_flow_from_entrypoint(entrypoint) is retrain


def test_the_services_watcher_watches_the_models_landing_and_sends_to_prefect(settings: Settings, home: Path) -> None:
    service_watcher = watcher(settings, home)

    assert isinstance(service_watcher, Watcher)
    assert service_watcher.location == settings.data.landing
    assert service_watcher.emit is send_to_prefect


# --- several models, one GPU limit ------------------------------------------------------------------------


def test_several_configs_must_name_different_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rewarm.cli import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_config(tmp_path / "a", name="same-name")
    second = write_config(tmp_path / "b", name="same-name")

    assert main(["deploy", "--pool", "p", "--config", str(first), "--config", str(second)]) == 2
    assert "model name(s) ['same-name'] given by more than one --config" in capsys.readouterr().err


def test_training_on_the_cpu_takes_no_gpu_slot() -> None:
    import torch

    from rewarm.tasks.gpu import gpu_slot

    with gpu_slot(torch.device("cpu")):  # no Prefect server here: nothing may be asked of one
        pass


@pytest.mark.usefixtures("prefect_server")
def test_the_gpu_limit_is_strict(tmp_path: Path) -> None:
    import contextlib

    import torch
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from rewarm.deployments.service import ensure_gpu_limit
    from rewarm.errors import RewarmError
    from rewarm.tasks.gpu import GPU_LIMIT, gpu_slot

    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectNotFound):  # another test may have made it: start from none
            client.delete_global_concurrency_limit_by_name(GPU_LIMIT)
        missing = pytest.raises(RewarmError, match="global concurrency limit 'rewarm-gpu' is missing")
        with missing, gpu_slot(torch.device("cuda")):  # the device is not touched: only the slot is taken
            pass
        a = write_config(tmp_path, name="gpu-a")
        settings = load_settings(a)
        wide = Settings.model_validate({**settings.model_dump(), "service": {"gpu_slots": 3}})
        assert ensure_gpu_limit([settings, wide]) == 3
        assert client.read_global_concurrency_limit_by_name(GPU_LIMIT).limit == 3
        with gpu_slot(torch.device("cuda")):
            assert client.read_global_concurrency_limit_by_name(GPU_LIMIT).active_slots == 1
        assert client.read_global_concurrency_limit_by_name(GPU_LIMIT).active_slots == 0
