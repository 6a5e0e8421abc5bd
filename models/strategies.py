"""Warm-start strategies, as in Ash & Adams' reference implementation.

shrink_perturb(lambda, sigma): every parameter becomes lambda * theta_old + sigma * theta_fresh, where
theta_fresh is that parameter in a freshly initialised copy of the architecture (so the noise has each
layer's own initialisation scale; multiplicative parameters such as TabM's scalings, initialised at ones, shrink
towards zero like the rest: docs/how-it-works.md). Buffers are the fresh copy's; the optimizer is created anew by
the trainer. warm is lambda=1, sigma=0; cold is the fresh copy itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .network import ArchConfig, build_model


@dataclass(frozen=True)
class Strategy:
    """How a candidate's initial weights are made from the parent's."""

    name: str
    shrink: float  # lambda
    perturb: float  # sigma
    from_parent: bool = True

    def params(self) -> dict[str, float | str]:
        return {"strategy": self.name, "shrink": self.shrink, "perturb": self.perturb}


COLD = Strategy("cold", 0.0, 1.0, from_parent=False)
WARM = Strategy("warm", 1.0, 0.0)


def strategy(name: str, shrink: float, perturb: float) -> Strategy:
    """Return the strategy called NAME; shrink/perturb only apply to shrink_perturb."""
    if name == "cold":
        return COLD
    if name == "warm":
        return WARM
    if name == "shrink_perturb":
        return Strategy("shrink_perturb", shrink, perturb)
    raise ValueError(f"unknown strategy {name!r}: use shrink_perturb, warm or cold")


def shrink_perturb(old: nn.Module, fresh: nn.Module, shrink: float, perturb: float) -> nn.Module:
    """Overwrite FRESH's parameters with shrink*old + perturb*fresh and return FRESH.

    A parameter that grew along its first dimension (an embedding whose vocabulary gained categories)
    blends its old rows and keeps the fresh initialisation for the new rows.
    """
    old_params = dict(old.named_parameters())
    with torch.no_grad():
        for name, p in fresh.named_parameters():
            o = old_params[name].to(p.device, p.dtype)
            if o.shape == p.shape:
                p.copy_(shrink * o + perturb * p)
            elif o.shape[1:] == p.shape[1:] and o.shape[0] <= p.shape[0]:
                p[: o.shape[0]].copy_(shrink * o + perturb * p[: o.shape[0]])
            else:
                raise ValueError(f"parameter {name}: parent shape {tuple(o.shape)} cannot grow into {tuple(p.shape)}")
    return fresh


def initialise(choice: Strategy, arch: ArchConfig, parent: nn.Module | None, seed: int) -> nn.Module:
    """Build a candidate's starting point; without a parent every strategy is a cold start."""
    fresh = build_model(arch, seed)
    if parent is None or not choice.from_parent:
        return fresh
    return shrink_perturb(parent, fresh, choice.shrink, choice.perturb)
