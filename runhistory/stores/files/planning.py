"""Deciding an insert: check it against the index and turn it into a transaction and the bytes
to append to each file, before anything is written, so a refused insert writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import DataError, IntegrityError, StoredEvent, Tracking

from runhistory.stores.files.index import Index
from runhistory.stores.files.layout import (
    Table,
    aggregate_file,
    aggregate_line,
    history_line,
    place_run,
    tracking_file,
    tracking_line,
)
from runhistory.stores.files.txlog import EventEntry, TrackingEntry, Transaction

__all__ = ["Plan", "plan_insert"]


@dataclass(slots=True)
class Plan:
    """A checked insert: its log transaction, the bytes to append to each data file, and the
    files to create whole (run metadata)."""

    tx: Transaction
    appends: dict[str, bytearray]
    creates: dict[str, bytes]

    @property
    def notification_ids(self) -> list[int]:
        return [e.id for e in self.tx.events]


@dataclass(slots=True)
class _Open:
    """An originator as this insert leaves it."""

    path: str
    is_run: bool
    last: int | None
    versions: set[int] = field(default_factory=set)
    first_line: bytes | None = None


class _Planner:
    def __init__(self, index: Index, table: Table) -> None:
        self.index = index
        self.table = table
        self.files: dict[str, int | None] = {}
        self.appends: dict[str, bytearray] = {}
        self.creates: dict[str, bytes] = {}
        self.events: list[EventEntry] = []
        self.tracking: list[TrackingEntry] = []
        self.open: dict[str, _Open] = {}
        self.next_id = index.max_notification_id + 1

    def add(self, s: StoredEvent) -> None:
        key = str(s.originator_id)
        o = self.open.get(key)
        if o is None:
            o = self.open[key] = self._open(s, key)
        self._check_version(s, key, o)
        line = self._line(s, o)
        offset = self._append(o.path, line)
        text_id = not isinstance(s.originator_id, UUID)
        self.events.append(
            EventEntry(
                self.next_id,
                key,
                text_id,
                s.originator_version,
                s.topic,
                o.path,
                offset,
                len(line) + 1,
            )
        )
        self.next_id += 1
        o.last = s.originator_version
        o.versions.add(s.originator_version)

    def _open(self, s: StoredEvent, key: str) -> _Open:
        stream = self.index.streams.get(key)
        if stream is not None:
            return _Open(stream.path, stream.is_run, stream.last_version)
        if self.table.routes_runs:
            run = place_run(s.topic, s.state)
            if run and run.path not in self.index.by_path and run.path not in self.appends:
                self.creates[run.meta_path] = run.metadata(key)
                self.files[run.meta_path] = None
                return _Open(run.path, True, None, first_line=run.line)
        path = aggregate_file(self.table, key)
        if path in self.index.by_path or path in self.appends:
            raise DataError(f"file name clash: originator {key} hashes to taken {path}")
        return _Open(path, False, None)

    def _check_version(self, s: StoredEvent, key: str, o: _Open) -> None:
        version = s.originator_version
        if not self.table.contiguous:
            stream = self.index.streams.get(key)
            if version in o.versions or (stream is not None and stream.has_version(version)):
                raise IntegrityError(f"originator {key} already has version {version}")
        elif o.last is not None and version <= o.last:
            raise IntegrityError(
                f"originator {key} already has version {version} (last is {o.last})"
            )
        elif o.last is not None and version != o.last + 1:
            raise IntegrityError(
                f"originator {key}: version {version} would leave a gap after {o.last}"
            )

    def _line(self, s: StoredEvent, o: _Open) -> bytes:
        if not o.is_run:
            return aggregate_line(s.originator_version, s.topic, s.state)
        if o.first_line is not None:
            first, o.first_line = o.first_line, None
            return first
        line = history_line(s.state)
        if line is None:
            raise DataError(
                f"{o.path}: version {s.originator_version} of this run is not one JSON object"
            )
        return line

    def _append(self, path: str, line: bytes) -> int:
        buf = self.appends.get(path)
        if buf is None:
            buf = self.appends[path] = bytearray()
            self.files[path] = self.index.ends.get(path)
        offset = (self.files[path] or 0) + len(buf)
        buf += line
        buf += b"\n"
        return offset

    def track(self, tracking: Tracking) -> None:
        name, number = tracking.application_name, tracking.notification_id
        last = self.index.tracking.get(name)
        if last is not None and number <= last:
            raise IntegrityError(
                f"tracking {name!r} notification {number} is not after {last}, already recorded"
            )
        path = tracking_file(name)
        line = tracking_line(name, number)
        offset = self._append(path, line)
        self.tracking.append(TrackingEntry(name, number, path, offset, len(line) + 1))


def plan_insert(
    index: Index, table: Table, events: Sequence[StoredEvent], tracking: Tracking | None
) -> Plan | None:
    """The checked insert, or None when there is nothing to write. Raises IntegrityError for
    a version or tracking conflict, DataError for an event a run file cannot hold."""
    planner = _Planner(index, table)
    for s in events:
        planner.add(s)
    if tracking is not None:
        planner.track(tracking)
    if not planner.events and not planner.tracking:
        return None
    tx = Transaction(index.transactions + 1, planner.files, planner.events, planner.tracking)
    return Plan(tx, planner.appends, planner.creates)
