"""Pin the exact semantics of shrink-and-perturb, warm and cold starts (models/strategies.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rewarm.config import TrainSection
from rewarm.models.network import ArchConfig, build_model
from rewarm.models.strategies import COLD, WARM, Strategy, initialise, shrink_perturb, strategy
from rewarm.training import Tensors, train

ARCH = ArchConfig(n_numeric=3, cardinalities=(4, 6), embedding_dim=2, hidden=(8, 5), n_outputs=1)


def _clones(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


class _WithBuffers(nn.Module):
    """A small module with a BatchNorm (running stats) and a registered buffer of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("scale", torch.ones(4))


def _with_buffers(seed: int) -> _WithBuffers:
    torch.manual_seed(seed)
    return _WithBuffers()


# ---- shrink_perturb -------------------------------------------------------------------------------


@pytest.mark.parametrize(("shrink", "perturb"), [(0.6, 0.01), (0.4, 0.1), (0.25, 0.5)])
def test_every_parameter_is_shrink_old_plus_perturb_fresh(shrink: float, perturb: float) -> None:
    old, fresh = build_model(ARCH, seed=1), build_model(ARCH, seed=2)
    theta_old, theta_fresh = _clones(old), _clones(fresh)

    out = shrink_perturb(old, fresh, shrink, perturb)

    assert out is fresh
    names = [n for n, _ in out.named_parameters()]
    # weights, biases and embeddings of every layer are all blended
    assert {"embeddings.0.weight", "embeddings.1.weight", "mlp.0.weight", "mlp.0.bias", "mlp.4.bias"} <= set(names)
    for name, p in out.named_parameters():
        expected = shrink * theta_old[name] + perturb * theta_fresh[name]
        assert torch.equal(p.detach(), expected), name
        assert not torch.allclose(p.detach(), theta_old[name]) or name.endswith("bias"), name


def test_shrink_perturb_leaves_the_parent_untouched() -> None:
    old, fresh = build_model(ARCH, seed=1), build_model(ARCH, seed=2)
    theta_old = _clones(old)
    shrink_perturb(old, fresh, 0.5, 0.5)
    for name, p in old.named_parameters():
        assert torch.equal(p.detach(), theta_old[name]), name


def test_noise_comes_from_the_fresh_copy_of_each_parameter() -> None:
    # With shrink 0 the result is exactly sigma * the fresh copy's own values, layer by layer.
    old, fresh = build_model(ARCH, seed=1), build_model(ARCH, seed=2)
    theta_fresh = _clones(fresh)
    shrink_perturb(old, fresh, 0.0, 0.3)
    for name, p in fresh.named_parameters():
        assert torch.allclose(p.detach(), 0.3 * theta_fresh[name]), name


def test_buffers_come_from_the_fresh_copy() -> None:
    old, fresh = _with_buffers(1), _with_buffers(2)
    old.bn.running_mean.fill_(7.0)
    old.bn.running_var.fill_(42.0)
    old.bn.num_batches_tracked.fill_(99)
    old.scale.fill_(-3.0)
    theta_old, theta_fresh = _clones(old), _clones(fresh)

    shrink_perturb(old, fresh, 0.6, 0.01)

    assert torch.equal(fresh.bn.running_mean, torch.zeros(4))
    assert torch.equal(fresh.bn.running_var, torch.ones(4))
    assert int(fresh.bn.num_batches_tracked) == 0
    assert torch.equal(fresh.scale, torch.ones(4))
    # the BatchNorm affine weight and bias are parameters, so they are blended like any other
    for name in ("lin.weight", "lin.bias", "bn.weight", "bn.bias"):
        expected = 0.6 * theta_old[name] + 0.01 * theta_fresh[name]
        assert torch.equal(dict(fresh.named_parameters())[name].detach(), expected), name


def test_warm_reproduces_the_parent_exactly() -> None:
    parent = build_model(ARCH, seed=5)
    child = initialise(WARM, ARCH, parent, seed=9)
    assert child is not parent
    parent_state, child_state = parent.state_dict(), child.state_dict()
    assert parent_state.keys() == child_state.keys()
    for name in parent_state:
        assert torch.equal(child_state[name], parent_state[name]), name


def test_cold_equals_a_fresh_build_and_ignores_the_parent() -> None:
    parent = build_model(ARCH, seed=5)
    with torch.no_grad():
        for p in parent.parameters():
            p.fill_(123.0)  # anything that leaked from the parent would show
    child = initialise(COLD, ARCH, parent, seed=9)
    reference = build_model(ARCH, seed=9)
    for name, value in reference.state_dict().items():
        assert torch.equal(child.state_dict()[name], value), name
    assert all((p != 123.0).all() for p in child.parameters())


def test_without_a_parent_every_strategy_is_a_cold_start() -> None:
    reference = build_model(ARCH, seed=3)
    for choice in (WARM, Strategy("shrink_perturb", 0.6, 0.01)):
        child = initialise(choice, ARCH, None, seed=3)
        for name, value in reference.state_dict().items():
            assert torch.equal(child.state_dict()[name], value), (choice.name, name)


