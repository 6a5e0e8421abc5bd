"""The training loop: pre-built tensors on the device, AdamW with warmup+cosine, early stopping."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rewarm import locations, metrics
from rewarm.config import TrainSection
from rewarm.models.network import activate
from rewarm.models.preprocess import Preprocessor


@dataclass(frozen=True)
class Tensors:
    """One split's features and labels, already on the training device."""

    x_num: torch.Tensor  # (N, n_numeric) float32
    x_cat: torch.Tensor  # (N, n_categorical) int64
    y: torch.Tensor  # (N,) int64 class index, or float32 standardised target

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def build(cls, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray, device: torch.device) -> Tensors:
        """Move numpy arrays to DEVICE once; the loop only slices them."""
        return cls(*(torch.tensor(a, device=device) for a in (x_num, x_cat, y)))


@dataclass
class TrainResult:
    """What one strategy's training did; state_dict is the best epoch's, on the CPU."""

    state_dict: dict[str, torch.Tensor]
    epochs: int
    best_epoch: int
    samples_seen: int
    seconds: float
    train_loss: list[float] = field(default_factory=list)  # per epoch
    val_loss: list[float] = field(default_factory=list)  # per epoch
    resumed_at: int = 0  # the epoch a checkpoint brought this training back to (0: started fresh)


log = logging.getLogger("rewarm.training")


@dataclass(frozen=True)
class Checkpoint:
    """An epoch checkpoint: everything train() needs to go on where a killed process stopped.

    KEY names what the training depends on (snapshot, strategy, parent, settings, data sizes); a file
    written under another key is not resumed from. Written under a temporary name and renamed, so a kill
    mid-write leaves the previous epoch's file; loaded with weights_only=True (tensors and plain values).
    """

    path: Path
    key: str

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn or foreign file: start over rather than fail
            log.warning("checkpoint %s unreadable (%s); training from the start", self.path, exc)
            return None
        return state if isinstance(state, dict) and state.get("key") == self.key else None

    def save(self, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save({**state, "key": self.key}, buffer)
        locations.write_atomic(str(self.path), buffer.getvalue())


def pick_device(preference: str = "auto") -> torch.device:
    """Return CUDA when present (or asked for), else the CPU."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def loss_fn(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return the training loss for TASK, taking (logits (B, K), y (B,))."""
    if task == "binary":
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits[:, 0], y.float())
    if task == "multiclass":
        return F.cross_entropy
    return lambda out, y: F.mse_loss(out[:, 0], y)


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warmup from ~0, then cosine decay to 0 over the budget."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; a disabled context on the CPU, so there is one code path."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.inference_mode()
def evaluate_loss(model: nn.Module, data: Tensors, task: str, batch_size: int = 65536) -> float:
    """Mean loss over DATA in large batches."""
    model.eval()
    criterion, total = loss_fn(task), 0.0
    with autocast(data.y.device):
        for start in range(0, len(data), batch_size):
            sl = slice(start, start + batch_size)
            total += float(criterion(model(data.x_num[sl], data.x_cat[sl]).float(), data.y[sl])) * len(data.y[sl])
    return total / max(1, len(data))


@torch.no_grad()
def predict(model: nn.Module, x_num: torch.Tensor, x_cat: torch.Tensor, task: str) -> np.ndarray:
    """Model outputs as numpy: P(positive) (N,), class probabilities (N, K) or raw regression (N,)."""
    model.eval()
    with autocast(x_num.device):
        out = model(x_num, x_cat).float()
    return activate(out, task).cpu().numpy()


def score_holdout(model: nn.Module, holdout: Tensors, y: np.ndarray, pre: Preprocessor) -> tuple[np.ndarray, dict]:
    """Predict the holdout and compute every metric of the task, on the scale of Y (target units for regression)."""
    outputs = pre.metric_outputs(predict(model, holdout.x_num, holdout.x_cat, pre.task))
    return outputs, metrics.score(pre.task, y, outputs)


