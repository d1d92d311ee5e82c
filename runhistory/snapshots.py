"""Reading run snapshots safely, and loading the events a snapshot left in the store.

A snapshot is a cache: without it a run replays from its events, only slower. So a snapshot
that cannot be trusted is skipped rather than used or raised: one that does not decode, one of
another format (`runhistory.domain.snapshot.FORMAT`), or one whose last event is not the event
the store holds at its version (the run's events were removed or replaced behind its back).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import AggregateRecorder, EventStore, Mapper
from eventsourcing.utils import TopicError

from runhistory.adapters.history_json import gc_paused
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import HistoryLoader
from runhistory.domain.snapshot import RunSnapshot

__all__ = ["CheckedSnapshotStore", "history_loader"]

logger = logging.getLogger(__name__)

# What decoding a damaged or foreign snapshot raises (SnapshotError is a ValueError, as is
# eventsourcing's MapperDeserialisationError).
_UNREADABLE = (ValueError, KeyError, IndexError, TypeError, TopicError)


class CheckedSnapshotStore(EventStore[UUID]):
    """The snapshots table, giving only run snapshots that agree with the run's events in
    `events`. Other aggregates' snapshots pass through as eventsourcing stores them."""

    def __init__(
        self, mapper: Mapper[UUID], recorder: AggregateRecorder, events: EventStore[UUID]
    ) -> None:
        super().__init__(mapper, recorder)
        self._events = events

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[UUID]]:
        # Select without the limit: when the newest snapshot is refused, an older one may do.
        stored = self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc)
        given = 0
        for item in stored:
            if limit is not None and given >= limit:
                return
            try:
                snapshot = self.mapper.to_domain_event(item)
                problem = self._problem(snapshot) if isinstance(snapshot, RunSnapshot) else ""
            except _UNREADABLE as e:
                problem = f"unreadable ({type(e).__name__}: {e})"
            if problem:
                logger.warning(
                    "not using the snapshot of %s at version %d: %s; replaying its events",
                    originator_id,
                    item.originator_version,
                    problem,
                )
                continue
            given += 1
            yield snapshot

    def _problem(self, snapshot: RunSnapshot) -> str:
        """Why the snapshot must not be used, or "" if it may."""
        snapshot.verify()  # raises SnapshotError if damaged or of another format
        run_id, version = snapshot.originator_id, snapshot.originator_version
        first = list(self._events.get(run_id, limit=1))
        last = list(self._events.get(run_id, lte=version, desc=True, limit=1))
        if not (
            first
            and last
            and isinstance(first[0], HistoryEvent)
            and isinstance(last[0], HistoryEvent)
            and snapshot.matches(first[0], last[0])
        ):
            return "the stored events are not the ones it was taken of"
        return ""


def history_loader(events: EventStore[UUID], run_id: UUID) -> HistoryLoader:
    """The loader `WorkflowRun.attach_history` wants: the run's stored events up to a version.
    A closure, not a bound method, so that deep copies of the run share it rather than copy
    the application."""

    def load(upto: int) -> list[HistoryEvent]:
        with gc_paused():
            return [e for e in events.get(run_id, lte=upto) if isinstance(e, HistoryEvent)]

    return load
