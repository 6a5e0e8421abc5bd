"""An epoch checkpoint of one candidate's training (rewarm/training.py), resumed after a kill."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from rewarm import locations

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
