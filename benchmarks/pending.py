"""Finding pending snapshots, with and without the fingerprint cache: `python -m rewarm.benchmarks.pending`.

Lands 5,000 CSV snapshots of 2-100 KB (sizes log-uniform, so most are small, as daily extracts are) in a
temporary folder, then times three ways of finding the pending ones, each over the whole folder:

- `hash all`: list the folder, then read and hash every file, as rewarm did before the cache;
- `cold`: ledger.pending with the cache deleted first (every file hashed, the cache written);
- `warm`: ledger.pending with the cache the pass before left (only the listing and the cache file read).

Then it lands a few large files beside them and times the three again. The files were just written, so they
are in the OS page cache: `hash all` and `cold` read memory, not disk, and are a lower bound on what they cost
over a disk or an object store.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rewarm import fingerprints, landing, ledger

HEADER = b"year,month,day,carrier,flight,origin,dest,distance,dep_delay,late\n"


def rows(rng: np.random.Generator, count: int) -> bytes:
    """COUNT flight-like CSV rows (about 45 bytes each)."""
    carriers = np.array(["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN"])
    airports = np.array(["EWR", "JFK", "LGA", "ORD", "ATL", "LAX", "SFO", "BOS", "MIA", "DCA"])
    cols = [
        np.full(count, 2013),
        rng.integers(1, 13, count),
        rng.integers(1, 29, count),
        rng.choice(carriers, count),
        rng.integers(1, 6000, count),
        rng.choice(airports[:3], count),
        rng.choice(airports, count),
        rng.integers(80, 4983, count),
        rng.integers(-20, 300, count),
        rng.integers(0, 2, count),
    ]
    return "".join(",".join(map(str, r)) + "\n" for r in zip(*cols, strict=True)).encode()


def land_small(folder: Path, count: int, seed: int = 0) -> int:
    """Write COUNT CSV snapshots of 2-100 KB into FOLDER, each a different slice of one pool of rows; return bytes."""
    rng = np.random.default_rng(seed)
    pool = rows(rng, 4000)  # ~180 KB: every file is a window into it, starting at a different row
    starts = [i for i, b in enumerate(pool) if b == ord("\n")]
    sizes = np.exp(rng.uniform(np.log(2_000), np.log(100_000), count)).astype(int)
    total = 0
    for i, size in enumerate(sizes):
        start = starts[rng.integers(0, len(starts))] + 1
        body = (pool[start:] + pool)[:size]
        data = HEADER + body[: body.rfind(b"\n") + 1]
        (folder / f"flights-{i:05d}.csv").write_bytes(data)
        total += len(data)
    return total


def land_large(folder: Path, count: int, megabytes: int, seed: int = 1) -> int:
    """Write COUNT CSV snapshots of about MEGABYTES MB each into FOLDER; return bytes."""
    block = rows(np.random.default_rng(seed), 25_000)  # ~1.1 MB, repeated
    repeats = max(1, megabytes * 1_000_000 // len(block))
    total = 0
    for i in range(count):
        first = f"2013,1,1,UA,{i},EWR,ORD,719,0,0\n".encode()  # a row of its own: each file's content differs
        data = HEADER + first + block * repeats
        (folder / f"flights-large-{i}.csv").write_bytes(data)
        total += len(data)
    return total


def hash_all(folder: Path) -> int:
    """Find pending snapshots as rewarm did before the cache: list the folder, read and hash every file."""
    return len({landing.fingerprint(a.uri) for a in landing.scan(str(folder))})


def wait_until_cacheable(folder: Path) -> None:
    """Wait until every file is older than the cache's freshness rule, so that the cold pass caches them all."""
    newest = max(a.changed_at for a in landing.scan(str(folder)))
    time.sleep(max(0.0, newest + fingerprints.FRESH_SECONDS + 0.1 - time.time()))


def timed(passes: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each pass, REPEATS times, the passes run in turn in each repeat."""
    seconds: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, run in passes.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def measure(folder: Path, home: Path, repeats: int) -> dict[str, list[float]]:
    """Time `hash all`, `cold` and `warm` over FOLDER, with the cache under HOME."""
    location = str(folder)
    cache = fingerprints.cache_path(home, location)

    def cold() -> None:
        cache.unlink(missing_ok=True)
        ledger.pending(location, {}, settle_seconds=0, home=home)

    def warm() -> None:
        ledger.pending(location, {}, settle_seconds=0, home=home)

    return timed({"hash all": lambda: hash_all(folder), "cold": cold, "warm": warm}, repeats)


def report(title: str, seconds: dict[str, list[float]]) -> str:
    """One line per pass (median and every repeat) and the ratio of `hash all` to `warm`."""
    median = {name: statistics.median(values) for name, values in seconds.items()}
    lines = [title]
    for name, values in seconds.items():
        lines.append(f"  {name:9s} median {median[name]:.3f} s  (" + ", ".join(f"{v:.3f}" for v in values) + ")")
    lines.append(f"  hash all / warm: {median['hash all'] / median['warm']:.1f}x")
    return "\n".join(lines)


def run(folder: Path, files: int, repeats: int, large: int, large_mb: int) -> str:
    """Land FILES small snapshots in FOLDER, time the passes; then add LARGE files of LARGE_MB MB and again."""
    landing_folder, home = folder / "landing", folder / "home"
    landing_folder.mkdir(parents=True)
    small = land_small(landing_folder, files)
    wait_until_cacheable(landing_folder)
    out = [report(f"{files} files, {small / 1e6:.0f} MB", measure(landing_folder, home, repeats))]
    if large:
        big = land_large(landing_folder, large, large_mb)
        wait_until_cacheable(landing_folder)
        seconds = measure(landing_folder, home, repeats)
        out.append(report(f"{files} files plus {large} of {large_mb} MB, {(small + big) / 1e6:.0f} MB", seconds))
    cache = fingerprints.cache_path(home, str(landing_folder))
    out.append(f"cache file: {cache.stat().st_size / 1e3:.0f} KB")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rewarm.benchmarks.pending", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=5000, help="small snapshots to land (2-100 KB each)")
    parser.add_argument("--repeats", type=int, default=5, help="times each pass is run; the median is reported")
    parser.add_argument("--large", type=int, default=4, help="large snapshots added for the second case (0: none)")
    parser.add_argument("--large-mb", type=int, default=64, help="size of each large snapshot, in MB")
    parser.add_argument("--folder", type=Path, help="where to land the files (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="rewarm-pending-"))
    try:
        print(run(folder, args.files, args.repeats, args.large, args.large_mb))
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
