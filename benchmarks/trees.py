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


def fit(pre: Preprocessor, frame: pd.DataFrame, seed: int = 0, init_model=None):
    """Default LightGBM fitted on FRAME's rows (continuing INIT_MODEL's boosting when given: LightGBM's own warm
    start, whose old trees keep their category splits because rewarm's codes only ever grow); returns (model,
    fit seconds)."""
    import lightgbm

    x, y = features(pre, frame), pre.metric_targets(frame[pre.target])
    if init_model is not None and pre.task != "regression" and set(np.unique(y)) != set(init_model.classes_):
        init_model = None  # boosting cannot go on over another set of classes: a fresh fit
    estimator = lightgbm.LGBMRegressor if pre.task == "regression" else lightgbm.LGBMClassifier
    started = time.perf_counter()
    model = estimator(random_state=seed, verbose=-1).fit(
        x, y, categorical_feature=list(pre.categorical) or "auto", init_model=init_model
    )
    return model, time.perf_counter() - started


def predict(model, pre: Preprocessor, frame: pd.DataFrame) -> np.ndarray:
    """MODEL's predictions for FRAME on the metrics' scale, as score_holdout gives them."""
    x = features(pre, frame)
    if pre.task == "regression":
        return model.predict(x)
    proba = model.predict_proba(x)
    full = np.zeros((len(x), len(pre.classes)))
    full[:, model.classes_.astype(int)] = proba  # a class absent from training gets probability 0
    return full[:, 1] if pre.task == "binary" else full


def predictor(model):
    """MODEL's predictions as a function of (preprocessor, frame), like a network's in the replay."""
    return lambda pre, frame: predict(model, pre, frame)


def fit_and_score(data: rounds.RoundData, seed: int = 0) -> TreesResult:
    """Fit default LightGBM on DATA's training rows; score it on DATA's holdout."""
    pre = data.preprocessor
    model, elapsed = fit(pre, data.train_frame, seed)
    predictions = predict(model, pre, data.holdout_frame)
    return TreesResult(elapsed, metrics.score(pre.task, data.y_holdout, predictions), predictions)
