"""Typed configuration from rewarm.toml, validated once at the edge."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from rewarm.data_spec import DataSection, Task, _Section, closest_key
from rewarm.errors import ConfigError
from rewarm.locations import canonical
from rewarm.train_spec import StrategyName, TrainSection

__all__ = ["DataSection", "StrategyName", "Task", "TrainSection", "Settings", "load_settings", "parse_settings"]

CONFIG_NAME = "rewarm.toml"

# Which metrics each task may gate on; the first is the default.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "log_loss", "accuracy"),
    "multiclass": ("log_loss", "accuracy", "roc_auc"),  # roc_auc: macro one-vs-rest
    "regression": ("rmse", "mae"),
}


TABM_DEFAULT, TABM_HIDDEN = "tabm", (32, 32)


class ModelSection(_Section):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description=(
            "The registered model's name in MLflow; it also names the deployment and the snapshot history folder."
        ),
    )
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        default=(128, 64),
        min_length=1,
        description=(
            "Two hidden layers of 128/64 train a month of flights in seconds on a laptop CPU. With architecture "
            "tabm and no hidden key, 32/32 (measured: docs/benchmarks.md)."
        ),
    )
    embedding_dim: int = Field(
        default=8,
        ge=1,
        le=256,
        description=("Fixed at bootstrap so that vocabularies can grow without changing any layer's width."),
    )
    architecture: str = Field(
        default="tabm",
        description=(
            "The default, tabm with 4 members of 32/32, scored the best validation metric of the candidates on the "
            "demo stream (docs/benchmarks.md). mlp: scaled numbers and category embeddings through the hidden "
            "layers. mlp_periodic: each number first through periodic embeddings (sin/cos of learned frequencies, "
            "then a linear layer and ReLU; "
            "Gorishniy et al. 2022, the rtdl_num_embeddings package). mlp_plr: piecewise-linear embeddings "
            "instead (quantile bins fitted on the first model's training rows, then fixed and kept in model.json). "
            "tabm: TabM (Gorishniy et al. 2025, the tabm package), ensemble_size MLPs sharing their weights over "
            "piecewise-linear embeddings, their predictions averaged. Or your own network, "
            "'package.module:factory' (docs/configuration.md). Fixed at bootstrap, like the widths."
        ),
    )
    ensemble_size: int = Field(
        default=4,
        ge=1,
        le=64,
        description=(
            "tabm: the ensemble's members (TabM's k). Each costs about one MLP's arithmetic: TabM's authors use 32 "
            "on a GPU; on the demo's CPU 4 scored the validation rows as well as 8 at 0.6x the seconds."
        ),
    )
    numeric_bins: int = Field(
        default=16,
        ge=2,
        le=1024,
        description=(
            "mlp_plr and tabm: the quantile bins of each number's piecewise-linear embedding (fewer where a "
            "number has fewer distinct values), fitted on the first model's training rows and kept in model.json. "
            "16 scored the demo stream's validation rows as well as rtdl's 48, at 0.6-0.8x the seconds "
            "(docs/benchmarks.md)."
        ),
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=("[model.options]: keyword arguments your factory receives besides the data's shape."),
    )

    @model_validator(mode="before")
    @classmethod
    def _tabm_widths(cls, raw: Any) -> Any:
        """TabM's k members share each layer: its measured default widths are 32/32, not the MLP's 128/64."""
        if isinstance(raw, dict) and "hidden" not in raw and raw.get("architecture", TABM_DEFAULT) == "tabm":
            return {**raw, "hidden": TABM_HIDDEN}
        return raw

    @model_validator(mode="after")
    def _architecture_exists(self) -> ModelSection:
        from rewarm.models.network import ARCHITECTURES, load_factory

        if self.architecture in ARCHITECTURES:
            if self.options:
                raise ValueError(
                    f"[model.options] is for a factory architecture, not the built-in {self.architecture!r}"
                )
            return self
        load_factory(self.architecture)  # importable and callable, or a ValueError saying what to do
        return self


class GateSection(_Section):
    metric: str | None = Field(
        default=None,
        description=("The holdout metric the gate compares; empty: the task's default (roc_auc, log_loss, rmse)."),
    )
    min_delta: float = Field(
        default=0.0,
        description=(
            "Promote only when the winner beats the champion by more than this, in metric units (negative: "
            "promote unless the winner is worse by more than that, to always ship fresh weights)."
        ),
    )
    bootstrap: int = Field(
        default=1000,
        ge=100,
        description=(
            "Paired bootstrap resamples for the CI of (winner - champion): 1000 keep the CI's edges stable to"
            " about the third decimal."
        ),
    )
    confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description=("The confidence level of that interval."),
    )
    require_significant: bool = Field(
        default=False,
        description=("When true the whole CI must lie above zero, not just the point estimate."),
    )


class ServiceSection(_Section):
    cron: str = Field(
        default="0 * * * *",
        description=("Hourly: a source that cannot announce its files is still picked up within the hour."),
    )
    timezone: str = Field(
        default="UTC",
        min_length=1,
        description=("The time zone of the cron schedule."),
    )
    settle_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "A landed file counts as complete once nothing has changed it for this long; writers that write "
            "under a temporary name (.partial, .tmp, a leading dot) and rename into place can set 0."
        ),
    )
    poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description=("fsspec URLs (s3://, gs://...) cannot be watched for changes: they are listed this often."),
    )
    resend_seconds: float = Field(
        default=900.0,
        gt=0,
        description=(
            "A snapshot still neither processed nor rejected this long after its event is announced again: "
            "the event may have found no trigger (sent before `rewarm deploy`, or while the server "
            "restarted). A repeat is harmless, since the retrain skips content already processed. 15 minutes "
            "outlasts a normal queue."
        ),
    )
    gpu_slots: int = Field(
        default=1,
        ge=1,
        description=(
            "Trainings that may use the GPUs at once, across every model and worker: the size of the Prefect "
            "global concurrency limit 'rewarm-gpu' that `rewarm serve` / `rewarm deploy` create (strict: a "
            "missing limit is an error, never silently unlimited). One per GPU is the safe default for models"
            " that fill a GPU."
        ),
    )

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


def check_histories(settings: list[Settings], home: Path | None = None) -> None:
    """Refuse SETTINGS (one per --config) of which two would keep their models' snapshots in one history,
    however it is spelled; HOME holds the default histories (REWARM_HOME's, when None)."""
    if home is None:
        from rewarm.store import resolve_store

        home = resolve_store().home
    seen: dict[str, Settings] = {}
    for mine in settings:
        where = canonical(mine.data.history_location(home, mine.model.name))
        first = seen.setdefault(where, mine)
        if first is not mine:
            raise ConfigError(
                f"{first.source} and {mine.source}: models {first.model.name!r} and {mine.model.name!r} would both "
                f"keep their snapshots in {where}; give each model its own data.history"
            )


def parse_settings(raw: dict, source: str = "<built-in>") -> Settings:
    """Validate a parsed TOML mapping, turning pydantic's errors into one readable message."""
    try:
        return Settings.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
            + (f" (did you mean {near}?)" if (near := closest_key(err, Settings)) else "")
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc
