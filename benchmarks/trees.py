"""Gradient-boosted trees on a round's exact rows: what a user would pick instead of a network.

LightGBM with default settings, fitted from scratch on the round's training rows (validation rows included:
default LightGBM does not early-stop) and scored on the round's holdout with rewarm's own metric code.
Categories are given as rewarm's append-only codes (0 = unknown), so a category's code never changes between
rounds; numbers stay raw, their nulls as NaN, which LightGBM routes on its own.
LightGBM is a benchmark dependency (the `bench` extra), imported only here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rewarm import metrics, rounds
from rewarm.models.preprocess import Preprocessor, numbers


@dataclass(frozen=True)
class TreesResult:
    seconds: float  # fit time
    scores: dict[str, float]  # every metric of the task on the holdout
    predictions: np.ndarray  # on the metrics' scale, as score_holdout gives them


def features(pre: Preprocessor, frame: pd.DataFrame) -> pd.DataFrame:
    """Raw numbers (NaN where missing) and rewarm's category codes, as LightGBM's input."""
    out = pd.DataFrame({c: numbers(frame[c]) for c in pre.numeric}, index=frame.index)
    _, x_cat = pre.features(frame)
    for j, col in enumerate(pre.categorical):
        out[col] = x_cat[:, j]
    return out


def fit_and_score(data: rounds.RoundData, seed: int = 0) -> TreesResult:
    """Fit default LightGBM on DATA's training rows; score it on DATA's holdout."""
    import lightgbm

    pre = data.preprocessor
    x, x_holdout = features(pre, data.train_frame), features(pre, data.holdout_frame)
    y = pre.metric_targets(data.train_frame[pre.target])
    common = {"random_state": seed, "verbose": -1}
    started = time.perf_counter()
    if pre.task == "regression":
        model = lightgbm.LGBMRegressor(**common).fit(x, y, categorical_feature=list(pre.categorical) or "auto")
        elapsed = time.perf_counter() - started
        predictions = model.predict(x_holdout)
    else:
        model = lightgbm.LGBMClassifier(**common).fit(x, y, categorical_feature=list(pre.categorical) or "auto")
        elapsed = time.perf_counter() - started
        proba = model.predict_proba(x_holdout)
        full = np.zeros((len(x_holdout), len(pre.classes)))
        full[:, model.classes_.astype(int)] = proba  # a class absent from training gets probability 0
        predictions = full[:, 1] if pre.task == "binary" else full
    return TreesResult(elapsed, metrics.score(pre.task, data.y_holdout, predictions), predictions)
