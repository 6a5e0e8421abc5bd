"""The landing watcher: one `rewarm.snapshot.landed` event per new, complete snapshot.

Prefect has no file-arrival trigger, so this small process turns arrivals into events; a deployment
trigger turns each event into a retrain. Local folders are watched with watchfiles; fsspec URLs
(s3://...) are listed every `service.poll_seconds`. A file is handed on once it is complete (see
rewarm.landing) and its content has not been processed (MLflow) nor sent already by this process
(while the file it was sent for is still there); everything else about exactly-once is the retrain
flow's own check, under its one-at-a-time limit. A rejected snapshot leaves the landing location for
the quarantine, so the same bad bytes landed again are announced, rejected and quarantined again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient

from rewarm import fingerprints, ledger
from rewarm.config import Settings
from rewarm.landing import Arrival, fingerprint, survey, unread_note
from rewarm.locations import is_remote

LANDED = "rewarm.snapshot.landed"
RESOURCE_PREFIX = "rewarm.snapshot."
MODEL_LABEL = "rewarm.model"

log = logging.getLogger("rewarm.watcher")


def landed_event(model: str, arrival: Arrival, sha256: str) -> dict:
    """The event for one landed snapshot, as keyword arguments of prefect.events.Event."""
    return {
        "event": LANDED,
        "resource": {
            "prefect.resource.id": RESOURCE_PREFIX + sha256,
            "prefect.resource.name": arrival.name,
            MODEL_LABEL: model,
        },
        "payload": {
            "uri": arrival.uri,
            "name": arrival.name,
            "sha256": sha256,
            "size": arrival.size,
            "landed_at": datetime.fromtimestamp(arrival.changed_at, UTC).isoformat(),
        },
    }


def send_to_prefect(event: dict) -> None:
    """Emit EVENT to the Prefect server and wait for it to confirm receipt (raises if it cannot)."""
    from prefect.events import Event
    from prefect.events.clients import get_events_client

    async def _send() -> None:
        async with get_events_client(checkpoint_every=1) as client:
            await client.emit(Event(**event))

    asyncio.run(_send())


def _exists(uri: str) -> bool:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.exists(path))
    except OSError:
        return True  # cannot tell: assume it is still there (no second event)


class Watcher:
    """Watches one model's landing location and emits an event per new complete snapshot."""

    def __init__(self, settings: Settings, home: Path, emit: Callable[[dict], None] = send_to_prefect) -> None:
        self.settings = settings
        self.home = home
        self.emit = emit
        self.location = settings.data.landing
        self._looked_at: set[tuple[str, int, float]] = set()  # (uri, size, changed_at) already judged
        self._unread: set[str] = set()  # names of files not read as snapshots, already warned about
        self._sent: dict[str, tuple[Arrival, float]] = {}  # content hash -> (snapshot, when its event went out)

    def check(self, now: float | None = None) -> list[dict]:
        """Look once: emit events for complete, new snapshots, oldest first, and again for any whose event
        brought no retrain within `service.resend_seconds`; return the events sent."""
        now = time.time() if now is None else now
        listed, unread = survey(self.location)
        if new := [n for n in unread if n not in self._unread]:
            log.warning("%s: %s", self.location, unread_note(new))
        self._unread = set(unread)
        fresh = [a for a in listed if (a.uri, a.size, a.changed_at) not in self._looked_at]
        ready = [a for a in fresh if a.settled(self.settings.service.settle_seconds, now)]
        overdue = [sha for sha, (_, sent) in self._sent.items() if now - sent >= self.settings.service.resend_seconds]
        if not ready and not overdue:
            return []
        name = self.settings.model.name
        done = ledger.processed(MlflowClient(), name)
        with fingerprints.cached(self.location, listed, self.home) as sha256:
            events = [e for a in ready if (e := self._judge(a, sha256, done, now)) is not None]
        return events + [e for sha in overdue if (e := self._resend(sha, done, now)) is not None]

    def _resend(self, sha: str, done: dict[str, int], now: float) -> dict | None:
        """Announce a snapshot again if it is still there, unchanged, and not processed."""
        arrival, sent = self._sent[sha]
        try:
            # Hashed afresh, not through the cache: ARRIVAL's stamp is the one listed when the event went out.
            unchanged = sha not in done and fingerprint(arrival.uri) == sha
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            del self._sent[sha]  # done with, or gone: the retrain flow or a new event covers it
            return None
        event = landed_event(self.settings.model.name, arrival, sha)
        self.emit(event)
        self._sent[sha] = (arrival, now)
        log.warning("%s: no retrain %.0f s after its event; event sent again", arrival.name, now - sent)
        return event

    def _judge(
        self, arrival: Arrival, sha256: Callable[[Arrival], str], done: dict[str, int], now: float
    ) -> dict | None:
        try:
            sha = sha256(arrival)  # the fingerprint cache's hash while the file is unchanged
        except FileNotFoundError:  # moved away before it could be read
            return None
        except PermissionError as exc:  # the next scheduled run quarantines it
            log.warning("%s cannot be read (%s); the scheduled run will quarantine it", arrival.name, exc)
            self._looked_at.add((arrival.uri, arrival.size, arrival.changed_at))
            return None
        if sha in self._sent and not _exists(self._sent[sha][0].uri):
            del self._sent[sha]  # the file it was sent for is gone (quarantined, moved): this copy is new
        if sha in done or sha in self._sent:
            why = f"processed as v{done[sha]}" if sha in done else "sent already"
            log.info("%s: same content as a snapshot %s (sha256 %s); no new retrain", arrival.name, why, sha[:12])
            self._looked_at.add((arrival.uri, arrival.size, arrival.changed_at))
            return None
        event = landed_event(self.settings.model.name, arrival, sha)
        self.emit(event)  # raises if Prefect cannot take it: the file is looked at again on the next check
        self._sent[sha] = (arrival, now)
        self._looked_at.add((arrival.uri, arrival.size, arrival.changed_at))
        log.info("%s landed (sha256 %s, %d bytes): event %s sent", arrival.name, sha[:12], arrival.size, LANDED)
        return event

    def run(self, stop: threading.Event) -> None:
        """Watch until STOP is set."""
        log.info("watching %s for %s snapshots", self.location, self.settings.model.name)
        if is_remote(self.location):
            self._poll(stop)
        else:
            self._watch_local(stop)

    def _poll(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._check_logged()
            stop.wait(self.settings.service.poll_seconds)

    def _watch_local(self, stop: threading.Event) -> None:
        import watchfiles

        folder = Path(self.location.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        self._check_logged()  # files that landed while nothing was watching
        # Wake at least once a second: a file that stopped changing becomes complete without any new event.
        for _ in watchfiles.watch(
            folder, stop_event=stop, rust_timeout=1000, yield_on_timeout=True, debounce=200, recursive=False
        ):
            self._check_logged()

    def _check_logged(self) -> None:
        try:
            self.check()
        except Exception as exc:  # a transient store or network error must not stop the watcher; it retries
            log.warning("check of %s failed, retrying on the next one: %s", self.location, exc)
