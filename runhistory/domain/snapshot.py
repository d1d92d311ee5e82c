"""Snapshots of a `WorkflowRun`: its validation state at one version, never its events.

A 50,000-event run replays in seconds; its `RunState` is a few live entities. So a snapshot
holds what `decide`/`evolve` and the run's cheap properties need (`RunState`, key, version,
timestamps, a `HistoryMark` of the events it stands for), and the events stay where they are,
in the store: a run rebuilt from a snapshot loads them only when `history` is first read.

Everything in the state is plain JSON (lists rather than objects wherever a key is user text,
so eventsourcing's JSON transcoder can never mistake one for its own `_type_` encoding), and it
carries `FORMAT`, which changes whenever the meaning of the state could: a snapshot of another
format is not used, the run is replayed instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from eventsourcing.domain import MutableOrImmutableAggregate, Snapshot
from eventsourcing.utils import get_topic, register_topic, resolve_topic

from runhistory.domain.enums import EventType
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run_key import RunKey
from runhistory.domain.state import EntityRecord, RunState
from runhistory.domain.transitions import CLOSE_EVENTS, TABLES, Entity

if TYPE_CHECKING:
    from runhistory.domain.run import WorkflowRun

__all__ = ["FORMAT", "HistoryMark", "RunSnapshot", "SnapshotError"]

# Bump when RunState, evolve() or what a snapshot holds changes meaning without the transition
# tables changing (their digest is part of FORMAT already).
_LAYOUT = 1

_TAIL_TYPES = frozenset({EventType.WORKFLOW_TASK_SCHEDULED, EventType.WORKFLOW_TASK_STARTED})


def _tables_digest() -> str:
    rows = sorted(
        (entity.value, sorted(t.sources), t.event.name, t.target, t.guards)
        for entity, table in TABLES.items()
        for t in table
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


FORMAT = f"{_LAYOUT}:{_tables_digest()}"
"""The snapshot format: a layout number and a digest of the transition tables."""


Fingerprint = tuple[str, int, int, int]
"""An event's type, taskId and eventTime (seconds, nanos; -1 nanos when it has none)."""


class SnapshotError(ValueError):
    """A snapshot's state is not one this version of runhistory wrote (or it is damaged)."""


@dataclass(frozen=True, slots=True)
class HistoryMark:
    """What the run's cheap properties need to know of events that are not loaded: how many
    there are, the last close event among them, the shape of their trailing non-durable tail
    (as `non_durable_tail` reads it), and fingerprints of the first and last, so that a store
    whose events are not the ones the snapshot was taken of can be told apart cheaply."""

    length: int = 0
    close: tuple[int, EventType] | None = None
    # trailing events that look like a transient workflow-task tail (no taskId, WFT type)
    tail_count: int = 0
    # whether those are durable after all: they are the whole history, or follow a taskId-less
    # event (a history without task ids is taken as wholly durable)
    tail_settled: bool = True
    first: Fingerprint | None = None
    last: Fingerprint | None = None

    def extend(self, events: Sequence[HistoryEvent]) -> HistoryMark:
        """The mark of these events followed by `events`."""
        if not events:
            return self
        close = self.close
        for event in reversed(events):
            if event.event_type in CLOSE_EVENTS:
                close = (event.originator_version, event.event_type)
                break
        count = 0
        for event in reversed(events):
            if event.task_id != 0 or event.event_type not in _TAIL_TYPES:
                break
            count += 1
        if count == len(events):
            tail_count, settled = self.tail_count + count, self.tail_settled
        else:
            tail_count, settled = count, events[len(events) - count - 1].task_id == 0
        first = self.first if self.length else fingerprint(events[0])
        return HistoryMark(
            self.length + len(events), close, tail_count, settled, first, fingerprint(events[-1])
        )

    @property
    def non_durable_tail(self) -> int:
        return 0 if self.tail_settled else self.tail_count

    def to_json(self) -> dict[str, Any]:
        return {
            "length": self.length,
            "close": [self.close[0], self.close[1].name] if self.close else None,
            "tailCount": self.tail_count,
            "tailSettled": self.tail_settled,
            "first": list(self.first) if self.first else None,
            "last": list(self.last) if self.last else None,
        }

    @classmethod
    def from_json(cls, doc: Any) -> HistoryMark:
        d = _obj(doc, "history")
        close = d["close"]
        return cls(
            length=_int(d["length"]),
            close=None if close is None else (_int(close[0]), EventType[_str(close[1])]),
            tail_count=_int(d["tailCount"]),
            tail_settled=_bool(d["tailSettled"]),
            first=_fingerprint(d["first"]),
            last=_fingerprint(d["last"]),
        )


def fingerprint(event: HistoryEvent) -> Fingerprint:
    """Type, taskId and eventTime of an event: what tells two runs' event N apart."""
    time = event.event_time
    return (
        event.type_name,
        event.task_id,
        time.seconds if time else 0,
        time.nanos if time else -1,
    )