def test_initialise_shrink_perturb_uses_the_seeded_fresh_copy() -> None:
    parent = build_model(ARCH, seed=5)
    child = initialise(strategy("shrink_perturb", 0.4, 0.1), ARCH, parent, seed=9)
    fresh = build_model(ARCH, seed=9)
    for (name, p), (_, f), (_, o) in zip(
        child.named_parameters(), fresh.named_parameters(), parent.named_parameters(), strict=True
    ):
        assert torch.equal(p.detach(), 0.4 * o.detach() + 0.1 * f.detach()), name


# ---- growth ----------------------------------------------------------------------------------------


def test_grown_embedding_blends_old_rows_and_keeps_fresh_init_for_new_rows() -> None:
    small = ArchConfig(n_numeric=3, cardinalities=(4, 6), embedding_dim=2, hidden=(8,), n_outputs=1)
    grown = ArchConfig(n_numeric=3, cardinalities=(7, 6), embedding_dim=2, hidden=(8,), n_outputs=1)
    old, fresh = build_model(small, seed=1), build_model(grown, seed=2)
    theta_old, theta_fresh = _clones(old), _clones(fresh)

    shrink_perturb(old, fresh, 0.6, 0.01)

    emb = fresh.embeddings[0].weight.detach()
    assert emb.shape == (7, 2)
    assert torch.equal(emb[:4], 0.6 * theta_old["embeddings.0.weight"] + 0.01 * theta_fresh["embeddings.0.weight"][:4])
    assert torch.equal(emb[4:], theta_fresh["embeddings.0.weight"][4:])
    other = fresh.embeddings[1].weight.detach()
    assert torch.equal(other, 0.6 * theta_old["embeddings.1.weight"] + 0.01 * theta_fresh["embeddings.1.weight"])


@pytest.mark.parametrize(
    ("parent_arch", "child_arch"),
    [
        # vocabulary shrank: the parent has more rows than the child
        (ArchConfig(3, (7,), 2, (8,), 1), ArchConfig(3, (4,), 2, (8,), 1)),
        # embedding width changed: a trailing dimension cannot grow
        (ArchConfig(3, (4,), 2, (8,), 1), ArchConfig(3, (4,), 3, (8,), 1)),
        # hidden width changed: the next layer's input dimension differs
        (ArchConfig(3, (4,), 2, (8,), 1), ArchConfig(3, (4,), 2, (9,), 1)),
    ],
)
def test_a_shape_that_cannot_grow_raises(parent_arch: ArchConfig, child_arch: ArchConfig) -> None:
    old, fresh = build_model(parent_arch, seed=1), build_model(child_arch, seed=2)
    with pytest.raises(ValueError, match=r"the parent's architecture cannot grow into this one: only vocabularies"):
        shrink_perturb(old, fresh, 0.6, 0.01)


# ---- build_model and strategy() -------------------------------------------------------------------


def test_build_model_same_seed_identical_other_seed_differs() -> None:
    a, b, c = build_model(ARCH, seed=4), build_model(ARCH, seed=4), build_model(ARCH, seed=5)
    for name, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], value), name
    assert not torch.equal(a.mlp[0].weight, c.mlp[0].weight)


def test_build_model_does_not_disturb_the_global_rng() -> None:
    torch.manual_seed(1234)
    expected = torch.rand(5)
    torch.manual_seed(1234)
    build_model(ARCH, seed=4)
    assert torch.equal(torch.rand(5), expected)


def test_strategy_by_name() -> None:
    assert strategy("cold", 0.3, 0.3) is COLD
    assert strategy("warm", 0.3, 0.3) is WARM
    sp = strategy("shrink_perturb", 0.4, 0.1)
    assert (sp.shrink, sp.perturb, sp.from_parent) == (0.4, 0.1, True)
    assert sp.params() == {"strategy": "shrink_perturb", "shrink": 0.4, "perturb": 0.1}
    assert (COLD.from_parent, WARM.shrink, WARM.perturb) == (False, 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown strategy 'dash'"):
        strategy("dash", 0.4, 0.1)


# ---- the trainer takes a shrink-perturbed model -----------------------------------------------------


def test_train_runs_on_a_shrink_perturbed_grown_model() -> None:
    # The fresh optimizer is the trainer's job: train() builds AdamW itself, so a blended model trains.
    small = ArchConfig(n_numeric=2, cardinalities=(3,), embedding_dim=2, hidden=(8,), n_outputs=1)
    grown = ArchConfig(n_numeric=2, cardinalities=(5,), embedding_dim=2, hidden=(8,), n_outputs=1)
    model = initialise(strategy("shrink_perturb", 0.6, 0.01), grown, build_model(small, seed=0), seed=1)
    start = _clones(model)
    gen = torch.Generator().manual_seed(0)
    x_num = torch.randn(200, 2, generator=gen)
    x_cat = torch.randint(0, 5, (200, 1), generator=gen)
    y = (x_num[:, 0] > 0).long()
    data = Tensors.build(x_num.numpy(), x_cat.numpy(), y.numpy(), torch.device("cpu"))
    cfg = TrainSection(max_epochs=3, patience=5, batch_size=32, lr=1e-2, seed=0)

    result = train(model, data, data, "binary", cfg)

    assert result.epochs == 3
    assert all(torch.isfinite(torch.tensor(v)) for v in result.train_loss + result.val_loss)
    assert result.val_loss[-1] < result.val_loss[0] or result.best_epoch > 0
    assert any(not torch.equal(p.detach(), start[n]) for n, p in model.named_parameters())
