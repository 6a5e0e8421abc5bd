"""The tabular networks: embeddings for categoricals, concatenated with scaled numerics (or their embeddings),
through a ReLU stack (mlp, mlp_periodic, mlp_plr) or a parameter-efficient ensemble of k such stacks (tabm).

Self-contained (torch only, relative imports; rtdl_num_embeddings and tabm for the architectures that use them,
declared requirements of such a model): this package is copied into every logged model.
"""

from __future__ import annotations

import importlib
import warnings
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
    k: int = 0  # tabm: the ensemble's members (its outputs are (batch, k, n_outputs)); 0 for one network
    bins: tuple[tuple[float, ...], ...] = ()  # mlp_plr, tabm: each number's bin edges, fitted on the first data

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
            k=int(raw.get("k", 0)),
            bins=tuple(tuple(float(e) for e in edges) for edges in raw.get("bins", ())),
        )


ARCHITECTURES = ("mlp", "mlp_periodic", "mlp_plr", "tabm")
BINNED = ("mlp_plr", "tabm")  # the architectures whose numbers go through piecewise-linear embeddings
N_FREQUENCIES = 16  # periodic embeddings: frequencies per number (rtdl's default is 48; 16 trains 2x faster here)
N_BINS = 16  # piecewise-linear embeddings: quantile bins per number ([model] numeric_bins)
BIN_ROWS = 100_000  # the bins are fitted on at most this many training rows (a seeded sample)
NUMERIC_EMBEDDING = 8  # periodic and piecewise-linear embeddings: each number's embedding width


def numeric_embedding(arch: ArchConfig) -> tuple[nn.Module | None, int]:
    """The module numbers go through before the network, and the width it gives each number (1: as they are)."""
    if arch.n_numeric == 0 or arch.architecture == "mlp" or arch.numeric_embedding == 0:
        return None, 1
    import rtdl_num_embeddings as rtdl

    if arch.architecture == "mlp_periodic":
        module = rtdl.PeriodicEmbeddings(
            arch.n_numeric, arch.numeric_embedding, n_frequencies=N_FREQUENCIES, lite=False
        )
    else:  # version B starts as a plain linear embedding and learns the piecewise part (Gorishniy et al. 2024)
        if len(arch.bins) != arch.n_numeric:
            raise ValueError(f"{arch.architecture}: {len(arch.bins)} bin edge lists for {arch.n_numeric} numbers")
        edges = [torch.tensor(e, dtype=torch.float32) for e in arch.bins]
        with warnings.catch_warnings():  # a number with two values has one bin: a linear embedding, as meant
            warnings.filterwarnings("ignore", message=".*has just two bin edges")
            module = rtdl.PiecewiseLinearEmbeddings(
                edges, arch.numeric_embedding, activation=arch.architecture == "mlp_plr", version="B"
            )
    return module, arch.numeric_embedding


def fit_bins(x_num: torch.Tensor, n_bins: int = N_BINS, seed: int = 0) -> tuple[tuple[float, ...], ...]:
    """Each number's piecewise-linear bin edges: N_BINS (2 or more) of rtdl's quantile bins over (a sample of) the
    training rows. A column with one distinct value gets one bin around it, and few rows get fewer bins."""
    import rtdl_num_embeddings as rtdl

    if len(x_num) > BIN_ROWS:
        x_num = x_num[torch.randperm(len(x_num), generator=torch.Generator().manual_seed(seed))[:BIN_ROWS]]
    edges = []
    for column in x_num.float().T:
        distinct = column.unique()
        if distinct.numel() < 3:  # rtdl's quantile bins need 2 bins and 2 distinct values: one bin spans them
            lo, hi = (float(distinct.min()), float(distinct.max())) if distinct.numel() else (0.0, 0.0)
            margin = max(1.0, abs(lo) * 1e-3)  # wide enough to stay apart in float32
            edges.append((lo - margin, hi + margin) if lo == hi else (lo, hi))
            continue
        with warnings.catch_warnings():  # a number with few values may get one bin: a linear embedding, as meant
            warnings.filterwarnings("ignore", message=".*has just two bin edges")
            (found,) = rtdl.compute_bins(column[:, None], n_bins=min(n_bins, distinct.numel(), len(column) - 1))
        edges.append(tuple(found.tolist()))
    return tuple(edges)


