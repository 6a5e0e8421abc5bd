"""The [train] section of rewarm.toml: strategies, each strategy's budget, racing and cold audits (its own
module, as [data] is, to keep rewarm/config.py readable)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from rewarm.data_spec import _Section

StrategyName = Literal["shrink_perturb", "warm", "cold"]
MIN_STEPS_PER_EPOCH = 16  # a small training set still takes this many optimizer steps an epoch
MIN_BATCH = 32  # ... with batches of at least this many rows (a floor for the rule above)


class TrainSection(_Section):
    strategies: tuple[StrategyName, ...] = Field(
        default=("shrink_perturb", "cold"),
        description=(
            "The challengers each retrain trains: shrink_perturb and warm start from the champion, cold from "
            "scratch (the first model is always cold)."
        ),
    )
    shrink: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description=(
            "Shrink-perturb's lambda: every weight becomes lambda * old + sigma * fresh. 0.8 (with sigma "
            "0.01) was the best time/accuracy point of the sweep on the demo stream (docs/benchmarks.md): "
            "mean holdout AUC above cold's and warm's at 0.40 of cold's training time."
        ),
    )
    perturb: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description=("Shrink-perturb's sigma: the scale of the freshly initialised weights added (see shrink)."),
    )
    max_epochs: int = Field(
        default=30,
        ge=1,
        description=("Epoch budget per candidate; early stopping usually ends sooner."),
    )
    patience: int = Field(
        default=3,
        ge=1,
        description=(
            "Three epochs without validation improvement: the same rule for every strategy, unless warm_patience "
            "is set."
        ),
    )
    batch_size: int = Field(
        default=1024,
        ge=1,
        description=(
            "Rows per optimizer step; a small training set gets smaller batches, so that an epoch takes at "
            "least 16 steps."
        ),
    )
    lr: float = Field(
        default=3e-3,
        gt=0,
        description=("Peak learning rate of AdamW (linear warmup, then cosine decay over the epoch budget)."),
    )
    weight_decay: float = Field(
        default=1e-4,
        ge=0,
        description=("AdamW's weight decay."),
    )
    warmup_fraction: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description=("The learning rate is re-warmed from zero over this share of the step budget at every retrain."),
    )
    seed: int = Field(
        default=0,
        description=(
            "Seeds the fresh copy, the cold start and the batch order (plus the round number): a rerun on the"
            " CPU reproduces its numbers."
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description=("auto: CUDA (with bf16 autocast) when present, else the CPU."),
    )

    warm_lr: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Peak learning rate of warm-started candidates (shrink_perturb, warm): they start near a good "
            "solution, so a lower re-warmed peak keeps what the champion learned. None: lr."
        ),
    )
    warm_warmup_fraction: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Warmup share of warm-started candidates' step budget. None: warmup_fraction.",
    )
    warm_max_epochs: int | None = Field(
        default=None,
        ge=1,
        description=("Epoch budget of warm-started candidates (their cosine schedule spans it). None: max_epochs."),
    )
    warm_patience: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Early-stopping patience of warm-started candidates (shrink_perturb, warm). None: patience. On the "
            "demo stream 2 cut a fifth of their epochs and lost 0.0026 validation AUC, so it is unset by "
            "default: the setting to try where seconds matter more. With [model] ensemble_size 2 and "
            "numeric_bins 8 it trained shrink-perturb in 1.24x default LightGBM's seconds (the defaults: 2.5x), "
            "level with the trees' holdout AUC (docs/benchmarks.md)."
        ),
    )
    warm_replay_fraction: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description=(
            "Warm-started candidates train on the newest snapshot plus this share of the earlier rows every "
            "other candidate trains on (a different sample each round); 1: the same rows as cold. 0.25 scored "
            "above cold on the demo stream's holdouts at a tenth of its time (docs/benchmarks.md). Validation "
            "rows are the same for every candidate, so that they race on one curve."
        ),
    )
    racing: bool = Field(
        default=True,
        description=(
            "Candidates train side by side, an epoch each in turn; one that can no longer catch up with the "
            "leader (on race_on; see race_horizon) is stopped early and cannot win the round."
        ),
    )
    race_on: Literal["metric", "loss"] = Field(
        default="metric",
        description=(
            "What the race compares on its rows: 'metric', the gate's metric (so candidates are ranked as the "
            "gate will rank them); 'loss', the validation loss. On the demo stream the loss stopped warm-started "
            "candidates that led on AUC, while still calibrated to the month before (docs/benchmarks.md)."
        ),
    )
    race_min_epochs: int = Field(
        default=2,
        ge=1,
        description="No candidate is stopped before it has trained this many epochs.",
    )
    race_horizon: float = Field(
        default=0.0,
        ge=0,
        description=(
            "The racing bound: a candidate is assumed to gain at most race_horizon times its recent "
            "per-epoch improvement (of race_on, on the newest snapshot's validation rows) from here on; stopped "
            "when even that leaves it behind the leader's best. 0, the default: stopped as soon as it trails after "
            "race_min_epochs. On the demo stream's metric curves the race rows' verdict agreed with the holdout's "
            "in 10 of 22 rounds, so waiting for a trailing candidate bought nothing: horizon 0 trained 0.76-0.96x "
            "a cold-only service's seconds against horizon 2's 1.11-1.26x, at the same champion, when cold raced "
            "every round (docs/benchmarks.md)."
        ),
    )
    race_cold_margin: float = Field(
        default=0.0,
        ge=0,
        description=(
            "In a race, cold counts as ahead of a warm-started candidate only when it leads by more than this, in "
            "the race's units (the gate metric, or the validation loss), so that a near-tie goes to the warm "
            "lineage, which costs a fraction of a cold training to keep. 0: the better number wins. On the demo "
            "stream 0.005 AUC cut the service's training seconds from 0.96x to 0.84x a cold-only service's (0.76x "
            "to 0.71x on the shifted stream) and let one round's champion fall 0.013 AUC behind the cold-only "
            "service's, when cold raced every round (cold_between_audits 'race'; docs/benchmarks.md)."
        ),
    )
    cold_every: int = Field(
        default=6,
        ge=0,
        description=(
            "A cold audit, cold trained in full whatever the race says, every this many retrains (counted in "
            "the registry, so restarts keep the cadence); 0: only on the first model and on evidence."
        ),
    )
    cold_between_audits: Literal["race", "skip"] = Field(
        default="skip",
        description=(
            "What the cold start does in a round with no audit: 'skip', it does not train at all, so such a round "
            "costs only the warm-started candidates; 'race', it races them (stopped once it trails, after "
            "race_min_epochs; it wins when it leads). Either way cold trains in full on the first model, every "
            "cold_every retrains, and on evidence (audit_margin; a warm lineage that lost at the last audit or "
            "scores no better than a constant prediction). On the demo stream (3 seeds, audit_backoff 1) 'skip' "
            "trained 0.68x a cold-only service's seconds (0.74x with a feature that changes meaning), against "
            "'race' 0.90-0.97x (0.91-0.93x), with the champion ahead of the cold-only service's on the mean and at "
            "most 0.005 behind in any round (docs/benchmarks.md)."
        ),
    )
    audit_margin: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Evidence that the warm lineage fell behind, in gate-metric units: the untouched champion trails "
            "this round's best warm-started candidate by more than this on the same holdout rows (the data "
            "moved); cold is then trained in full. None: 0.05 for roc_auc and accuracy, 10% of the champion's "
            "value for log_loss, rmse and mae. On the demo stream (TabM) a month's fresh warm candidate led last "
            "month's champion by more than 0.05 in some ordinary months (up to 0.10) and by 0.09-0.10 where a "
            "feature changed meaning, so it fires in seasonal months too. With cold between audits skipped, 0.12 "
            "trained 0.56x a cold-only service's seconds (0.05: 0.68x) but let one month's champion fall 0.016 "
            "behind a cold-only service's, where 0.05 had caught it (docs/benchmarks.md)."
        ),
    )

    audit_backoff: float = Field(
        default=1.0,
        ge=1.0,
        description=(
            "Widens audit_margin after each audit the champion-trails evidence called in which cold did not beat "
            "the warm-started candidates: the margin is audit_margin x audit_backoff^n, n such audits since cold "
            "last won an audit or a race (a cold win resets n; with cold_every 0 nothing else does). 1, the "
            "default: never widened, because at the demo's shifted stream 2 let the evidence pass in 3 of 3 seeds "
            "and the change waited for the cadence audit. 2 is the setting for a trending target: on the zoo's "
            "txhousing it trained cold in 6 of 15 retrains instead of 11 at the same mean champion RMSE "
            "(docs/benchmarks.md)."
        ),
    )

    def for_candidate(self, warm_started: bool) -> TrainSection:
        """The budget a candidate trains under: warm-started ones take the warm_* values that are set."""
        if not warm_started:
            return self
        update = {"lr": self.warm_lr, "warmup_fraction": self.warm_warmup_fraction, "max_epochs": self.warm_max_epochs}
        update |= {"patience": self.warm_patience}
        return self.model_copy(update={k: v for k, v in update.items() if v is not None})

    def skips_cold(self, candidates: int) -> bool:
        """Whether a round of CANDIDATES (cold among them) makes cold only on an audit or evidence: 'skip', with
        a warm-started candidate beside it (a round of cold alone always trains it)."""
        return self.cold_between_audits == "skip" and candidates > 1

    def batch_for(self, rows: int) -> int:
        """batch_size, made smaller for a small training set so that an epoch takes at least MIN_STEPS_PER_EPOCH
        steps (never below MIN_BATCH): at 300 rows, batch 1024 would be one step an epoch."""
        return max(1, min(self.batch_size, max(MIN_BATCH, math.ceil(rows / MIN_STEPS_PER_EPOCH))))

    @field_validator("strategies")
    @classmethod
    def _non_empty_unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("list each strategy once, at least one of shrink_perturb, warm, cold")
        return v
