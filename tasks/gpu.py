"""The GPUs as a shared resource: a Prefect global concurrency limit that every training on a GPU holds a slot of.

Orchestration, not training: the training loop itself (rewarm/training.py) knows nothing of Prefect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

GPU_LIMIT = "rewarm-gpu"  # the Prefect global concurrency limit every training on a GPU holds a slot of


@contextmanager
def gpu_slot(device: torch.device) -> Iterator[None]:
    """Hold one slot of the global GPU limit while training on DEVICE (nothing to hold on the CPU).

    Strict: a missing limit is an error, not an unthrottled GPU. `rewarm serve` and `rewarm deploy` create it.
    """
    if device.type != "cuda":
        yield
        return
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    from rewarm.errors import RewarmError

    try:
        with concurrency(GPU_LIMIT, occupy=1, strict=True):
            yield
    except ConcurrencySlotAcquisitionError as exc:
        raise RewarmError(
            f"the Prefect global concurrency limit {GPU_LIMIT!r} is missing ({exc}); `rewarm serve` and "
            f"`rewarm deploy` create it, or: prefect gcl create {GPU_LIMIT} --limit 1"
        ) from exc


def upsert_gpu_limit(slots: int) -> None:
    """Create the global GPU limit with SLOTS slots, or resize it (`rewarm serve`, `rewarm deploy`, and a
    retrain on a GPU against Prefect's temporary local server, which nobody else configures)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(GPU_LIMIT, slots)
