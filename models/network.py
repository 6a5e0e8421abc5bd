"""The tabular MLP: embeddings for categoricals, concatenated with scaled numerics, through a ReLU stack.

Self-contained (torch only, relative imports; rtdl_num_embeddings for the mlp_periodic architecture, a declared
requirement of such a model): this package is copied into every logged model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild the module before loading a state_dict."""

    n_numeric: int
    cardinalities: tuple[int, ...]  # vocabulary size + 1 (index 0 is the unknown bucket), per column
    embedding_dim: int
    hidden: tuple[int, ...]
    n_outputs: int  # 1 for binary and regression, K for K classes
    architecture: str = "mlp"  # mlp | mlp_periodic (numbers through periodic embeddings first) | pkg.mod:factory
    numeric_embedding: int = 0  # mlp_periodic: the width of each number's embedding
    options: dict = field(default_factory=dict)  # a factory's keyword arguments ([model.options])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> ArchConfig:
        return cls(
            n_numeric=int(raw["n_numeric"]),
            cardinalities=tuple(int(c) for c in raw["cardinalities"]),
            embedding_dim=int(raw["embedding_dim"]),
            hidden=tuple(int(h) for h in raw["hidden"]),
            n_outputs=int(raw["n_outputs"]),
            architecture=str(raw.get("architecture", "mlp")),  # models logged before there was a choice
            numeric_embedding=int(raw.get("numeric_embedding", 0)),
            options=dict(raw.get("options") or {}),
        )


ARCHITECTURES = ("mlp", "mlp_periodic")
N_FREQUENCIES = 16  # periodic embeddings: frequencies per number (rtdl's default is 48; 16 trains 2x faster here)
NUMERIC_EMBEDDING = 8  # periodic embeddings: each number's embedding width


class TabularMLP(nn.Module):
    """MLP over [numeric features (or their periodic embeddings), one embedding per categorical column]."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        if arch.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch.architecture!r}: use one of {', '.join(ARCHITECTURES)}")
        self.arch = arch
        self.embeddings = nn.ModuleList(nn.Embedding(card, arch.embedding_dim) for card in arch.cardinalities)
        numeric_width = arch.n_numeric
        self.numeric: nn.Module | None = None
        if arch.architecture == "mlp_periodic" and arch.n_numeric:
            from rtdl_num_embeddings import PeriodicEmbeddings

            self.numeric = PeriodicEmbeddings(
                arch.n_numeric, arch.numeric_embedding, n_frequencies=N_FREQUENCIES, lite=False
            )
            numeric_width = arch.n_numeric * arch.numeric_embedding
        width = numeric_width + arch.embedding_dim * len(arch.cardinalities)
        layers: list[nn.Module] = []
        for hidden in arch.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, arch.n_outputs))
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal weights for ReLU layers, zero biases, N(0, 1/dim) embeddings."""
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        for emb in self.embeddings:
            nn.init.normal_(emb.weight, std=self.arch.embedding_dim**-0.5)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        # x_num: (B, n_numeric) float, x_cat: (B, n_categorical) int64 -> logits (B, n_outputs)
        numbers = x_num if self.numeric is None else self.numeric(x_num).flatten(1)
        parts = [numbers] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))


def activate(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Turn logits (B, K) into P(positive) (B,), class probabilities (B, K) or regression values (B,)."""
    if task == "binary":
        return torch.sigmoid(logits[:, 0])
    if task == "multiclass":
        return torch.softmax(logits, dim=1)
    return logits[:, 0]


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """The network factory SPEC ('package.module:function') names; a ValueError says what is wrong with it."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(
            f"unknown architecture {spec!r}: use one of {', '.join(ARCHITECTURES)}, or 'package.module:factory'"
        )
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"architecture {spec!r}: cannot import it ({exc}); install the package that holds it") from exc
    if not callable(factory):
        raise ValueError(f"architecture {spec!r} is not callable: it must be a function returning an nn.Module")
    return factory


def build_module(arch: ArchConfig) -> nn.Module:
    """The network ARCH describes: a built-in, or what its factory returns for the data's shape and options.
    Every module carries its ArchConfig as .arch, which rebuilds it."""
    if arch.architecture in ARCHITECTURES:
        return TabularMLP(arch)
    shape = {"n_numeric": arch.n_numeric, "cardinalities": arch.cardinalities, "n_outputs": arch.n_outputs}
    module = load_factory(arch.architecture)(**shape, **arch.options)
    if not isinstance(module, nn.Module):
        raise ValueError(f"architecture {arch.architecture!r} returned {type(module).__name__}, not an nn.Module")
    module.arch = arch
    return module


def build_model(arch: ArchConfig, seed: int) -> nn.Module:
    """Return a freshly initialised model; the same seed gives the same weights, global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_module(arch)
