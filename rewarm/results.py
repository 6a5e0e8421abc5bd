"""What a retrain run hands back to its caller (the CLI, the demo, a parent flow): one typed result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal[
    "trained",  # a round ran: candidates trained, scored, a version registered and its decision applied
    "skipped",  # the content was processed already (or is quarantined, or was rewritten since it was announced)
    "recovered",  # a round a killed run left registered but unapplied was finished; nothing trained
    "rejected",  # an earlier pending snapshot was quarantined during catch-up and passed over
    "caught_up",  # a run without a snapshot: every pending one, oldest first (see `processed`)
]


@dataclass(frozen=True)
class RoundResult:
    """One retrain's outcome. REASON is the line a user reads; the rest is for tables and tests."""

    status: Status
    model: str
    reason: str = ""
    snapshot: str = ""
    sha256: str = ""
    version: int | None = None  # the version registered (trained) or found (skipped, recovered)
    round: int | None = None
    decision: str | None = None  # first_model | promote | keep
    winner: str | None = None
    metric: str | None = None
    replaced: int | None = None  # the champion the round replaced
    recovered: str | None = None  # promoted | challenger | stale
    model_key: str = ""  # the Prefect artifact key
    strategies: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> holdout metrics, cost
    champion: dict[str, float] | None = None  # the untouched champion's holdout metrics
    parent_metrics: dict[str, float] = field(default_factory=dict)  # what the round's MLflow run logs
    processed: tuple[RoundResult, ...] = ()  # the pending snapshots handled first (caught_up: all), oldest first
    wall_seconds: float | None = None  # set by callers that time the run (the demo)

    @property
    def line(self) -> str:
        """The one line the CLI prints for it."""
        if self.status == "rejected":
            return f"{self.snapshot}: not retrained: {self.reason}"
        version = f" v{self.version}" if self.version is not None else ""
        return f"{self.model}{version}: {self.reason}"

    def to_dict(self) -> dict:
        return asdict(self)
