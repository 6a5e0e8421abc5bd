"""Tasks that decide on and apply a promotion: load the champion, compare, register the winner, move the aliases.
The registry tasks are retried on transient store errors."""

from __future__ import annotations

from mlflow import MlflowClient
from prefect import get_run_logger, task

from rewarm import gate, registry
from rewarm.config import GateSection
from rewarm.gate import Decision
from rewarm.rounds import RoundData

from .candidates import Outcome
from .policy import BACKOFF, TRANSIENT, retry_on
from .snapshot import IN_MEMORY

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


@task(name="decide", **IN_MEMORY)
def decide(
    cfg: GateSection,
    metric: str,
    data: RoundData,
    candidates: dict[str, Outcome],
    incumbent: Outcome | None,
    champion_version: int | None,
    seed: int,
) -> Decision:
    """Compare every candidate and the champion on the same holdout rows (paired bootstrap); say why."""
    decision = gate.decide(
        cfg,
        metric,
        data.y_holdout,
        {o.name: o.predictions for o in candidates.values()},
        incumbent.predictions if incumbent else None,
        champion_version,
        seed=seed,
    )
    get_run_logger().info(decision.reason)
    return decision


@task(name="register-model", **REGISTRY)
def register_model(name: str, winner: Outcome, decision: Decision, data: RoundData, lineage: dict[str, object]) -> int:
    """Log the winner as a pyfunc model and register it with its lineage, metrics and the decision (complete,
    not yet applied) in one write; no alias moves here."""
    tags = {k.removeprefix("rewarm."): v for k, v in lineage.items()}
    tags |= {"strategy": winner.name, "decision": decision.action, "reason": decision.reason}
    tags |= {f"holdout_{k}": f"{v:.6f}" for k, v in winner.metrics.items()}
    meta = {
        "strategy": winner.name,
        "parent_version": lineage["rewarm.parent_version"],
        "snapshot": data.snapshot.to_dict(),
        "decision": decision.to_dict(),
    }
    version = registry.log_model(winner.run_id, winner.module, data.preprocessor, meta, name, tags)
    MlflowClient().update_model_version(name, str(version), description=decision.reason)
    get_run_logger().info("registered %s v%d from run %s", name, version, winner.run_id)
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
