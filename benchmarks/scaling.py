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

from rewarm import rounds
from rewarm.config import DataSection, Settings
from rewarm.models.network import ArchConfig, build_model
from rewarm.models.preprocess import Preprocessor
from rewarm.models.strategies import COLD, initialise, strategy
from rewarm.splits import CURRENT, replay_mask
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


def held_out(spec: DataSection, year: pd.DataFrame, month: np.ndarray) -> np.ndarray:
    """Each row's side of the validation split, drawn by a round's own rule (rounds.validation_rows) with each
    month as a snapshot: with 'tail' (the demo's, through 'auto'), each month's last rows; else a hash of the row."""
    held = np.zeros(len(year), dtype=bool)
    for m in np.unique(month):
        rows = np.flatnonzero(month == m)
        every = np.ones(len(rows), dtype=bool)
        held[rows] = rounds.validation_rows(spec, year.iloc[rows], [len(rows)], every, CURRENT)
    return held


def measure(settings: Settings, frame: pd.DataFrame, parent, val: np.ndarray) -> dict[str, dict]:
    """Train cold and shrink-perturb (from PARENT) on FRAME (VAL: its early-stopping rows); their seconds, epochs
    and samples/s."""
    spec, cfg = settings.data, settings.train
    pre = parent[1]
    device = pick_device(cfg.device)
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
    # the configured [model] (architecture, widths, number bins), built as a bootstrap builds it, on the year
    pre, arch = rounds.preprocessing(settings, year, None)
    torch.manual_seed(0)
    champion = build_model(arch, seed=0)  # the champion of the round before: trained on the first 11 months
    month = df["month"].to_numpy()
    # Every set keeps each row's side of one split of the year. A jittered copy of a row stays on its original's
    # side: a near-duplicate on the other side would let validation loss fall for as long as training memorises.
    held = held_out(spec, year, month)
    first = month < 12
    early, mask = year[first], held[first]
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
    for factor in FACTORS[:2] if quick else FACTORS:
        rows[f"cumulative {factor}x"] = measure(settings, grown(year, factor), parent, np.tile(held, factor))
    recent = month >= 10
    rows["window: last 3 months"] = measure(settings, year[recent], parent, held[recent])
    newest, history = year[month == 12], year[first]
    sample = replay_mask(history, 0.25, 12)  # data.replay_fraction
    replay = pd.concat([newest, history[sample]], ignore_index=True)
    val = np.concatenate([held[month == 12], held[first][sample]])
    rows["replay: newest month + 25% of history"] = measure(settings, replay, parent, val)
    (folder / "scaling.json").write_text(json.dumps(rows, indent=2))
    text = _markdown(rows, describe(arch))
    (folder / "scaling.md").write_text(text)
    return text


def describe(arch: ArchConfig) -> str:
    """The architecture measured, in a few words: 'tabm, 4 members of 32/32, 16 bins'."""
    widths = "/".join(str(h) for h in arch.hidden)
    members = f", {arch.k} members of" if arch.k else ""
    bins = f", {max(len(b) for b in arch.bins) - 1} bins" if arch.bins else ""
    return f"{arch.architecture}{members} {widths}{bins}"


def _markdown(rows: dict[str, dict], architecture: str) -> str:
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
    when = time.strftime("%Y-%m-%d %H:%M")
    return "\n".join(lines) + f"\n\n{architecture}, measured {when} on {pick_device('auto')}\n"
