"""rewarm's training loop against a bare torch loop: same model, batch size, optimizer and pre-built tensors.

The bare loop is the minimum a training step needs (shuffle, forward, loss, backward, AdamW step). rewarm's
loop adds what a retrain needs: the warmup-cosine schedule, a validation loss per epoch for early stopping,
a CPU copy of the best weights, loss bookkeeping, and autocast on CUDA. Early stopping is switched off here
so both see the same number of samples.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from rewarm import rounds
from rewarm.config import Settings
from rewarm.models.network import build_model
from rewarm.training import Tensors, autocast, loss_fn, pick_device, train

from .replay import stage
from .run import Options, streams

EPOCHS = 3
REPEATS = 7


def bare_loop(
    model: torch.nn.Module, data: Tensors, task: str, batch_size: int, lr: float, epochs: int, fused: bool | None = None
) -> float:
    """Train with nothing but the essentials (torch's default AdamW, or the fused one); return samples per second."""
    device = data.y.device
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=fused)
    criterion = loss_fn(task)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(data), device=device)
        for start in range(0, len(data), batch_size):
            idx = order[start : start + batch_size]
            with autocast(device):
                loss = criterion(model(data.x_num[idx], data.x_cat[idx]).float(), data.y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(data) / (time.perf_counter() - started)


def rewarm_loop(model: torch.nn.Module, data: rounds.RoundData, settings: Settings, epochs: int) -> float:
    """rewarm's own train(), early stopping off; return samples per second."""
    cfg = settings.train.model_copy(update={"max_epochs": epochs, "patience": epochs + 1})
    result = train(model, data.train, data.val, data.preprocessor.task, cfg)
    return result.samples_seen / result.seconds


def run(settings: Settings, folder: Path, quick: bool = False) -> str:
    """Interleave REPEATS runs of each loop on a real round's tensors (April's retrain: January to April, ~90k
    training rows; February with --quick) and report the median samples/s of each and their ratio."""
    device = pick_device(settings.train.device)
    months = 2 if quick else 4
    staged = stage(streams(settings, Options(months=months, small_rows=None))["monthly"], folder / "snapshots")
    info, frame = staged[-1]
    data = rounds.prepare(settings, info, frame, [i for i, _ in staged[:-1]], None, device)
    ours, bare, fused = [], [], []
    args = (data.train, data.preprocessor.task, settings.train.batch_size, settings.train.lr, EPOCHS)
    for i in range(REPEATS):  # interleaved, so drifts in machine load hit all three alike
        ours.append(rewarm_loop(build_model(data.arch, i), data, settings, EPOCHS))
        bare.append(bare_loop(build_model(data.arch, i), *args))
        fused.append(bare_loop(build_model(data.arch, i), *args, fused=True))
    result = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "rows": len(data.train),
        "batch_size": settings.train.batch_size,
        "epochs": EPOCHS,
        "repeats": REPEATS,
        "rewarm_samples_per_s": ours,
        "bare_samples_per_s": bare,
        "bare_fused_samples_per_s": fused,
        "ratio_of_medians": statistics.median(ours) / statistics.median(bare),
        "ratio_to_fused_bare": statistics.median(ours) / statistics.median(fused),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loop.json").write_text(json.dumps(result, indent=1))
    return (
        f"training loop on {device} ({result['torch_threads']} threads), {len(data.train)} rows, batch "
        f"{settings.train.batch_size}, {EPOCHS} epochs, median of {REPEATS}: rewarm {statistics.median(ours):,.0f} "
        f"samples/s, bare torch {statistics.median(bare):,.0f} samples/s (default AdamW; ratio "
        f"{result['ratio_of_medians']:.3f}), bare torch with fused AdamW {statistics.median(fused):,.0f} samples/s "
        f"(ratio {result['ratio_to_fused_bare']:.3f}) (raw: {folder / 'loop.json'})"
    )
