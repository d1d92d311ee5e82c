"""eventsourcing's recorders on a files root: aggregate, application, tracking and process.

They only decide and query; the files, the lock and the commit protocol are `FileStore`'s.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    Recorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from runhistory.stores.files.index import Index, Stream
from runhistory.stores.files.layout import TABLES, aggregate_state, join_run_key
from runhistory.stores.files.planning import plan_insert
from runhistory.stores.files.store import FileStore

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "FileAggregateRecorder",
    "FileApplicationRecorder",
    "FileProcessRecorder",
    "FileRecorder",
    "FileSubscription",
    "FileTrackingRecorder",
]

DEFAULT_POLL_INTERVAL = 0.1
"""Seconds between a subscription's looks for notifications other processes committed."""


class FileRecorder(Recorder):
    """A recorder on one table (`purpose`: "events" or "snapshots") of the directory `root`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        purpose: str = "events",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        if purpose not in TABLES:
            raise ValueError(f"no files table for purpose {purpose!r}: use one of {list(TABLES)}")
        self.root = Path(root)
        self.poll_interval = poll_interval
        self._store = FileStore(self.root, TABLES[purpose])

    def close(self) -> None:
        """Release the lock and log file descriptors."""
        self._store.close()

    def _insert(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        with self._store.locked() as index:
            plan = plan_insert(index, self._store.table, events, tracking)
            if plan is None:
                return []
            self._store.commit(plan)
        self._store.notify()
        return plan.notification_ids

    def _states(self, stream: Stream, positions: Sequence[int]) -> list[bytes]:
        lines = self._store.read_lines(stream, positions)
        if stream.is_run:
            # The first line of a run is its started event, whose runKey is kept aside.
            return [
                join_run_key(line, self._store.run_key(stream)) if p == 0 else line
                for p, line in zip(positions, lines, strict=True)
            ]
        versions, topics, path = stream.versions, stream.topics, stream.path
        return [
            aggregate_state(line, versions[p], topics[p], path)
            for p, line in zip(positions, lines, strict=True)
        ]


class FileAggregateRecorder(FileRecorder, AggregateRecorder):
    """Stored events by originator: a run's go to its Temporal JSON Lines file."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._insert(stored_events, None)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        with self._store.locked() as index:
            stream = index.streams.get(str(originator_id))
            if stream is None:
                return []
            positions = stream.positions(gt=gt, lte=lte, desc=desc, limit=limit)
            states = self._states(stream, positions)
            return [
                StoredEvent(stream.originator_id, stream.versions[p], stream.topics[p], state)
                for p, state in zip(positions, states, strict=True)
            ]


class FileApplicationRecorder(FileAggregateRecorder, ApplicationRecorder):
    """Stored events plus the notification log, in commit order, from the commit log."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        with self._store.locked() as index:
            ids = _pick(index, start, limit, stop, topics, inclusive_of_start)
            return self._notifications(index, ids)

    def _notifications(self, index: Index, ids: list[int]) -> list[Notification]:
        where: list[tuple[Stream, int]] = []
        wanted: dict[Stream, list[int]] = {}
        for n in ids:
            stream = index.notification_streams[n - 1]
            position = stream.position(index.notification_versions[n - 1])
            where.append((stream, position))
            wanted.setdefault(stream, []).append(position)
        states: dict[Stream, dict[int, bytes]] = {}
        for stream, positions in wanted.items():
            states[stream] = dict(zip(positions, self._states(stream, positions), strict=True))
        return [
            Notification(
                id=n,
                originator_id=stream.originator_id,
                originator_version=stream.versions[p],
                topic=stream.topics[p],
                state=states[stream][p],
            )
            for n, (stream, p) in zip(ids, where, strict=True)
        ]

    def max_notification_id(self) -> int | None:
        with self._store.locked() as index:
            return index.max_notification_id or None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return FileSubscription(self, gt=gt, topics=topics)

    def listen(self, event: threading.Event) -> None:
        self._store.listen(event)

    def unlisten(self, event: threading.Event) -> None:
        self._store.unlisten(event)


def _pick(
    index: Index,
    start: int | None,
    limit: int,
    stop: int | None,
    topics: Sequence[str],
    inclusive_of_start: bool,
) -> list[int]:
    first = 1 if start is None else (start if inclusive_of_start else start + 1)
    last = index.max_notification_id if stop is None else min(stop, index.max_notification_id)
    wanted = set(topics)
    topic_of = index.notification_topics
    picked: list[int] = []
    for n in range(max(first, 1), last + 1):
        if len(picked) >= limit:
            break
        if not wanted or topic_of[n - 1] in wanted:
            picked.append(n)
    return picked


class FileSubscription(ListenNotifySubscription[FileApplicationRecorder]):
    """Notifications after `gt`: woken by inserts through the same recorder, and polling
    every `poll_interval` seconds for what other processes commit."""

    def __init__(
        self, recorder: FileApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        self._poll_interval = recorder.poll_interval  # read by the pull thread super() starts
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        recorder.listen(self._has_been_notified)

    def stop(self) -> None:
        super().stop()
        self._recorder.unlisten(self._has_been_notified)

    def _loop_on_pull(self) -> None:
        try:
            self._pull()
            while not self._has_been_stopped:
                self._has_been_notified.wait(timeout=self._poll_interval)
                self._pull()
        except BaseException as e:  # noqa: BLE001 - re-raised in the iterating thread
            # As the base class does.
            if self._thread_error is None:
                self._thread_error = e
            self.stop()


class FileTrackingRecorder(FileRecorder, TrackingRecorder):
    """Tracking records, one JSON Lines file per upstream application."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self._insert((), tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        with self._store.locked() as index:
            return index.tracking.get(application_name)


class FileProcessRecorder(FileTrackingRecorder, FileApplicationRecorder, ProcessRecorder):
    """Events and the tracking record of the notification that caused them, atomically."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking = kwargs.get("tracking")
        assert tracking is None or isinstance(tracking, Tracking)
        return self._insert(stored_events, tracking)
