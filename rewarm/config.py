"""Typed configuration from rewarm.toml, validated once at the edge."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rewarm.errors import ConfigError

CONFIG_NAME = "rewarm.toml"
Task = Literal["binary", "multiclass", "regression"]
StrategyName = Literal["shrink_perturb", "warm", "cold"]

# Which metrics each task may gate on; the first is the default.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "log_loss", "accuracy"),
    "multiclass": ("log_loss", "accuracy", "roc_auc"),  # roc_auc: macro one-vs-rest
    "regression": ("rmse", "mae"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # Two hidden layers of 128/64 train a month of flights in seconds on a laptop CPU.
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = Field(default=(128, 64), min_length=1)
    # Fixed at bootstrap so that vocabularies can grow without changing any layer's width.
    embedding_dim: int = Field(default=8, ge=1, le=256)


class DataSection(_Section):
    landing: str = "data/landing"
    target: str
    task: Task
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    # 0 keeps every admitted snapshot (cumulative); N trains on the last N snapshots only.
    window: int = Field(default=0, ge=0)
    # The share of each earlier snapshot's rows a round trains on: 1 all of them; 0.25 a quarter, a different
    # quarter each round (chosen by row content and round number), so cost grows at a quarter of the rate.
    replay_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    # A fifth of each new snapshot is held out: ~5k rows for a month of flights, enough for a tight CI.
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    # "hash": rows chosen by a hash of their content (any row order); "tail": the snapshot's last rows,
    # for time-ordered snapshots, so candidates are scored on rows later than any they trained on.
    holdout_split: Literal["hash", "tail"] = "hash"
    # How rows are assigned to holdout, validation and replay (rewarm/splits.py). "auto": a new model uses the
    # current scheme (2) and a model keeps its lineage's; 2 moves a lineage made before scheme 2 onto it from its
    # next new snapshot (a snapshot already trained on keeps its split, so no round trains on its holdout).
    split_scheme: Literal["auto", 1, 2] = "auto"
    # Early-stopping rows, drawn from the training rows.
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.9)
    # Fewer rows than this cannot give a holdout, a validation split and a training set.
    min_rows: int = Field(default=50, ge=10)
    # Feature columns that may hold nulls: a missing number takes the training mean, a missing category the
    # unknown bucket. Any other null (and every NaN or infinite number) rejects the snapshot.
    nullable: tuple[str, ...] = ()
    # Columns in a snapshot that the spec does not name: "reject" the snapshot (a renamed or misplaced
    # column shows up here) or "ignore" them (wide tables from which the spec picks its features).
    extra_columns: Literal["reject", "ignore"] = "reject"
    # Real data repeats rows (two flights on one route in one hour; in low-cardinality categorical data nearly
    # every row), so plain repeats are not limited by default (1.0). Set a lower share to reject a snapshot with
    # more repeated rows than that. Copying accidents are caught whatever this is (rewarm/repeats.py).
    max_duplicate_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    # A snapshot whose rows repeat an earlier snapshot's, in the same order, above this share is rejected as landed
    # twice over (a re-export, a cumulative dump); natural repeats never come in long ordered runs.
    max_repeated_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    # The labels a classification target may take; empty: any, learned from the first snapshot
    # (a binary target still takes at most two).
    classes: tuple[str | int, ...] = ()
    # Where rejected snapshots are moved, each beside a JSON file saying why; empty: a folder named
    # "quarantine" next to data.landing.
    quarantine: str = ""
    # Where this model's admitted snapshots are kept, the history every round trains on: a folder or an
    # fsspec URL (s3://bucket/rewarm/flights) of this model's own, that every worker retraining the model can
    # reach. Empty: the folder snapshots/<model.name> in REWARM_HOME, which then has to be shared by them.
    history: str = ""

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> DataSection:
        features = [*self.numeric, *self.categorical]
        if not features:
            raise ValueError("list at least one feature in data.numeric or data.categorical")
        dupes = sorted({c for c in features if features.count(c) > 1})
        if dupes:
            raise ValueError(f"columns listed twice in data.numeric/data.categorical: {dupes}")
        if self.target in features:
            raise ValueError(f"target column {self.target!r} is also listed as a feature")
        stray = sorted(set(self.nullable) - set(features))
        if stray:
            raise ValueError(f"data.nullable names {stray}, which are not features (the target is never nullable)")
        if self.classes and self.task == "regression":
            raise ValueError("data.classes is for classification targets; remove it for a regression task")
        if self.task == "binary" and self.classes and len(set(self.classes)) != 2:
            raise ValueError(f"a binary task takes exactly two data.classes, got {list(self.classes)}")
        if self.quarantine and self.quarantine.rstrip("/") == self.landing.rstrip("/"):
            raise ValueError("data.quarantine must not be data.landing: rejected files would stay pending")
        if self.history and self.history.rstrip("/") in (
            self.landing.rstrip("/"),
            self.quarantine_location.rstrip("/"),
        ):
            raise ValueError(
                "data.history must be a folder of its own, not data.landing or data.quarantine: kept snapshots "
                "would be taken for landed or rejected ones"
            )
        return self

    def history_location(self, home: Path, model: str) -> str:
        """data.history, or the folder snapshots/MODEL in the rewarm home HOME."""
        return self.history or str(home / "snapshots" / model)

    @property
    def quarantine_location(self) -> str:
        """data.quarantine, or a folder named quarantine next to data.landing."""
        if self.quarantine:
            return self.quarantine
        landing = self.landing.rstrip("/")
        if "://" in landing:
            scheme, path = landing.split("://", 1)
            if "/" not in path:  # a bucket's root: a folder inside it (the landing scan does not descend)
                return f"{landing}/quarantine"
            return landing.rsplit("/", 1)[0] + "/quarantine"
        return str(Path(landing).parent / "quarantine")


class TrainSection(_Section):
    strategies: tuple[StrategyName, ...] = ("shrink_perturb", "cold")
    # lambda 0.8, sigma 0.01: the best time/accuracy point of the sweep on the demo stream (docs/benchmarks.md):
    # mean holdout AUC above cold's and warm's at 0.40 of cold's training time (lambda 0.6: 0.53 of it).
    shrink: float = Field(default=0.8, ge=0.0, le=1.0)
    perturb: float = Field(default=0.01, ge=0.0, le=1.0)
    max_epochs: int = Field(default=30, ge=1)
    # Three epochs without validation improvement: the same rule for every strategy.
    patience: int = Field(default=3, ge=1)
    batch_size: int = Field(default=1024, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    # The learning rate is re-warmed from zero over this share of the step budget at every retrain.
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("strategies")
    @classmethod
    def _non_empty_unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("list each strategy once, at least one of shrink_perturb, warm, cold")
        return v


class GateSection(_Section):
    metric: str | None = None  # None: the task's default (see TASK_METRICS)
    # Promote only when the winner beats the champion by more than this, in metric units
    # (negative: promote unless the winner is worse by more than that, to always ship fresh weights).
    min_delta: float = 0.0
    # 1000 paired resamples keep the CI's edges stable to about the third decimal.
    bootstrap: int = Field(default=1000, ge=100)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # When true the whole CI must lie above zero, not just the point estimate.
    require_significant: bool = False


class ServiceSection(_Section):
    # Hourly: a source that cannot announce its files is still picked up within the hour.
    cron: str = "0 * * * *"
    timezone: str = Field(default="UTC", min_length=1)
    # A landed file counts as complete once nothing has changed it for this long; writers that write
    # under a temporary name (.partial, .tmp, a leading dot) and rename into place can set 0.
    settle_seconds: float = Field(default=5.0, ge=0)
    # fsspec URLs (s3://, gs://...) cannot be watched for changes: they are listed this often.
    poll_seconds: float = Field(default=30.0, gt=0)
    # A snapshot still neither processed nor rejected this long after its event is announced again: the event
    # may have found no trigger (sent before `rewarm deploy`, or while the server restarted). A repeat is
    # harmless, since the retrain skips content already processed. 15 minutes outlasts a normal queue.
    resend_seconds: float = Field(default=900.0, gt=0)
    # Trainings that may use the GPUs at once, across every model and worker: the size of the Prefect global
    # concurrency limit "rewarm-gpu" that `rewarm serve` / `rewarm deploy` create (strict: a missing limit is an
    # error, never silently unlimited). One per GPU is the safe default for models that fill a GPU.
    gpu_slots: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _cron_is_valid(self) -> ServiceSection:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=self.cron, timezone=self.timezone)
        except ValidationError as exc:  # Prefect's own check, so a served schedule cannot fail later
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from exc
        return self


class Settings(_Section):
    model: ModelSection
    data: DataSection
    train: TrainSection = TrainSection()
    gate: GateSection = GateSection()
    service: ServiceSection = ServiceSection()
    source: str = "<built-in>"  # the file these came from, for messages

    @model_validator(mode="after")
    def _metric_fits_task(self) -> Settings:
        allowed = TASK_METRICS[self.data.task]
        if self.gate.metric is not None and self.gate.metric not in allowed:
            raise ValueError(
                f"gate.metric {self.gate.metric!r} does not fit task {self.data.task!r}; use one of {allowed}"
            )
        return self

    @property
    def metric(self) -> str:
        return self.gate.metric or TASK_METRICS[self.data.task][0]

    def with_overrides(self, strategies: list[str] | None = None, window: int | None = None) -> Settings:
        """Return these settings with command-line overrides applied, validated like the file was."""
        raw = self.model_dump()
        if strategies is not None:
            raw["train"]["strategies"] = list(strategies)
        if window is not None:
            raw["data"]["window"] = window
        return parse_settings(raw, source=f"{self.source} with overrides")


def find_config(path: str | os.PathLike[str] | None) -> Path:
    """Return the config file to use: PATH if given, else ./rewarm.toml."""
    candidate = Path(path) if path else Path.cwd() / CONFIG_NAME
    if not candidate.is_file():
        hint = "check the path" if path else f"create {CONFIG_NAME} here (see README) or pass --config PATH"
        raise ConfigError(f"no configuration file at {candidate}: {hint}")
    return candidate


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate rewarm.toml once; every problem is reported with its key."""
    file = find_config(path)
    try:
        raw = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read TOML: {exc}") from exc
    _anchor_landing(raw, file.resolve().parent)
    return parse_settings(raw, source=str(file))


def _anchor_landing(raw: dict, folder: Path) -> None:
    """A relative local data.landing (or data.quarantine, data.history) means relative to the config file,
    wherever the command runs from (a served deployment or a worker does not share the shell's working folder)."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in ("landing", "quarantine", "history"):
        value = data.get(key, DataSection.model_fields[key].default)
        if isinstance(value, str) and value and "://" not in value and not Path(value).is_absolute():
            data[key] = str(folder / value)


def parse_settings(raw: dict, source: str = "<built-in>") -> Settings:
    """Validate a parsed TOML mapping, turning pydantic's errors into one readable message."""
    try:
        return Settings.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc
