"""The in-memory index of a files table, rebuilt from its commit log on open.

It answers every lookup without touching the data files: which file holds an originator's
events and where each line is, the notification sequence, and the tracking positions. Only
the bytes of the selected lines are then read.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from uuid import UUID

from eventsourcing.persistence import OperationalError

from runhistory.stores.files.layout import is_run_file
from runhistory.stores.files.txlog import Transaction

__all__ = ["Index", "Stream"]


class Stream:
    """One originator's committed events: its file and, per event in version order, the
    version, topic, and line offset and length (with the newline) in that file."""

    __slots__ = (
        "is_run",
        "key",
        "lengths",
        "offsets",
        "originator_id",
        "path",
        "run_key",
        "topics",
        "versions",
    )

    def __init__(self, key: str, originator_id: UUID | str, path: str) -> None:
        self.key = key
        self.originator_id = originator_id
        self.path = path
        self.is_run = is_run_file(path)
        self.versions = array("q")
        self.offsets = array("q")
        self.lengths = array("q")
        self.topics: list[str] = []
        self.run_key: bytes | None = None  # a run's `runKey` JSON, read from its metadata

    @property
    def last_version(self) -> int | None:
        return self.versions[-1] if self.versions else None

    def has_version(self, version: int) -> bool:
        i = bisect_left(self.versions, version)
        return i < len(self.versions) and self.versions[i] == version

    def position(self, version: int) -> int:
        return bisect_left(self.versions, version)

    def add(self, version: int, topic: str, offset: int, length: int) -> None:
        if not self.versions or version > self.versions[-1]:
            i = len(self.versions)
        else:  # snapshots may be taken of earlier versions
            i = bisect_left(self.versions, version)
        self.versions.insert(i, version)
        self.offsets.insert(i, offset)
        self.lengths.insert(i, length)
        self.topics.insert(i, topic)

    def positions(self, *, gt: int | None, lte: int | None, desc: bool, limit: int | None) -> range:
        lo = 0 if gt is None else bisect_right(self.versions, gt)
        hi = len(self.versions) if lte is None else bisect_right(self.versions, lte)
        hi = max(lo, hi)
        picked = range(hi - 1, lo - 1, -1) if desc else range(lo, hi)
        return picked if limit is None else picked[: max(limit, 0)]


class Index:
    """Everything committed in one table, as of `log_offset` bytes of its log."""

    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}
        self.by_path: dict[str, Stream] = {}
        self.ends: dict[str, int] = {}  # committed size of every data file
        self.notification_streams: list[Stream] = []
        self.notification_versions = array("q")
        self.notification_topics: list[str] = []
        self.tracking: dict[str, int] = {}
        self.transactions = 0
        self.last: Transaction | None = None
        self.log_offset = 0
        self._topics: dict[str, str] = {}

    @property
    def max_notification_id(self) -> int:
        return len(self.notification_streams)

    def apply(self, tx: Transaction) -> None:
        """Add a committed transaction, in log order."""
        if tx.number != self.transactions + 1:
            raise OperationalError(
                f"commit log out of order: transaction {tx.number} after {self.transactions}"
            )
        for e in tx.events:
            if e.id != len(self.notification_streams) + 1:
                raise OperationalError(f"commit log out of order: notification {e.id}")
            stream = self.streams.get(e.originator_id)
            if stream is None:
                originator_id = e.originator_id if e.text_id else UUID(e.originator_id)
                stream = Stream(e.originator_id, originator_id, e.file)
                self.streams[e.originator_id] = stream
                self.by_path[e.file] = stream
            topic = self._topics.setdefault(e.topic, e.topic)
            stream.add(e.version, topic, e.offset, e.length)
            self.notification_streams.append(stream)
            self.notification_versions.append(e.version)
            self.notification_topics.append(topic)
        for t in tx.tracking:
            self.tracking[t.application_name] = t.notification_id
        self.ends.update(tx.file_ends())
        self.transactions = tx.number
        self.last = tx
        self.log_offset = tx.end