class TabularMLP(nn.Module):
    """MLP over [numeric features (or their periodic embeddings), one embedding per categorical column]."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        if arch.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch.architecture!r}: use one of {', '.join(ARCHITECTURES)}")
        self.arch = arch
        self.embeddings = nn.ModuleList(nn.Embedding(card, arch.embedding_dim) for card in arch.cardinalities)
        self.numeric, per_number = numeric_embedding(arch)
        width = arch.n_numeric * per_number + arch.embedding_dim * len(arch.cardinalities)
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


class TabularTabM(nn.Module):
    """TabM (Gorishniy, Kotelnikov, Babenko, ICLR 2025): k MLPs sharing their weights, each with its own
    BatchEnsemble scalings and output layer; forward returns (B, k, n_outputs). Categories go through rewarm's own
    embeddings (one per column, which grow by appending rows), not tabm's one-hot encoding, whose width would grow
    along a dimension shrink-perturb cannot grow."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        import tabm

        if arch.k < 1:
            raise ValueError(f"tabm needs k >= 1 ensemble members, not {arch.k}")
        self.arch = arch
        self.embeddings = nn.ModuleList(nn.Embedding(card, arch.embedding_dim) for card in arch.cardinalities)
        self.numeric, per_number = numeric_embedding(arch)
        chunks = [per_number] * arch.n_numeric + [arch.embedding_dim] * len(arch.cardinalities)
        layers: list[nn.Module] = []
        width = sum(chunks)
        for i, hidden in enumerate(arch.hidden):  # TabM's init: random first scalings by feature, then ones
            scaling = ("normal" if self.numeric is not None else "random-signs", "ones") if i == 0 else "ones"
            first = chunks if i == 0 else None
            layers += [
                tabm.LinearBatchEnsemble(width, hidden, k=arch.k, scaling_init=scaling, first_scaling_init_chunks=first)
            ]
            layers += [nn.ReLU()]
            width = hidden
        self.backbone = nn.Sequential(*layers)
        self.output = tabm.LinearEnsemble(width, arch.n_outputs, k=arch.k)
        for emb in self.embeddings:
            nn.init.normal_(emb.weight, std=arch.embedding_dim**-0.5)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        # x_num: (B, n_numeric), x_cat: (B, n_categorical) -> logits (B, k, n_outputs)
        numbers = x_num if self.numeric is None else self.numeric(x_num).flatten(1)
        x = torch.cat([numbers] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)
        return self.output(self.backbone[1:](_first_layer(self.backbone[0], x)))


def _first_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """tabm's LinearBatchEnsemble on an input all k members share, (B, D) -> (B, k, H): ((x * r_i) @ W.T) * s_i + b_i
    computed as x @ [r_1 * W.T, ..., r_k * W.T], the same sum over the same parameters (up to rounding) without
    copying the rows k times (a CPU training epoch 1.4x faster here: docs/benchmarks.md)."""
    k, hidden = layer.r.shape[0], layer.weight.shape[0]  # r: (k, D), weight: (H, D), s and bias: (k, H)
    folded = (layer.r.unsqueeze(-1) * layer.weight.T).transpose(0, 1).reshape(x.shape[1], k * hidden)  # (D, k*H)
    return (x @ folded).view(-1, k, hidden) * layer.s + layer.bias


def every_member(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An ensemble's outputs (B, k, K) and targets (B,) as B*k rows, each member with its own copy of the row's
    target (one network's (B, K) pass through), so a loss over them is the mean of the members' losses."""
    if out.ndim == 3:
        return out.flatten(0, 1), y.repeat_interleave(out.shape[1])
    return out, y


def ensemble_logits(out: torch.Tensor, task: str) -> torch.Tensor:
    """An ensemble's outputs (B, k, K) as one model's logits (B, K) whose activation is the mean of the members'
    (probabilities averaged, as TabM scores and serves); (B, K) outputs pass through."""
    if out.ndim == 2:
        return out
    if task == "binary":
        p = torch.sigmoid(out[..., 0]).mean(1).clamp(1e-7, 1 - 1e-7)
        return (torch.log(p) - torch.log1p(-p))[:, None]
    if task == "multiclass":
        return torch.log(torch.softmax(out, dim=2).mean(1).clamp_min(1e-12))
    return out.mean(1)


def activate(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Turn logits (B, K) into P(positive) (B,), class probabilities (B, K) or regression values (B,); an
    ensemble's (B, k, K) into the mean of its members'."""
    if logits.ndim == 3:
        return activate_members(logits, task).mean(1)
    if task == "binary":
        return torch.sigmoid(logits[:, 0])
    if task == "multiclass":
        return torch.softmax(logits, dim=1)
    return logits[:, 0]


def activate_members(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Each member's activation, (B, k) or (B, k, K), from an ensemble's logits (B, k, K)."""
    if task == "binary":
        return torch.sigmoid(logits[..., 0])
    if task == "multiclass":
        return torch.softmax(logits, dim=2)
    return logits[..., 0]


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
    if arch.architecture == "tabm":
        return TabularTabM(arch)
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
