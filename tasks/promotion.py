"""Tasks that decide on and apply a promotion: load the champion, compare, register the winner, move the aliases.
The registry tasks are retried on transient store errors."""

from __future__ import annotations

from mlflow import MlflowClient
from prefect import get_run_logger, task

from rewarm import audits, gate, registry
from rewarm.config import GateSection
from rewarm.gate import Decision
from rewarm.rounds import RoundData

from .candidates import REGISTRY, Outcome
from .snapshot import IN_MEMORY


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
    skipped: tuple[str, ...] = (),
) -> Decision:
    """Compare every candidate that trained to the end and the champion on the same holdout rows (paired
    bootstrap); say why, with the race's stops, the audit and the SKIPPED candidates."""
    incumbent_p = incumbent.predictions if incumbent else None
    y = data.y_holdout
    decision = gate.decide_round(cfg, metric, y, candidates, incumbent_p, champion_version, seed, skipped)
    get_run_logger().info(decision.reason)
    return decision


@task(name="register-model", **REGISTRY)
def register_model(
    name: str, candidates: dict[str, Outcome], decision: Decision, data: RoundData, lineage: dict[str, object]
) -> int:
    """Log the winner as a pyfunc model and register it with its lineage, metrics and the decision (complete,
    not yet applied) in one write; no alias moves here."""
    winner = candidates[decision.winner]
    tags = {k.removeprefix("rewarm."): v for k, v in lineage.items()}
    tags |= {"reason": decision.reason} | {f"holdout_{k}": f"{v:.6f}" for k, v in winner.metrics.items()}
    # what the next rounds' audit plans read (rewarm/audits.py), under the keys it reads them by
    planned = {audits.STRATEGY: winner.name, audits.DECISION: decision.action}
    tags |= {
        k.removeprefix("rewarm."): v for k, v in (planned | audits.version_tags(decision.metric, candidates)).items()
    }
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
