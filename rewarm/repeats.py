"""Telling a file landed twice over from data whose rows repeat by nature.

Real tables repeat rows: two flights on one route in one hour, the same answers to a short survey, and in
low-cardinality categorical data nearly every row. What a duplicate check is for is a copying accident, and
copies leave traces that natural repeats do not:

- the same bytes again: caught by the content hash before this module runs;
- a file concatenated with itself: its rows are k >= 2 copies of one block, or every distinct row occurs a
  multiple of k times;
- a file that is mostly an earlier snapshot again (a re-export, a cumulative dump): long runs of rows in the
  same order as in that snapshot, or exactly its rows in another order.

Runs are compared as 8-row shingles (hashes of 8 consecutive rows). Only shingles of at least 6 distinct rows
count, so data that arrives sorted, where a run of identical rows is natural, never looks copied. Each kept
snapshot records a row sketch: the digest of its sorted row hashes and a content-defined sample of at most
about 512 shingles, so no earlier file is read again to check a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from math import gcd

import numpy as np
import pandas as pd

from rewarm.splits import row_hashes

SHINGLE = 8  # rows per shingle: natural data almost never repeats 8 rows in order
MIN_DISTINCT = 6  # distinct rows a shingle needs to count (sorted data repeats identical rows by nature)
SAMPLE = 512  # shingles a row sketch keeps, about
MIN_DISTINCT_ROWS = 20  # below this many distinct rows, equal multiplicities can happen by chance


@dataclass(frozen=True)
class RowSketch:
    """What a kept snapshot records for later comparisons."""

    rows_digest: str  # SHA-256 of the sorted row hashes: the same rows, whatever their order
    modulus: int  # shingles whose hash is a multiple of this are sampled (a power of two)
    shingles: tuple[str, ...]  # the sampled shingle hashes, hex


def shingles(rows: np.ndarray) -> np.ndarray:
    """Hashes of every run of SHINGLE consecutive row hashes that holds at least MIN_DISTINCT distinct rows."""
    if len(rows) < SHINGLE:
        return np.zeros(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(rows, SHINGLE)  # (n - 7, 8)
    ordered = np.sort(windows, axis=1)
    distinct = 1 + (np.diff(ordered, axis=1) != 0).sum(axis=1)
    weights = np.uint64(0x9E3779B97F4A7C15) ** np.arange(1, SHINGLE + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        combined = (windows * weights).sum(axis=1, dtype=np.uint64)  # order matters: a polynomial hash
    return combined[distinct >= MIN_DISTINCT]


def sketch(rows: np.ndarray) -> RowSketch:
    """The row sketch of a snapshot whose row hashes are ROWS."""
    digest = hashlib.sha256(np.sort(rows).tobytes()).hexdigest()
    modulus = 1
    while len(rows) / modulus > SAMPLE:
        modulus *= 2
    found = shingles(rows)
    kept = np.unique(found[found % np.uint64(modulus) == 0])
    return RowSketch(digest, modulus, tuple(f"{int(v):016x}" for v in kept))


def repeats_itself(rows: np.ndarray) -> str | None:
    """Why ROWS look like one file concatenated with itself, or None."""
    n = len(rows)
    for k in range(2, 11):
        block = rows[: n // k]
        if n % k == 0 and len(np.unique(block)) > 1 and (rows.reshape(k, n // k) == block).all():
            return f"its {n} rows are {k} copies of the first {n // k} in order"
    _, counts = np.unique(rows, return_counts=True)
    common = gcd(*counts.tolist()) if len(counts) else 1
    if common >= 2 and len(counts) >= MIN_DISTINCT_ROWS:
        return f"each of its {len(counts)} distinct rows occurs a multiple of {common} times"
    found = shingles(rows)
    if len(found) >= 2 * SHINGLE:
        values, counts = np.unique(found, return_counts=True)
        share = counts[counts > 1].sum() / len(found)
        if share > 0.5:
            return f"{share:.0%} of its runs of {SHINGLE} rows occur more than once in it, in the same order"
    return None


def share_copied(found: np.ndarray, earlier: RowSketch) -> float | None:
    """The share of FOUND (a snapshot's shingles) sampled by EARLIER's rule that EARLIER holds, an estimate of the
    share of the snapshot repeating it in order; None when too few are sampled to judge."""
    sampled = found[found % np.uint64(earlier.modulus) == 0]
    if len(sampled) < 10:
        return None
    known = np.array([int(h, 16) for h in earlier.shingles], dtype=np.uint64)
    return float(np.isin(sampled, known).mean())


def frame_rows(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Row hashes of COLUMNS (those present), in file order."""
    return row_hashes(df[[c for c in columns if c in df.columns]])


def to_json(fp: RowSketch) -> bytes:
    return json.dumps({"rows_digest": fp.rows_digest, "modulus": fp.modulus, "shingles": list(fp.shingles)}).encode()


def from_json(raw: bytes) -> RowSketch:
    found = json.loads(raw)
    return RowSketch(found["rows_digest"], int(found["modulus"]), tuple(found["shingles"]))
