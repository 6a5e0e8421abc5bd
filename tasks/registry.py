"""Tasks that read and write the MLflow model registry; all retried on transient store errors."""

from __future__ import annotations

from mlflow import MlflowClient
from prefect import get_run_logger, task

from rewarm import registry
from rewarm.gate import Decision
from rewarm.models.network import TabularMLP
from rewarm.models.preprocess import Preprocessor

from .data import IN_MEMORY
from .policy import BACKOFF, TRANSIENT, retry_on

REGISTRY = {
    "retries": 3,
    "retry_delay_seconds": BACKOFF,
    "retry_condition_fn": retry_on(*TRANSIENT),
    **IN_MEMORY,
}


@task(name="load-champion", **REGISTRY)
def load_champion(name: str) -> registry.LoadedModel | None:
    """Rebuild models:/NAME@champion as a trainable module, or None before the first model."""
    loaded = registry.load_alias(MlflowClient(), name, registry.CHAMPION)
    logger = get_run_logger()
    if loaded is None:
        logger.info("no champion for %s yet: this snapshot bootstraps the first model", name)
    else:
        logger.info("champion is %s v%d", name, loaded.version)
    return loaded


@task(name="register-model", **REGISTRY)
def register_model(
    name: str,
    run_id: str,
    module: TabularMLP,
    pre: Preprocessor,
    meta: dict,
    tags: dict[str, object],
) -> int:
    """Log the winner as a pyfunc model and register it with its tags (complete, not yet applied) in one
    write; no alias moves here."""
    client = MlflowClient()
    version = registry.log_model(run_id, module, pre, meta, name, tags)
    client.update_model_version(name, str(version), description=str(tags.get("reason", "")))
    get_run_logger().info("registered %s v%d from run %s", name, version, run_id)
    return version


@task(name="move-aliases", **REGISTRY)
def move_aliases(name: str, version: int, decision: Decision) -> int | None:
    """Promote VERSION to champion, or mark it challenger, then mark the decision applied (the round's last
    write); return the champion it replaced, if any."""
    client = MlflowClient()
    if decision.promoted:
        previous = registry.promote(client, name, version, decision.reason)
        get_run_logger().info(
            "champion %s -> v%d: %s", f"v{previous}" if previous else "(none)", version, decision.reason
        )
    else:
        previous = None
        registry.mark_challenger(client, name, version)
        get_run_logger().info("challenger -> v%d: %s", version, decision.reason)
    registry.mark_applied(client, name, version)
    return previous


@task(name="recover-round", **REGISTRY)
def recover_round(name: str, version: int) -> tuple[str, int | None]:
    """Apply the decision a crashed round recorded on VERSION (registered, aliases never moved)."""
    done, previous = registry.recover(MlflowClient(), name, version)
    get_run_logger().warning(
        "recovered %s v%d, registered by a run that died before its aliases moved: %s", name, version, done
    )
    return done, previous
