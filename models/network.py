"""The tabular MLP: embeddings for categoricals, concatenated with scaled numerics, through a ReLU stack.

Self-contained (torch only, relative imports): this package is copied into every logged model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
        )


class TabularMLP(nn.Module):
    """MLP over [numeric features, one embedding per categorical column]."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        self.arch = arch
        self.embeddings = nn.ModuleList(nn.Embedding(card, arch.embedding_dim) for card in arch.cardinalities)
        width = arch.n_numeric + arch.embedding_dim * len(arch.cardinalities)
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
        parts = [x_num] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))


def activate(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Turn logits (B, K) into P(positive) (B,), class probabilities (B, K) or regression values (B,)."""
    if task == "binary":
        return torch.sigmoid(logits[:, 0])
    if task == "multiclass":
        return torch.softmax(logits, dim=1)
    return logits[:, 0]


def build_model(arch: ArchConfig, seed: int) -> TabularMLP:
    """Return a freshly initialised model; the same seed gives the same weights, global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TabularMLP(arch)
