"""What became of each snapshot, by content hash: processed (a registered version whose decision was
applied, in MLflow). A rejected snapshot leaves the landing location for the quarantine; a complete file
still in the landing location and not processed is pending."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from rewarm import fingerprints
from rewarm.landing import Arrival, scan
from rewarm.registry import APPLIED_TAG, NOT_APPLIED, TAG

SHA_TAG = TAG + "snapshot_sha256"
UNREADABLE = "unreadable:"  # stands for the hash of a landed file rewarm may not read


def versions(client: MlflowClient, name: str) -> list:
    # An unknown model has no versions ([]); any other MLflow error propagates: "not processed" must be known.
    versions = client.search_model_versions(f"name = '{name}'")
    return sorted(versions, key=lambda v: int(v.version))


def processed(client: MlflowClient, name: str) -> dict[str, int]:
    """Content hash -> the first complete version registered from it whose decision was applied (the record
    that survives restarts). Versions registered before rewarm wrote the applied tag count as applied."""
    done: dict[str, int] = {}
    for v in versions(client, name):
        sha = v.tags.get(SHA_TAG)
        if sha and v.tags.get(TAG + "complete") == "true" and v.tags.get(APPLIED_TAG) != NOT_APPLIED:
            done.setdefault(sha, int(v.version))
    return done


def unapplied(client: MlflowClient, name: str, sha256: str) -> list:
    """Complete versions registered from SHA256 whose decision was never applied (a crash before the
    aliases moved), oldest first."""
    return [
        v
        for v in versions(client, name)
        if v.tags.get(SHA_TAG) == sha256
        and v.tags.get(TAG + "complete") == "true"
        and v.tags.get(APPLIED_TAG) == NOT_APPLIED
    ]


@dataclass(frozen=True)
class Pending:
    """A landed snapshot not yet processed."""

    arrival: Arrival
    sha256: str


def pending(
    location: str,
    done: dict[str, int],
    settle_seconds: float,
    before: tuple[float, str] | None = None,
    home: Path | None = None,
) -> list[Pending]:
    """Complete snapshots in LOCATION whose content is not DONE, oldest first, one per content (a second
    copy under another name is not pending twice); only those landed before BEFORE if given. Hashes come
    from the fingerprint cache in HOME (REWARM_HOME's by default) for files unchanged since they were hashed."""
    listed = scan(location)
    ready = [a for a in listed if a.settled(settle_seconds) and (before is None or a.order < before)]
    out: list[Pending] = []
    seen: set[str] = set()
    with fingerprints.cached(location, listed, home) as sha256:
        for arrival in ready:
            try:
                sha = sha256(arrival)
            except FileNotFoundError:  # moved away while listing
                continue
            except PermissionError:  # pending all the same: its retrain quarantines it, so it blocks nothing
                sha = UNREADABLE + arrival.uri
            if sha in done or sha in seen:
                continue
            seen.add(sha)
            out.append(Pending(arrival, sha))
    return out
