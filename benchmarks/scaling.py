"""How a retrain's cost grows with cumulative data: the demo's training rows at 1x, 2x and 4x, cold and
shrink-perturb, and the two ways to cap it (a window of recent snapshots, replay sampling of history).

The 2x and 4x tables are the demo's year repeated with a little noise on the weather columns (so no row
repeats exactly); what is measured is time, epochs and throughput, not accuracy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewarm.config import Settings
from rewarm.models.network import ArchConfig, build_model
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import COLD, initialise, strategy
from rewarm.splits import replay_mask, validation_mask
from rewarm.training import Tensors, pick_device, train

FACTORS = (1, 2, 4)


def grown(year: pd.DataFrame, factor: int, seed: int = 0) -> pd.DataFrame:
    """FACTOR copies of the year, the weather of each extra copy jittered by about 1% of its spread."""
    rng = np.random.default_rng(seed)
    parts = [year]
    for _ in range(factor - 1):
        copy = year.copy()
        for col in [c for c in ("temp", "dewp", "humid", "wind_speed", "pressure") if c in year]:
            copy[col] = copy[col] + rng.normal(0, 0.01 * float(year[col].std()), len(copy))
        parts.append(copy)
    return pd.concat(parts, ignore_index=True)


def _tensors(pre: Preprocessor, frame: pd.DataFrame, target: str, device: torch.device) -> Tensors:
    x_num, x_cat = pre.features(frame)
    return Tensors.build(x_num, x_cat, pre.labels(frame[target]), device)


def measure(settings: Settings, frame: pd.DataFrame, parent, val: np.ndarray | None = None) -> dict[str, dict]:
    """Train cold and shrink-perturb (from PARENT) on FRAME (VAL: its early-stopping rows, by default hashed
    out of it); their seconds, epochs and samples/s."""
    spec, cfg = settings.data, settings.train
    pre = parent[1]
    device = pick_device(cfg.device)
    val = validation_mask(frame, spec.validation_fraction) if val is None else val
    train_set = _tensors(pre, frame[~val], spec.target, device)
    val_set = _tensors(pre, frame[val], spec.target, device)
    out = {}
    for choice in (COLD, strategy("shrink_perturb", cfg.shrink, cfg.perturb)):
        model = initialise(choice, parent[2], parent[0], cfg.seed)
        result = train(model, train_set, val_set, pre.task, cfg)
        out[choice.name] = {
            "rows": len(train_set),
            "seconds": result.seconds,
            "epochs": result.epochs,
            "samples_per_s": result.samples_seen / result.seconds,
        }
    return out


def run(settings: Settings, folder: Path, quick: bool = False) -> str:
    """Measure at 1x, 2x and 4x (1x and 2x with --quick), a 3-month window and a 25% replay sample; write
    scaling.json and scaling.md under FOLDER and return the Markdown."""
    from rewarm.demo_data import flights

    folder.mkdir(parents=True, exist_ok=True)
    df = flights()
    spec = settings.data
    columns = [spec.target, *spec.numeric, *spec.categorical]
    year = df[columns].reset_index(drop=True)
    pre = Preprocessor.fit(year, spec.task, spec.target, list(spec.numeric), list(spec.categorical))
    m = settings.model
    arch = ArchConfig(len(pre.numeric), pre.cardinalities, m.embedding_dim, tuple(m.hidden), pre.n_outputs)
    torch.manual_seed(0)
    champion = build_model(arch, seed=0)  # the champion of the round before: trained on the first 11 months
    first = df["month"] < 12
    early = year[first.to_numpy()]
    mask = validation_mask(early, spec.validation_fraction)
    device = pick_device(settings.train.device)
    train(
        champion,
        _tensors(pre, early[~mask], spec.target, device),
        _tensors(pre, early[mask], spec.target, device),
        pre.task,
        settings.train,
    )
    parent = (champion.cpu(), pre, arch)
    rows: dict[str, dict] = {}
    # A jittered copy of a row stays on its original's side of the validation split: a near-duplicate on the
    # other side would let validation loss fall for as long as training memorises, and no run would stop early.
    held = validation_mask(year, spec.validation_fraction)
    for factor in FACTORS[:2] if quick else FACTORS:
        rows[f"cumulative {factor}x"] = measure(settings, grown(year, factor), parent, np.tile(held, factor))
    recent = df["month"] >= 10
    rows["window: last 3 months"] = measure(settings, year[recent.to_numpy()], parent)
    newest, history = year[(df["month"] == 12).to_numpy()], year[(df["month"] < 12).to_numpy()]
    replay = pd.concat([newest, history[replay_mask(history, 0.25, 12)]], ignore_index=True)  # data.replay_fraction
    rows["replay: newest month + 25% of history"] = measure(settings, replay, parent)
    (folder / "scaling.json").write_text(json.dumps(rows, indent=2))
    text = _markdown(rows)
    (folder / "scaling.md").write_text(text)
    return text


def _markdown(rows: dict[str, dict]) -> str:
    lines = [
        "| training set | rows | cold: s (epochs) | shrink-perturb: s (epochs) | SP / cold | cold s/epoch "
        "| samples/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        cold, sp = r["cold"], r["shrink_perturb"]
        lines.append(
            f"| {name} | {cold['rows']:,} | {cold['seconds']:.1f} ({cold['epochs']}) | "
            f"{sp['seconds']:.1f} ({sp['epochs']}) | {sp['seconds'] / cold['seconds']:.2f} | "
            f"{cold['seconds'] / cold['epochs']:.2f} | {cold['samples_per_s'] / 1000:.0f}k |"
        )
    return "\n".join(lines) + f"\n\nmeasured {time.strftime('%Y-%m-%d %H:%M')} on {pick_device('auto')}\n"
