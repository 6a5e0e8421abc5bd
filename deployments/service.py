"""How rewarm runs as a service: one retrain deployment per model, triggered by landed snapshots and by a
cron schedule, one run at a time; the same deployments served locally or sent to a work pool."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from rewarm.config import Settings
from rewarm.flows.retrain import retrain
from rewarm.watcher import LANDED, MODEL_LABEL, RESOURCE_PREFIX, Watcher

# A second retrain of the same model waits for the first; it is queued, never dropped.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def ensure_gpu_limit(settings: list[Settings]) -> int:
    """Create (or resize) the global concurrency limit every GPU training takes a slot of; return its size."""
    from rewarm.tasks.gpu import upsert_gpu_limit

    slots = max(s.service.gpu_slots for s in settings)
    upsert_gpu_limit(slots)
    return slots


def deployment_name(settings: Settings) -> str:
    """The full name, as `prefect deployment run` takes it."""
    return f"retrain/{settings.model.name}"


def landed_trigger(settings: Settings) -> DeploymentEventTrigger:
    """Start a retrain for each snapshot-landed event of this model, with the snapshot's URI and content hash."""
    return DeploymentEventTrigger(
        name=f"{settings.model.name}: snapshot landed",
        expect={LANDED},
        match={"prefect.resource.id": RESOURCE_PREFIX + "*", MODEL_LABEL: settings.model.name},
        parameters={"snapshot": "{{ event.payload.uri }}", "sha256": "{{ event.payload.sha256 }}"},
    )


def retrain_deployment(settings: Settings) -> RunnerDeployment:
    """The retrain flow for one model: its cron schedule catches up on every pending snapshot, its trigger
    retrains each landed one; the validated settings are the deployment's parameters, so a worker on
    another machine needs no copy of rewarm.toml."""
    service = settings.service
    return retrain.to_deployment(
        name=settings.model.name,
        schedules=[Cron(service.cron, timezone=service.timezone)],
        triggers=[landed_trigger(settings)],
        concurrency_limit=ONE_AT_A_TIME,
        parameters={"settings": settings.model_dump(mode="json")},
        description=f"Retrain {settings.model.name} on snapshots landing in {settings.data.landing}",
        tags=["rewarm", settings.model.name],
        # The flow is imported from the installed package, so a worker needs `pip install rewarm`, not this checkout.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def watcher(settings: Settings, home: Path) -> Watcher:
    """The landing watcher that feeds this model's trigger."""
    return Watcher(settings, home)


def deploy_to_pool(settings: list[Settings], pool: str) -> list[str]:
    """Register the deployments with a work pool (created as a `process` pool if missing), so that
    `prefect worker start --pool POOL` on any machine with rewarm installed runs the retrains."""
    from prefect import deploy
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    # An existing pool of any type is the user's choice (docker, kubernetes: see README).
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    ensure_gpu_limit(settings)
    ids = deploy(
        *[retrain_deployment(s) for s in settings],
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    return [str(i) for i in ids]
