"""Which rows are held out, which set aside for early stopping, which replayed: decided by row content.

A row's side depends only on its values, never on its position, so a rerun, a reordered file or a repeated row
always lands the same way. Each split draws its own independent number per row (a keyed 64-bit mix of the row's
content hash), so the validation rows are an unbiased share of the non-holdout rows and each round replays a
different sample of history.

Two schemes exist. Scheme 1, the first, used pandas' hash key, which pandas applies to text columns only: on a
frame without text every split drew the same number, so validation came out empty and replay never changed.
Scheme 2 mixes the key in itself and reads every column type the same way (an integer column that turns float when
a null arrives hashes as before; integers beyond 2**53 lose their last digits, as floats do). A model keeps the
scheme of its lineage (it travels in model.json), and a snapshot already kept is always split as its first round
split it, so a rerun (a crash, --force) never trains on the rows that round held out.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from rewarm.models.labels import as_text as _as_text
from rewarm.models.preprocess import numbers

LEGACY, CURRENT = 1, 2  # split schemes: a model made before scheme 2 existed, and every new model
SCHEMES = (LEGACY, CURRENT)
_HOLDOUT_KEY = "rewarm-holdout00"  # 16 characters (pandas' hash key); fixed so that splits never move
_VALIDATION_KEY = "rewarm-validate0"
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row from its values alone: columns by name, numbers (integers, booleans, floats, nullable
    or Arrow-backed) as float64, timestamps as UTC seconds, anything else as its category text."""
    canonical = pd.DataFrame({str(c): _canonical(df[c]) for c in sorted(df.columns, key=str)})
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy(np.uint64)


def _canonical(s: pd.Series) -> pd.Series:
    if (
        pd.api.types.is_datetime64_any_dtype(s.dtype)
        or pd.api.types.is_bool_dtype(s.dtype)
        or (pd.api.types.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype))
    ):
        x = numbers(s) + 0.0  # + 0.0: -0.0 and 0.0 are one value; timestamps as seconds, whatever their unit
        return pd.Series(np.where(np.isnan(x), np.nan, x))  # one NaN bit pattern for every missing number
    return pd.Series(_as_text(s).to_numpy(dtype=object, na_value=None), dtype=object)  # not left to inference


def _key(key: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64 arithmetic wraps)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) & _MASK64


def scores(df: pd.DataFrame, key: str, scheme: int = CURRENT, rows: np.ndarray | None = None) -> np.ndarray:
    """A number in [0, 1) per row, from its content and KEY; different keys give independent numbers
    (scheme 2). ROWS: precomputed row_hashes(df)."""
    if scheme != CURRENT:
        raise ValueError(f"unknown split scheme {scheme}; this rewarm knows {SCHEMES}")
    rows = row_hashes(df) if rows is None else rows
    with np.errstate(over="ignore"):
        mixed = _mix(rows ^ _key(key))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)


def in_split(df: pd.DataFrame, fraction: float, key: str, scheme: int = CURRENT) -> np.ndarray:
    """Deterministic membership by row content: the same row always lands on the same side."""
    if scheme == LEGACY:  # exactly as models made before scheme 2 drew it
        legacy = pd.util.hash_pandas_object(df, index=False, hash_key=key).to_numpy()
        return (legacy % np.uint64(1_000_000)) < np.uint64(round(fraction * 1_000_000))
    return scores(df, key, scheme) < fraction


def holdout_mask(
    df: pd.DataFrame, fraction: float, split: str = "hash", scheme: int = CURRENT, target: str | None = None
) -> np.ndarray:
    """Rows of the newest snapshot kept out of training and used to score every model.

    With TARGET (a classification target, scheme 2), FRACTION of each class is held out, at least one row of any
    class with two or more, so that a small snapshot's holdout still holds every class it can.
    """
    if split == "tail":
        return np.arange(len(df)) >= len(df) - round(fraction * len(df))
    if scheme == LEGACY:
        return in_split(df, fraction, _HOLDOUT_KEY, scheme)
    score = scores(df, _HOLDOUT_KEY, scheme)
    if target is None:
        return at_least_one(score, fraction)
    held = np.zeros(len(df), dtype=bool)
    for members in pd.Series(np.arange(len(df))).groupby(_as_text(df[target]).to_numpy(), dropna=False).groups.values():
        idx = np.asarray(members)
        held[idx] = _lowest(score[idx], fraction)
    return held


def _lowest(score: np.ndarray, fraction: float) -> np.ndarray:
    """Rows by lowest score, as close to FRACTION of them as whole groups of identical rows (equal scores) allow:
    a group is taken when it brings the count closer to the share. Never every row; none if all are identical."""
    values, counts = np.unique(score, return_counts=True)  # sorted; one entry per distinct row
    if len(values) < 2:
        return np.zeros(len(score), dtype=bool)
    want = max(1.0, fraction * len(score))
    if (counts == 1).all():  # the usual case: distinct rows, the lowest ones
        take = np.zeros(len(values), dtype=bool)
        take[: min(len(values) - 1, round(want))] = True
    else:
        take, total = np.zeros(len(values), dtype=bool), 0
        for i, count in enumerate(counts):
            if abs(total + count - want) < abs(total - want) and total + count < len(score):
                take[i], total = True, total + count
        if not take.any():
            take[int(np.argmin(counts))] = True  # the smallest group: a holdout must hold something
    return np.isin(score, values[take])


def replay_mask(df: pd.DataFrame, fraction: float, round_: int, scheme: int = CURRENT) -> np.ndarray:
    """Rows of an earlier snapshot that round ROUND_ replays: FRACTION of them by row content, another
    sample each round (so that, over rounds, all of history is revisited); the same sample on a rerun."""
    return in_split(df, fraction, f"replay{round_:010d}", scheme)


def warm_replay_mask(df: pd.DataFrame, fraction: float, round_: int, scheme: int = CURRENT) -> np.ndarray:
    """Rows of earlier snapshots that round ROUND_'s warm-started candidates train on (train.warm_replay_fraction),
    drawn independently of replay_mask, another sample each round."""
    return in_split(df, fraction, f"warm{round_:012d}", scheme)  # 16 bytes: scheme 1's hash key length


def validation_mask(df: pd.DataFrame, fraction: float, scheme: int = CURRENT) -> np.ndarray:
    """Training rows set aside for early stopping, by content (data.validation_split 'hash')."""
    if scheme == LEGACY:
        return in_split(df, fraction, _VALIDATION_KEY, scheme)
    return at_least_one(scores(df, _VALIDATION_KEY, scheme), fraction)


def at_least_one(score: np.ndarray, fraction: float) -> np.ndarray:
    """The rows whose SCORE is below FRACTION, or where that is none (a snapshot of a few rows: each row is drawn
    alone), the lowest-scoring row and its identical copies, unless those are every row. Only a split that would
    have left a round without holdout or validation rows changes, so no split a round could use before moves."""
    mask = score < fraction
    if mask.any() or fraction <= 0 or len(score) < 2:
        return mask
    lowest = score == score.min()
    return mask if lowest.all() else lowest


def tail_validation_mask(sizes: list[int], fraction: float) -> np.ndarray:
    """Training rows set aside for early stopping when snapshots are in time order (data.validation_split 'tail'):
    the last FRACTION of each snapshot's rows (SIZES, oldest first, as they are concatenated), at least one row of
    any snapshot with two or more, never all of one."""
    masks = [np.arange(n) >= n - min(n - 1, max(1, round(fraction * n))) if n > 1 else np.zeros(n, bool) for n in sizes]
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
