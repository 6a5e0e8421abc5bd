"""What became of each snapshot, by content hash: processed (a complete registered version, in MLflow)
or rejected (a record under the home folder). A snapshot in neither is pending."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient

from rewarm.landing import Arrival, fingerprint, scan
from rewarm.registry import TAG

SHA_TAG = TAG + "snapshot_sha256"


def processed(client: MlflowClient, name: str) -> dict[str, int]:
    """Content hash -> the first complete version registered from it (the record that survives restarts)."""
    # An unknown model has no versions ([]); any other MLflow error propagates: "not processed" must be known.
    versions = client.search_model_versions(f"name = '{name}'")
    done: dict[str, int] = {}
    for v in sorted(versions, key=lambda v: int(v.version)):
        sha = v.tags.get(SHA_TAG)
        if sha and v.tags.get(TAG + "complete") == "true":
            done.setdefault(sha, int(v.version))
    return done


def rejections_folder(home: Path, name: str) -> Path:
    return home / "rejected" / name


def record_rejection(home: Path, name: str, sha256: str, uri: str, reason: str) -> Path:
    """Remember that this content was rejected and why, so it is not retried until it changes (or --force)."""
    folder = rejections_folder(home, name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha256}.json"
    record = {"sha256": sha256, "uri": uri, "reason": reason, "rejected_at": datetime.now(UTC).isoformat()}
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)
    return path


def rejected(home: Path, name: str) -> dict[str, dict]:
    """Content hash -> rejection record."""
    folder = rejections_folder(home, name)
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


@dataclass(frozen=True)
class Pending:
    """A landed snapshot not yet processed nor rejected."""

    arrival: Arrival
    sha256: str


def pending(
    location: str,
    done: dict[str, int],
    refused: dict[str, dict],
    settle_seconds: float,
    before: tuple[float, str] | None = None,
) -> list[Pending]:
    """Complete snapshots in LOCATION whose content is neither DONE nor REFUSED, oldest first, one per
    content (a second copy under another name is not pending twice); only those landed before BEFORE if given."""
    out: list[Pending] = []
    seen: set[str] = set()
    for arrival in scan(location):
        if not arrival.settled(settle_seconds) or (before is not None and arrival.order >= before):
            continue
        try:
            sha = fingerprint(arrival.uri)
        except FileNotFoundError:  # moved away while listing
            continue
        if sha in done or sha in refused or sha in seen:
            continue
        seen.add(sha)
        out.append(Pending(arrival, sha))
    return out