class RunSnapshot(Snapshot):
    """`WorkflowRun.Snapshot`: the run's state at `originator_version`, without its events."""

    TOPIC: ClassVar[str] = "runhistory:WorkflowRun.Snapshot"

    @classmethod
    def take(cls, aggregate: MutableOrImmutableAggregate[Any]) -> RunSnapshot:
        from runhistory.domain.run import WorkflowRun  # run.py imports this module

        if not isinstance(aggregate, WorkflowRun):
            raise TypeError(f"a RunSnapshot is of a WorkflowRun, not {type(aggregate).__name__}")
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=cls.create_timestamp(),
            topic=get_topic(type(aggregate)),
            state=aggregate.snapshot_state(),
        )

    def mutate(self, _: None) -> WorkflowRun:
        from runhistory.domain.run import WorkflowRun  # run.py imports this module

        cls = resolve_topic(self.topic)
        if not (isinstance(cls, type) and issubclass(cls, WorkflowRun)):
            raise SnapshotError(f"snapshot topic {self.topic!r} is not a WorkflowRun")
        return cls.from_snapshot_state(self.originator_id, self.originator_version, self.state)

    def verify(self) -> None:
        """Raise SnapshotError unless the state is exactly what this version of runhistory
        wrote: its format, and a digest of its content that any alteration breaks."""
        verify(self.state)

    @property
    def mark(self) -> HistoryMark:
        return HistoryMark.from_json(_obj(self.state, "state").get("history"))

    def matches(self, first: HistoryEvent, last: HistoryEvent) -> bool:
        """Whether the store's first event and its event at this snapshot's version are the
        ones the snapshot was taken after. A run's events are append-only, so this fails
        only when they were removed or replaced behind the application's back."""
        mark = self.mark
        return (
            first.originator_version == 1
            and last.originator_version == self.originator_version
            and mark.first == fingerprint(first)
            and mark.last == fingerprint(last)
        )


register_topic(RunSnapshot.TOPIC, RunSnapshot)


# The state's JSON. Everything below raises SnapshotError (or KeyError/IndexError/ValueError,
# which readers treat alike) on a document it did not write.


def encode(
    key: RunKey | None,
    created_on: datetime,
    modified_on: datetime,
    state: RunState,
    mark: HistoryMark,
) -> dict[str, Any]:
    """A run's snapshot state as JSON-ready data."""
    doc = {
        "key": None if key is None else [key.namespace, key.workflow_id, key.run_id],
        "createdOn": created_on.isoformat(),
        "modifiedOn": modified_on.isoformat(),
        "state": {
            "entities": [
                [entity.value, [_record_json(k, r) for k, r in records.items()]]
                for entity, records in state.entities.items()
            ],
            "activityIds": [[name, sid] for name, sid in state.activity_ids.items()],
            "cancelRequestedBy": state.cancel_requested_by,
            "commandPhaseOf": state.command_phase_of,
        },
        "history": mark.to_json(),
    }
    return {"format": FORMAT, "digest": _digest(doc), **doc}


@dataclass(frozen=True, slots=True)
class Decoded:
    key: RunKey | None
    created_on: datetime
    modified_on: datetime
    state: RunState
    mark: HistoryMark


def decode(doc: Any) -> Decoded:
    """The parts of a snapshot state `encode` wrote; SnapshotError if it did not."""
    d = verify(doc)
    key = d["key"]
    return Decoded(
        key=None if key is None else RunKey(_str(key[1]), _str(key[2]), _str(key[0])),
        created_on=_time(d["createdOn"]),
        modified_on=_time(d["modifiedOn"]),
        state=_state(_obj(d["state"], "state")),
        mark=HistoryMark.from_json(d["history"]),
    )


def verify(doc: Any) -> dict[str, Any]:
    """The state without its format and digest, after checking both; else SnapshotError."""
    d = dict(_obj(doc, "snapshot state"))
    if d.pop("format", None) != FORMAT:
        raise SnapshotError(f"snapshot format {doc.get('format')!r}, expected {FORMAT!r}")
    if d.pop("digest", None) != _digest(d):
        raise SnapshotError("snapshot state does not match its digest: it was altered")
    return d


def _digest(doc: dict[str, Any]) -> str:
    # canonical JSON: what the state was before any store's encoding, whatever the store did
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _fingerprint(value: Any) -> Fingerprint | None:
    if value is None:
        return None
    return (_str(value[0]), _int(value[1]), _int(value[2]), _int(value[3]))


def _record_json(key: int | str, rec: EntityRecord) -> list[Any]:
    return [key, rec.state, rec.opened_by, rec.started_id, rec.cancel_id, rec.name]


def _state(d: dict[str, Any]) -> RunState:
    state = RunState()
    entities: dict[Entity, dict[int | str, EntityRecord]] = {e: {} for e in Entity}
    for name, records in d["entities"]:
        into = entities[Entity(name)]
        for key, st, opened_by, started_id, cancel_id, rec_name in records:
            if not isinstance(key, (int, str)) or isinstance(key, bool):
                raise SnapshotError(f"entity key {key!r} is neither an id nor a name")
            rec = EntityRecord(_str(st), _int(opened_by), _str(rec_name))
            rec.started_id, rec.cancel_id = _int(started_id), _int(cancel_id)
            into[key] = rec
    try:
        state.run = entities[Entity.RUN][0]
        state.workflow_task = entities[Entity.WORKFLOW_TASK][0]
    except KeyError:
        raise SnapshotError("snapshot state lacks the run or workflow-task record") from None
    state.entities = entities
    state.activity_ids = {_str(name): _int(sid) for name, sid in d["activityIds"]}
    state.cancel_requested_by = _int(d["cancelRequestedBy"])
    state.command_phase_of = _int(d["commandPhaseOf"])
    return state


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SnapshotError(f"{what} is not an object")
    return cast(dict[str, Any], value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SnapshotError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise SnapshotError(f"expected a string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise SnapshotError(f"expected true or false, got {value!r}")
    return value


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(_str(value))
