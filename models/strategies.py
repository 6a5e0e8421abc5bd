"""Warm-start strategies, as in Ash & Adams' reference implementation.

shrink_perturb(lambda, sigma): every parameter becomes lambda * theta_old + sigma * theta_fresh, where
theta_fresh is that parameter in a freshly initialised copy of the architecture (so the noise has each
layer's own initialisation scale; multiplicative parameters such as TabM's scalings, initialised at ones, shrink
towards zero like the rest: docs/how-it-works.md). Buffers are the fresh copy's; the optimizer is created anew by
the trainer. warm is lambda=1, sigma=0; cold is the fresh copy itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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

    A parameter that grew (an embedding whose vocabulary gained categories, along its first dimension; an output
    layer whose target gained classes, along whichever dimension indexes them) blends the old values in its leading
    slice, where appending keeps them, and keeps the fresh initialisation for the new entries.
    """
    arches = getattr(old, "arch", None), getattr(fresh, "arch", None)
    _check_growth(*arches)
    outputs = (arches[0].n_outputs, arches[1].n_outputs) if None not in arches else None
    old_params = dict(old.named_parameters())
    with torch.no_grad():
        for name, p in fresh.named_parameters():
            o = old_params[name].to(p.device, p.dtype)
            if o.shape == p.shape:
                p.copy_(shrink * o + perturb * p)
            elif _appended(o.shape, p.shape, outputs):
                kept = tuple(slice(0, n) for n in o.shape)
                p[kept].copy_(shrink * o + perturb * p[kept])
            else:
                raise ValueError(f"parameter {name}: parent shape {tuple(o.shape)} cannot grow into {tuple(p.shape)}")
    return fresh


def _appended(old: torch.Size, new: torch.Size, outputs: tuple[int, int] | None) -> bool:
    """Did a parameter grow by appending: along its first dimension (an embedding's rows, a linear layer's outputs),
    or along its last where that indexes the classes (OUTPUTS: the parent's and the candidate's class counts; an
    ensemble's output layer is (k, in, classes))? Growth elsewhere (a one-hot input whose categories sit between
    other columns) would misalign what the old values mean."""
    if len(old) != len(new) or any(a > b for a, b in zip(old, new, strict=True)):
        return False
    grown = [d for d, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    if grown == [0]:
        return True
    last = len(new) - 1
    return outputs is not None and grown == [last] and (old[last], new[last]) == outputs


def _check_growth(old: ArchConfig | None, new: ArchConfig | None) -> None:
    """Only vocabularies and a multiclass target's classes grow between a parent and its candidates; any other
    change of shape (a width, an embedding size) is not a parent this network can start from."""
    if old is None or new is None:
        return
    grown = replace(old, cardinalities=new.cardinalities, n_outputs=new.n_outputs)
    shrunk = len(old.cardinalities) != len(new.cardinalities) or new.n_outputs < old.n_outputs
    shrunk = shrunk or any(b < a for a, b in zip(old.cardinalities, new.cardinalities, strict=False))
    if grown != new or shrunk:
        raise ValueError(
            f"the parent's architecture cannot grow into this one: only vocabularies and classes grow "
            f"(parent {old}, candidate {new})"
        )


def initialise(choice: Strategy, arch: ArchConfig, parent: nn.Module | None, seed: int) -> nn.Module:
    """Build a candidate's starting point; without a parent every strategy is a cold start."""
    fresh = build_model(arch, seed)
    if parent is None or not choice.from_parent:
        return fresh
    return shrink_perturb(parent, fresh, choice.shrink, choice.perturb)
