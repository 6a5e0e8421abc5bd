"""Holdout metrics and the paired bootstrap, in numpy (fast enough to resample a thousand times)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from rewarm.config import TASK_METRICS

HIGHER_IS_BETTER = {"accuracy": True, "roc_auc": True, "log_loss": False, "rmse": False, "mae": False}
_EPS = 1e-7
_CHUNK_CELLS = 5_000_000  # resampled row indices held at once (40 MB of int64)


def accuracy(y: np.ndarray, p: np.ndarray) -> float:
    """Share of rows whose most likely class is the label (P >= 0.5 for binary)."""
    guess = p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(y.dtype)
    return float((guess == y).mean())


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of the label."""
    chosen = p[np.arange(len(y)), y] if p.ndim == 2 else np.where(y == 1, p, 1.0 - p)
    return float(-np.log(np.clip(chosen, _EPS, 1.0)).mean()) + 0.0  # + 0.0: never -0.0 when every row is certain


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic, ties averaged.

    Multiclass probabilities (N, K) give the macro average of the K one-vs-rest AUCs.
    """
    if p.ndim == 2:  # classes absent from Y are left out of the average, as in each bootstrap resample
        per_class = [roc_auc((y == k).astype(np.int64), p[:, k]) for k in range(p.shape[1])]
        return float(np.nanmean(per_class)) if not np.isnan(per_class).all() else float("nan")
    positives = y == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(p)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y)))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "log_loss": log_loss,
    "roc_auc": roc_auc,
    "rmse": rmse,
    "mae": mae,
}


def score(task: str, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric that applies to TASK."""
    return {name: METRICS[name](y, p) for name in TASK_METRICS[task]}


def constant(task: str, y: np.ndarray, shape: tuple[int, ...], fitted: np.ndarray | None = None) -> dict[str, float]:
    """Every metric on Y of the constant prediction a model that learned nothing from the features would make,
    shaped like a model's predictions (SHAPE): the mean, or the class shares, of FITTED (the targets the round
    trained on; Y itself when None, the best constant there could be, which no real model can match where the
    target trends). A class FITTED never holds gets a tiny share, so its log loss stays finite."""
    fitted = y if fitted is None else fitted
    if task == "multiclass":
        counts = np.bincount(fitted.astype(np.int64), minlength=shape[1])[: shape[1]].astype(float)
        p = np.broadcast_to(np.maximum(counts, 1e-3) / max(counts.sum(), 1.0), shape)
    else:
        p = np.full(shape, float(np.mean(fitted)) if len(fitted) else 0.0)
    return score(task, y, p)


def paired_bootstrap(
    metric: str, y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, n: int, confidence: float, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of metric(a) - metric(b), resampling the same rows for both models.

    All resamples are drawn at once as an (n, N) matrix of row indices and scored in one vectorised pass
    (a Python loop over 1000 resamples of 6k rows took 0.8 s).
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // len(y))  # bounded memory: a million-row holdout is not 8 GB of indices
    deltas = np.concatenate(
        [
            _resampled(metric, y, p_a, draws) - _resampled(metric, y, p_b, draws)
            for draws in (
                rng.integers(0, len(y), (min(per_chunk, n - start), len(y))) for start in range(0, n, per_chunk)
            )
        ]
    )
    deltas = deltas[~np.isnan(deltas)]
    if deltas.size == 0:  # no resample could score both models (e.g. every one missed a rare class)
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2 * 100
    return float(np.percentile(deltas, tail)), float(np.percentile(deltas, 100 - tail))


def _resampled(metric: str, y: np.ndarray, p: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """METRIC on each resample; row i of DRAWS holds the row indices of resample i."""
    if metric == "roc_auc" and p.ndim == 2:  # macro one-vs-rest
        per_class = [_resampled_auc((y == k).astype(np.int64), p[:, k], draws) for k in range(p.shape[1])]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample may miss every class but one
            return np.nanmean(per_class, axis=0)  # classes a resample missed are left out of its average
    if metric == "roc_auc":
        return _resampled_auc(y, p, draws)
    if metric == "rmse":
        return np.sqrt(((p - y) ** 2)[draws].mean(axis=1))
    if metric == "mae":
        return np.abs(p - y)[draws].mean(axis=1)
    if metric == "accuracy":
        guess = p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(y.dtype)
        return (guess == y).astype(float)[draws].mean(axis=1)
    chosen = p[np.arange(len(y)), y] if p.ndim == 2 else np.where(y == 1, p, 1.0 - p)
    return -np.log(np.clip(chosen, _EPS, 1.0))[draws].mean(axis=1)


def _resampled_auc(y: np.ndarray, p: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Rank-sum AUC per resample: per tied-score group, count drawn positives and negatives in one bincount."""
    groups, group_of = np.unique(p, return_inverse=True)  # groups in ascending score order
    n, g = draws.shape[0], len(groups)
    key = (np.arange(n)[:, None] * g + group_of[draws]) * 2 + (y[draws] == 1)
    tally = np.bincount(key.ravel(), minlength=n * g * 2).reshape(n, g, 2)  # integer counts: no float copy
    neg, pos = tally[..., 0], tally[..., 1]
    below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample with one class has no AUC: NaN
        return (pos * (2 * below + neg)).sum(axis=1) / (2.0 * pos.sum(axis=1) * neg.sum(axis=1))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (like scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    boundaries = np.r_[True, sorted_x[1:] != sorted_x[:-1], True]
    starts = np.flatnonzero(boundaries)
    group = np.cumsum(boundaries[:-1]) - 1
    avg = (starts[:-1] + starts[1:] + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(x))
    ranks[order] = avg[group]
    return ranks
