"""The training loop on tiny synthetic data, CPU only (rewarm/training.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rewarm.config import TrainSection
from rewarm.models.network import ArchConfig, build_model
from rewarm.training import Tensors, evaluate_loss, loss_fn, pick_device, predict, train, warmup_cosine

CPU = torch.device("cpu")
ARCH = ArchConfig(n_numeric=3, cardinalities=(4,), embedding_dim=2, hidden=(8,), n_outputs=1)
N_TRAIN = 300


def _data(n: int, seed: int, learnable: bool = True) -> Tensors:
    """Binary rows; learnable labels follow the first numeric feature, otherwise they are coin flips."""
    rng = np.random.default_rng(seed)
    x_num = rng.normal(size=(n, 3)).astype(np.float32)
    x_cat = rng.integers(0, 4, (n, 1)).astype(np.int64)
    y = (x_num[:, 0] + 0.5 * (x_cat[:, 0] == 2) > 0) if learnable else rng.integers(0, 2, n)
    return Tensors.build(x_num, x_cat, y.astype(np.int64), CPU)


@pytest.fixture(scope="module")
def splits() -> tuple[Tensors, Tensors]:
    return _data(N_TRAIN, seed=0), _data(100, seed=1)


def _cfg(**overrides) -> TrainSection:
    base = {"max_epochs": 4, "patience": 10, "batch_size": 64, "lr": 1e-2, "seed": 0}
    return TrainSection(**{**base, **overrides})


def test_same_seed_is_bit_identical(splits: tuple[Tensors, Tensors]) -> None:
    train_set, val_set = splits
    a = train(build_model(ARCH, seed=3), train_set, val_set, "binary", _cfg())
    b = train(build_model(ARCH, seed=3), train_set, val_set, "binary", _cfg())
    assert a.state_dict.keys() == b.state_dict.keys()
    for name, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[name]), name
    assert a.train_loss == b.train_loss and a.val_loss == b.val_loss
    assert (a.epochs, a.best_epoch, a.samples_seen) == (b.epochs, b.best_epoch, b.samples_seen)


def test_another_shuffle_seed_gives_other_weights(splits: tuple[Tensors, Tensors]) -> None:
    train_set, val_set = splits
    a = train(build_model(ARCH, seed=3), train_set, val_set, "binary", _cfg(seed=0))
    b = train(build_model(ARCH, seed=3), train_set, val_set, "binary", _cfg(seed=1))
    assert not torch.equal(a.state_dict["mlp.0.weight"], b.state_dict["mlp.0.weight"])


def test_result_fields(splits: tuple[Tensors, Tensors]) -> None:
    train_set, val_set = splits
    seen: list[tuple[int, float, float]] = []
    model = build_model(ARCH, seed=0)
    result = train(model, train_set, val_set, "binary", _cfg(), on_epoch=lambda *a: seen.append(a))

    assert result.epochs == 4  # patience 10 > budget: the whole budget runs
    assert 1 <= result.best_epoch <= result.epochs  # learnable data improves on the start
    assert result.samples_seen == result.epochs * N_TRAIN
    assert result.seconds > 0
    assert len(result.val_loss) == len(result.train_loss) == result.epochs
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert [s[1] for s in seen] == result.train_loss and [s[2] for s in seen] == result.val_loss
    assert all(math.isfinite(v) for v in result.train_loss + result.val_loss)
    assert result.val_loss[-1] < result.val_loss[0]
    # the best epoch's weights are kept, on the CPU, and loaded back into the model
    assert result.val_loss[result.best_epoch - 1] <= min(result.val_loss) + 1e-4
    for name, value in model.state_dict().items():
        assert result.state_dict[name].device == CPU
        assert torch.equal(result.state_dict[name], value), name
    assert evaluate_loss(model, val_set, "binary") == pytest.approx(result.val_loss[result.best_epoch - 1], rel=1e-5)


def test_state_dict_is_a_copy_not_the_live_weights(splits: tuple[Tensors, Tensors]) -> None:
    train_set, val_set = splits
    model = build_model(ARCH, seed=0)
    result = train(model, train_set, val_set, "binary", _cfg(max_epochs=2))
    kept = result.state_dict["mlp.0.weight"].clone()
    with torch.no_grad():
        model.mlp[0].weight.add_(1.0)
    assert torch.equal(result.state_dict["mlp.0.weight"], kept)


def test_early_stopping_on_unlearnable_data() -> None:
    # Coin-flip labels: validation loss cannot keep improving, so training stops well before the budget.
    # (Across 30 seeds of this setup the longest run was 13 of 50 epochs.)
    train_set, val_set = _data(N_TRAIN, seed=0, learnable=False), _data(100, seed=1000, learnable=False)
    cfg = _cfg(max_epochs=50, patience=2, batch_size=32, lr=5e-2)
    result = train(build_model(ARCH, seed=0), train_set, val_set, "binary", cfg)

    assert result.epochs < cfg.max_epochs
    assert result.epochs - result.best_epoch == cfg.patience  # stopped exactly when patience ran out
    assert result.samples_seen == result.epochs * N_TRAIN
    assert len(result.val_loss) == result.epochs


def test_warm_started_candidates_take_their_own_budget_and_patience() -> None:
    # The warm_* keys apply only to warm-started candidates; an unset one falls back to the shared value.
    cfg = _cfg(patience=3, warm_patience=1, warm_lr=1e-3)
    warm, cold = cfg.for_candidate(True), cfg.for_candidate(False)
    assert (warm.patience, warm.lr, warm.max_epochs) == (1, 1e-3, cfg.max_epochs)
    assert (cold.patience, cold.lr) == (3, cfg.lr)
    assert _cfg(patience=3).for_candidate(True).patience == 3
    train_set, val_set = _data(N_TRAIN, seed=0, learnable=False), _data(100, seed=1000, learnable=False)
    budget = _cfg(max_epochs=50, patience=5, warm_patience=1, batch_size=32, lr=5e-2).for_candidate(True)
    result = train(build_model(ARCH, seed=0), train_set, val_set, "binary", budget)
    assert result.epochs - result.best_epoch == 1  # stopped on the warm patience, not the shared 5


def test_loss_functions_per_task() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=gen)
    classes = torch.tensor([0, 2, 1, 1, 0, 2])
    binary = torch.tensor([0, 1, 1, 0, 1, 0])
    target = torch.randn(6, generator=gen)
    assert torch.allclose(
        loss_fn("binary")(logits, binary), F.binary_cross_entropy_with_logits(logits[:, 0], binary.float())
    )
    assert torch.allclose(loss_fn("multiclass")(logits, classes), F.cross_entropy(logits, classes))
    assert torch.allclose(loss_fn("regression")(logits, target), ((logits[:, 0] - target) ** 2).mean())


def test_predict_returns_probabilities(splits: tuple[Tensors, Tensors]) -> None:
    _, val_set = splits
    p = predict(build_model(ARCH, seed=0), val_set.x_num, val_set.x_cat, "binary")
    assert isinstance(p, np.ndarray) and p.shape == (100,)
    assert ((p > 0) & (p < 1)).all()


def test_warmup_cosine_shape() -> None:
    factor = warmup_cosine(total_steps=100, warmup_fraction=0.1)  # 10 warmup steps
    values = [factor(s) for s in range(101)]
    assert values[0] == pytest.approx(0.1)  # starts small
    assert values[9] == pytest.approx(1.0) and values[10] == pytest.approx(1.0)  # peak after warmup
    assert max(values) == pytest.approx(1.0)
    assert all(a < b for a, b in zip(values[:9], values[1:10], strict=True))  # rising during warmup
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))  # then never rising
    assert values[55] == pytest.approx(0.5)  # halfway through the decay
    assert values[99] < 0.01 and values[100] == pytest.approx(0.0, abs=1e-12)  # ends near 0
    assert factor(500) == pytest.approx(0.0, abs=1e-12)  # past the budget it stays at 0


def test_warmup_cosine_without_warmup_starts_at_the_peak() -> None:
    factor = warmup_cosine(total_steps=20, warmup_fraction=0.0)
    assert factor(0) == pytest.approx(1.0)
    assert factor(1) == pytest.approx(1.0)
    assert factor(19) < 0.05


def test_pick_device() -> None:
    assert pick_device("cpu") == CPU
    assert pick_device("auto") == (torch.device("cuda") if torch.cuda.is_available() else CPU)