def train(
    model: nn.Module,
    train_set: Tensors,
    val_set: Tensors,
    task: str,
    cfg: TrainSection,
    on_epoch: Callable[[int, float, float], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Train MODEL in place until validation loss stops improving or the epoch budget runs out.

    With CHECKPOINT, the state is saved after every epoch and a saved state is resumed from (a finished
    training is not run again).
    """
    device = train_set.y.device
    model.to(device)
    batch_size = effective_batch_size(len(train_set), cfg.batch_size)
    steps_per_epoch = math.ceil(len(train_set) / batch_size)
    # The fused AdamW kernel (CPU and CUDA) took 8-18% off a CPU training step here against the default.
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    # The schedule is a plain list written into the optimizer, without LambdaLR's per-step bookkeeping.
    factor = warmup_cosine(cfg.max_epochs * steps_per_epoch, cfg.warmup_fraction)
    lrs = [cfg.lr * factor(k) for k in range(cfg.max_epochs * steps_per_epoch)]
    group, step = optimizer.param_groups[0], 0
    criterion = loss_fn(task)
    shuffle = torch.Generator(device=device).manual_seed(cfg.seed)
    result = TrainResult(state_dict={}, epochs=0, best_epoch=0, samples_seen=0, seconds=0.0)
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        shuffle.set_state(saved["shuffle"].to(shuffle.get_state().device))
        step, best = saved["step"], (saved["best_loss"], saved["best_epoch"], saved["best_state"])
        result.train_loss, result.val_loss = list(saved["train_loss"]), list(saved["val_loss"])
        result.epochs, result.samples_seen, result.resumed_at = saved["epoch"], saved["samples_seen"], saved["epoch"]
        log.info("resuming from the checkpoint of epoch %d (%s)", saved["epoch"], checkpoint.path)
    else:
        best = (evaluate_loss(model, val_set, task), 0, _cpu_copy(model))  # (loss, epoch, state)
    done = bool(saved and saved["done"])
    earlier = float(saved["seconds"]) if saved else 0.0
    started = time.perf_counter()
    for epoch in range(result.epochs + 1, 0 if done else cfg.max_epochs + 1):
        model.train()
        order = torch.randperm(len(train_set), generator=shuffle, device=device)
        running = torch.zeros((), device=device)  # summed on-device: no host sync per step
        for start in range(0, len(train_set), batch_size):
            idx = order[start : start + batch_size]
            with autocast(device):
                loss = criterion(model(train_set.x_num[idx], train_set.x_cat[idx]).float(), train_set.y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            group["lr"] = lrs[step]
            optimizer.step()
            step += 1
            running.add_(loss.detach(), alpha=len(idx))
        val = evaluate_loss(model, val_set, task)
        result.train_loss.append(float(running) / len(train_set))
        result.val_loss.append(val)
        result.epochs, result.samples_seen = epoch, result.samples_seen + len(train_set)
        if on_epoch is not None:
            on_epoch(epoch, result.train_loss[-1], val)
        if val < best[0] - 1e-4:
            best = (val, epoch, _cpu_copy(model))
        stop = epoch - best[1] >= cfg.patience or epoch == cfg.max_epochs
        if checkpoint is not None:
            state = {"model": _cpu_copy(model), "optimizer": optimizer.state_dict(), "shuffle": shuffle.get_state()}
            checkpoint.save(
                state
                | {"epoch": epoch, "step": step, "done": stop, "seconds": earlier + time.perf_counter() - started}
                | {
                    "best_loss": best[0],
                    "best_epoch": best[1],
                    "best_state": best[2],
                    "samples_seen": result.samples_seen,
                }
                | {"train_loss": result.train_loss, "val_loss": result.val_loss}
            )
        if stop:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    result.seconds = earlier + time.perf_counter() - started
    result.best_epoch, result.state_dict = best[1], best[2]
    model.load_state_dict(best[2])
    return result


MIN_STEPS_PER_EPOCH = 16  # a small training set still takes this many optimizer steps an epoch
MIN_BATCH = 32


def effective_batch_size(rows: int, batch_size: int) -> int:
    """train.batch_size, made smaller for a small training set so that an epoch takes at least
    MIN_STEPS_PER_EPOCH steps (never below MIN_BATCH): at 300 rows, batch 1024 would be one step an epoch."""
    return max(1, min(batch_size, max(MIN_BATCH, math.ceil(rows / MIN_STEPS_PER_EPOCH))))


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
