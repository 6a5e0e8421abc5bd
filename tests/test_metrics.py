"""Holdout metrics against scikit-learn, and the paired bootstrap (rewarm/metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from rewarm import metrics


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.uniform(0.05, 0.65, 400), 0.02, 0.98)
    return y, p


def test_roc_auc_matches_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    assert metrics.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)


def test_roc_auc_with_ties_matches_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    coarse = np.round(p, 1)  # heavy ties, across both classes
    assert len(np.unique(coarse)) < 12
    expected = sk.roc_auc_score(y, coarse)
    assert metrics.roc_auc(y, coarse) == pytest.approx(expected, abs=1e-12)
    # a hand-checked case: one tie between a positive and a negative counts a half
    assert metrics.roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.5, 0.5, 0.9])) == pytest.approx(7 / 8)


def test_roc_auc_is_nan_with_a_single_class() -> None:
    assert math.isnan(metrics.roc_auc(np.ones(5, dtype=int), np.linspace(0.1, 0.9, 5)))


def test_accuracy_matches_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    assert metrics.accuracy(y, p) == pytest.approx(sk.accuracy_score(y, (p >= 0.5).astype(int)))
    assert metrics.accuracy(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # 0.5 counts as positive


def test_multiclass_accuracy_and_log_loss_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    raw = rng.uniform(0.1, 1.0, (300, 3))
    raw[np.arange(300), y] += 0.5
    p = raw / raw.sum(axis=1, keepdims=True)
    assert p.min() > 0.01 and p.max() < 0.99
    assert metrics.accuracy(y, p) == pytest.approx(sk.accuracy_score(y, p.argmax(axis=1)))
    assert metrics.log_loss(y, p) == pytest.approx(sk.log_loss(y, p, labels=[0, 1, 2]), rel=1e-12)


def test_binary_log_loss_matches_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    assert p.min() > 0.01 and p.max() < 0.99  # away from the clip, so clipping does not matter
    assert metrics.log_loss(y, p) == pytest.approx(sk.log_loss(y, p), rel=1e-12)


def test_rmse_and_mae_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.3, size=200)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(sk.mean_squared_error(y, p)), rel=1e-12)
    assert metrics.mae(y, p) == pytest.approx(sk.mean_absolute_error(y, p), rel=1e-12)


def test_score_computes_the_task_metrics(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    scores = metrics.score("binary", y, p)
    assert set(scores) == {"roc_auc", "log_loss", "accuracy"}
    assert scores["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    assert set(metrics.score("regression", y.astype(float), p)) == {"rmse", "mae"}


# ---- paired bootstrap ----------------------------------------------------------------------------


def test_bootstrap_of_a_model_against_itself_is_exactly_zero(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    for metric in ("roc_auc", "log_loss", "accuracy"):
        assert metrics.paired_bootstrap(metric, y, p, p.copy(), n=200, confidence=0.95) == (0.0, 0.0)


def test_bootstrap_ci_contains_the_delta_of_a_clearly_better_model() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    good = np.clip(0.6 * y + rng.uniform(0.1, 0.3, 500), 0.02, 0.98)  # nearly separates the classes
    poor = rng.uniform(0.05, 0.95, 500)  # noise
    delta = metrics.roc_auc(y, good) - metrics.roc_auc(y, poor)
    low, high = metrics.paired_bootstrap("roc_auc", y, good, poor, n=300, confidence=0.95, seed=0)
    assert delta > 0.3
    assert 0 < low <= delta <= high
    # the other way round the whole interval is negative
    low_r, high_r = metrics.paired_bootstrap("roc_auc", y, poor, good, n=300, confidence=0.95, seed=0)
    assert low_r <= -delta <= high_r < 0
    # lower-is-better: a better model has the lower log loss, so metric(a) - metric(b) is negative
    ll_low, ll_high = metrics.paired_bootstrap("log_loss", y, good, poor, n=300, confidence=0.95, seed=0)
    assert ll_low <= metrics.log_loss(y, good) - metrics.log_loss(y, poor) <= ll_high < 0


def test_bootstrap_is_deterministic_for_a_seed(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    other = np.clip(p + np.random.default_rng(9).normal(scale=0.1, size=len(p)), 0.02, 0.98)
    first = metrics.paired_bootstrap("roc_auc", y, p, other, n=200, confidence=0.9, seed=7)
    again = metrics.paired_bootstrap("roc_auc", y, p, other, n=200, confidence=0.9, seed=7)
    elsewhere = metrics.paired_bootstrap("roc_auc", y, p, other, n=200, confidence=0.9, seed=8)
    assert first == again
    assert first != elsewhere
    assert first[0] < first[1]


def test_bootstrap_wider_confidence_gives_a_wider_interval(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    other = np.clip(p + np.random.default_rng(9).normal(scale=0.1, size=len(p)), 0.02, 0.98)
    narrow = metrics.paired_bootstrap("log_loss", y, p, other, n=300, confidence=0.6, seed=0)
    wide = metrics.paired_bootstrap("log_loss", y, p, other, n=300, confidence=0.99, seed=0)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "accuracy", "rmse", "mae"])
def test_vectorised_bootstrap_matches_a_plain_resampling_loop(metric: str) -> None:
    rng = np.random.default_rng(3)
    n = 400
    if metric in ("rmse", "mae"):
        y = rng.standard_normal(n)
        a, b = y + 0.5 * rng.standard_normal(n), y + 0.6 * rng.standard_normal(n)
    else:
        y = rng.integers(0, 2, n)
        a = np.round(np.clip(0.5 + 0.3 * (y - 0.5) + 0.2 * rng.standard_normal(n), 0.01, 0.99), 2)  # ties
        b = np.clip(a + 0.1 * rng.standard_normal(n), 0.01, 0.99)
    reference, draws = [], np.random.default_rng(7).integers(0, n, (200, n))
    for rows in draws:
        fn = metrics.METRICS[metric]
        reference.append(fn(y[rows], a[rows]) - fn(y[rows], b[rows]))
    expected = np.percentile(reference, [5, 95])
    assert metrics.paired_bootstrap(metric, y, a, b, 200, 0.90, seed=7) == pytest.approx(tuple(expected), abs=1e-12)


def test_multiclass_roc_auc_is_the_macro_one_vs_rest_average() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 500)
    logits = rng.normal(size=(500, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert metrics.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    q = np.roll(p, 1, axis=1)  # a worse model
    reference = []
    for rows in np.random.default_rng(2).integers(0, 500, (100, 500)):
        reference.append(metrics.roc_auc(y[rows], p[rows]) - metrics.roc_auc(y[rows], q[rows]))
    got = metrics.paired_bootstrap("roc_auc", y, p, q, 100, 0.9, seed=2)
    assert got == pytest.approx(tuple(np.percentile(reference, [5, 95])), abs=1e-12)


def test_bootstrap_in_chunks_gives_the_same_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    y, a, b = rng.integers(0, 2, 3000), rng.random(3000), rng.random(3000)
    whole = metrics.paired_bootstrap("roc_auc", y, a, b, 500, 0.95, seed=4)
    monkeypatch.setattr(metrics, "_CHUNK_CELLS", 100_000)  # 33 resamples per chunk
    assert metrics.paired_bootstrap("roc_auc", y, a, b, 500, 0.95, seed=4) == whole


def test_multiclass_auc_bootstrap_survives_classes_too_rare_for_most_resamples() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.arange(25), rng.integers(0, 3, 175)]  # 22 classes appear once in 200 rows
    p = rng.dirichlet(np.ones(25), 200)
    q = rng.dirichlet(np.ones(25), 200)
    low, high = metrics.paired_bootstrap("roc_auc", y, p, q, 200, 0.95)
    assert np.isfinite(low) and np.isfinite(high) and low <= high
