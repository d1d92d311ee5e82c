"""The commit log: the one file that says which bytes of the data files are committed.

Every transaction is written to the log as JSON lines in two steps:

    {"begin": 7, "files": {"runs/default/order-1/r1.jsonl": 1234, "runs/.../r1.meta.json": null}}
    ... the data files are appended and fsynced ...
    {"id": 41, "originatorId": "…", "originatorVersion": 3, "topic": "…", "file": "…",
     "offset": 1234, "length": 310}
    {"tracking": "upstream", "notificationId": 9, "file": "tracking/upstream.jsonl", …}
    {"commit": 7, "entries": 2, "nonce": "5f0c…"}

`begin` is the intent: each file the transaction touches, with its size before (null: created
by it), so a crashed transaction can be rolled back on open. The entries and the `commit` line
are written in one write after the data is durable, then the log is fsynced: that fsync is the
commit point. A transaction without its `commit` line never happened. The random nonce makes
every commit line unique, so a process can check that the log still holds, where it read it,
the last transaction it read.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

__all__ = ["EventEntry", "Parsed", "TrackingEntry", "Transaction", "parse"]


class EventEntry(NamedTuple):
    """One stored event: its notification id, identity, topic and line in a data file."""

    id: int
    originator_id: str
    text_id: bool
    version: int
    topic: str
    file: str
    offset: int
    length: int


class TrackingEntry(NamedTuple):
    """One tracking record: an upstream notification processed, and its line."""

    application_name: str
    notification_id: int
    file: str
    offset: int
    length: int


@dataclass(slots=True)
class Transaction:
    """One insert, as the log records it. `start`/`end` are its byte range in the log."""

    number: int
    files: dict[str, int | None]
    events: list[EventEntry] = field(default_factory=list)
    tracking: list[TrackingEntry] = field(default_factory=list)
    start: int = 0
    end: int = 0
    commit_line: bytes = b""

    def begin_line(self) -> bytes:
        return orjson.dumps({"begin": self.number, "files": self.files}) + b"\n"

    def body_lines(self) -> bytes:
        """The entries and the commit line, written together once the data is durable."""
        lines = [_event_line(e) for e in self.events]
        lines += [_tracking_line(t) for t in self.tracking]
        count = len(self.events) + len(self.tracking)
        commit = {"commit": self.number, "entries": count, "nonce": secrets.token_hex(8)}
        self.commit_line = orjson.dumps(commit) + b"\n"
        lines.append(self.commit_line)
        return b"".join(lines)

    def file_ends(self) -> dict[str, int]:
        """The committed size of each data file this transaction appended to."""
        ends: dict[str, int] = {}
        spans = [(e.file, e.offset + e.length) for e in self.events]
        spans += [(t.file, t.offset + t.length) for t in self.tracking]
        for path, end in spans:
            ends[path] = max(ends.get(path, 0), end)
        return ends


def _event_line(e: EventEntry) -> bytes:
    doc: dict[str, Any] = {
        "id": e.id,
        "originatorId": e.originator_id,
        "originatorVersion": e.version,
        "topic": e.topic,
        "file": e.file,
        "offset": e.offset,
        "length": e.length,
    }
    if e.text_id:
        doc["originatorIdType"] = "text"
    return orjson.dumps(doc) + b"\n"


def _tracking_line(t: TrackingEntry) -> bytes:
    doc = {
        "tracking": t.application_name,
        "notificationId": t.notification_id,
        "file": t.file,
        "offset": t.offset,
        "length": t.length,
    }
    return orjson.dumps(doc) + b"\n"


@dataclass(slots=True)
class Parsed:
    """What a stretch of the log holds: complete transactions, then maybe an unfinished tail.

    `committed` is the absolute offset just past the last complete transaction. `pending` is
    the begun transaction in the tail, when its begin line is readable. `corrupt` says why the
    tail is not a torn write but damage (a readable commit follows an unreadable line)."""

    transactions: list[Transaction]
    committed: int
    pending: Transaction | None = None
    corrupt: str | None = None


def _entry(doc: dict[str, Any]) -> EventEntry | TrackingEntry:
    if "tracking" in doc:
        return TrackingEntry(
            str(doc["tracking"]),
            int(doc["notificationId"]),
            str(doc["file"]),
            int(doc["offset"]),
            int(doc["length"]),
        )
    return EventEntry(
        int(doc["id"]),
        str(doc["originatorId"]),
        doc.get("originatorIdType") == "text",
        int(doc["originatorVersion"]),
        str(doc["topic"]),
        str(doc["file"]),
        int(doc["offset"]),
        int(doc["length"]),
    )


def _line_doc(line: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def parse(buf: bytes, base: int, last_number: int) -> Parsed:
    """Read the log bytes `buf`, which start at absolute offset `base` just after transaction
    `last_number`."""
    done: list[Transaction] = []
    current: Transaction | None = None
    committed = pos = 0
    bad_at: int | None = None
    while pos < len(buf):
        newline = buf.find(b"\n", pos)
        if newline < 0:
            break  # a torn last line
        doc = _line_doc(buf[pos:newline])
        try:
            if doc is None:
                raise ValueError
            if "begin" in doc:
                if current is not None:
                    raise ValueError
                current = Transaction(int(doc["begin"]), dict(doc["files"]), start=base + pos)
            elif "commit" in doc:
                count = int(doc["entries"])
                if current is None or int(doc["commit"]) != current.number:
                    raise ValueError
                if count != len(current.events) + len(current.tracking):
                    raise ValueError
                current.end = base + newline + 1
                current.commit_line = buf[pos : newline + 1]
                done.append(current)
                current = None
                committed = newline + 1
            elif current is None:
                raise ValueError
            else:
                entry = _entry(doc)
                if isinstance(entry, EventEntry):
                    current.events.append(entry)
                else:
                    current.tracking.append(entry)
        except (ValueError, KeyError, TypeError):
            bad_at = pos
            break
        pos = newline + 1
    parsed = Parsed(done, base + committed, current)
    in_flight = (done[-1].number if done else last_number) + 1
    if bad_at is not None and _commits_after(buf, bad_at, in_flight):
        parsed.corrupt = f"unreadable log line at offset {base + bad_at} before later commits"
    return parsed


def _commits_after(buf: bytes, pos: int, in_flight: int) -> bool:
    """Whether a transaction after the one in flight committed after `pos`: then the log was
    damaged, not torn. (A crash during the log's fsync may keep the in-flight transaction's
    commit line but lose lines before it: that is still a torn write.)"""
    for line in buf[pos:].split(b"\n")[1:]:
        doc = _line_doc(line)
        if doc is not None and isinstance(doc.get("commit"), int) and doc["commit"] > in_flight:
            return True
    return False
