"""`WorkflowRun`: one Temporal run as an eventsourcing aggregate whose version is the event id."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, OriginatorVersionError

from runhistory.domain.decide import decide
from runhistory.domain.enums import EventType
from runhistory.domain.errors import EventOutOfSequence, HistoryError, InvalidHistory
from runhistory.domain.event_base import HistoryEvent, HistoryStarted
from runhistory.domain.evolve import evolve
from runhistory.domain.run_key import RunKey
from runhistory.domain.snapshot import HistoryMark, RunSnapshot, SnapshotError, decode, encode
from runhistory.domain.state import RunState
from runhistory.domain.transitions import CLOSE_EVENTS, Entity

__all__ = ["HistoryLoader", "HistoryNotLoaded", "WorkflowRun", "non_durable_tail"]

HistoryLoader = Callable[[int], Sequence[HistoryEvent]]
"""Given a version N, the run's stored events 1..N in order (injected by the application)."""


class HistoryNotLoaded(RuntimeError):
    """The run was rebuilt from a snapshot and its earlier events cannot be had: no loader was
    attached, or the one attached did not give the events the snapshot stands for."""


class WorkflowRun(Aggregate):
    """A workflow run's history, refusing any event a Temporal server could not have written.

    Create one with `WorkflowRun.start(started_event)` and grow it with `record(event)`; both
    decide first and only then evolve. `history` is the run's events in order; replay from a
    store goes through `apply` only and never re-validates.

    A run rebuilt from a snapshot (`WorkflowRun.Snapshot`) holds only the events after it; the
    ones before stay in the store until `history` is first read, when the loader the
    application attached (`attach_history`) fetches them. Properties that need only a summary
    of them (`status`, `durable_length`, `is_closed`) never load them."""

    TOPIC: ClassVar[str] = "runhistory:WorkflowRun"

    class Created(Aggregate.Created):
        """Unused: a run is created by its WorkflowExecutionStarted event instead."""

        TOPIC = "runhistory:WorkflowRun.Created"

    Snapshot = RunSnapshot

    def __init__(self, run_key: RunKey | None = None) -> None:
        self._key = run_key
        self._state = RunState()
        # the events held here; with a snapshot, only those after `_mark.length`
        self._history: list[HistoryEvent] = []
        # the events left in the store when rebuilt from a snapshot, else None
        self._mark: HistoryMark | None = None
        self._loader: HistoryLoader | None = None

    @classmethod
    def start(cls, event: HistoryStarted) -> WorkflowRun:
        """Create the run from its WorkflowExecutionStarted event (event 1)."""
        if event.originator_version != 1:
            raise _out_of_sequence(event, expected=1)
        decide(RunState(), event)
        run = event.mutate(None)
        assert isinstance(run, WorkflowRun)
        run.pending_events.append(event)
        return run

    def record(self, event: HistoryEvent, *, errors: list[HistoryError] | None = None) -> None:
        """Validate `event` as the next one and apply it. With an `errors` list (collect-all
        mode) a refused event is noted there and skipped, and the run resynchronises on it."""
        try:
            expected = self.version + 1
            if event.originator_version != expected:
                raise _out_of_sequence(event, expected)
            lookup = decide(self._state, event)
        except HistoryError as e:
            if errors is None:
                raise
            errors.append(e)
            if event.originator_version > self.version:
                self._history.append(event)
                self.version = event.originator_version
            return
        # decided above, so apply directly rather than through eventsourcing's mutate(),
        # which would only repeat the id and version checks
        evolve(self._state, event, lookup)
        self._history.append(event)
        self._version = event.originator_version
        self._modified_on = event.timestamp
        self._pending_events.append(event)

    def record_all(self, events: Iterable[HistoryEvent], *, collect_all: bool = False) -> None:
        """Record many events; in collect-all mode raise one InvalidHistory naming them all."""
        if not collect_all:
            for event in events:
                self.record(event)
            return
        errors: list[HistoryError] = []
        for event in events:
            self.record(event, errors=errors)
        if errors:
            raise InvalidHistory(errors)

    def evolve(self, event: HistoryEvent) -> None:
        """Apply an accepted event (called by `HistoryEvent.apply`)."""
        evolve(self._state, event)
        self._history.append(event)

    @property
    def key(self) -> RunKey | None:
        """(namespace, workflow id, run id), when the run was created with one."""
        return self._key

    @property
    def history(self) -> Sequence[HistoryEvent]:
        """Every event of the run in event-id order, including a non-durable tail (I13).
        After a rebuild from a snapshot, the first read loads the earlier events (once)."""
        if self._mark is not None:
            self._load_history(self._mark)
        return self._history

    @property
    def durable_length(self) -> int:
        """Events the server has persisted: all but a trailing `taskId`-less workflow-task tail
        (I13). A history that carries no task ids at all is taken as wholly durable."""
        if self._mark is not None:
            mark = self._mark.extend(self._history)
            return mark.length - mark.non_durable_tail
        return len(self._history) - non_durable_tail(self._history)

    @property
    def history_loaded(self) -> bool:
        """False while the events before a snapshot are still only in the store."""
        return self._mark is None

    def attach_history(self, loader: HistoryLoader) -> None:
        """Give a run rebuilt from a snapshot the means to load its earlier events. The
        domain does no I/O, so the application that rebuilt it supplies this. Keep `loader` a
        plain function: copies of the run (eventsourcing's cache deep-copies) share it."""
        if self._mark is not None:
            self._loader = loader

    def _load_history(self, mark: HistoryMark) -> None:
        if self._loader is None:
            raise HistoryNotLoaded(
                f"run {self._key or self.id} was rebuilt from a snapshot at event {mark.length}"
                " and has no loader for the events before it (see attach_history)"
            )
        earlier = list(self._loader(mark.length))
        # the loader reads the store the snapshot was checked against; still, a history that
        # silently lacked events would be worse than an error
        if HistoryMark().extend(earlier) != mark:
            raise HistoryNotLoaded(
                f"run {self._key or self.id}: the store gave {len(earlier)} events that do not"
                f" match the snapshot taken at event {mark.length}"
            )
        earlier.extend(self._history)
        self._history = earlier
        self._mark = None
        self._loader = None

    def snapshot_state(self) -> dict[str, Any]:
        """The state `WorkflowRun.Snapshot` stores: everything but the events."""
        mark = (self._mark or HistoryMark()).extend(self._history)
        return encode(self._key, self._created_on, self._modified_on, self._state, mark)

    @classmethod
    def from_snapshot_state(cls, run_id: UUID, version: int, doc: Any) -> WorkflowRun:
        """The run as `snapshot_state` described it, with its events left in the store.
        Raises SnapshotError if `doc` is not a snapshot state this version wrote."""
        parts = decode(doc)
        if parts.mark.length != version:
            raise SnapshotError(
                f"snapshot at version {version} stands for {parts.mark.length} events"
            )
        # as eventsourcing's Created event builds an aggregate: no event is triggered
        run = cls.__new__(cls)
        run.__base_init__(run_id, version, parts.created_on)
        cls.__init__(run, parts.key)
        run._modified_on = parts.modified_on
        run._state = parts.state
        run._mark = parts.mark
        return run

    @property
    def state(self) -> RunState:
        """The validation state: the live entities and their states."""
        return self._state

    @property
    def status(self) -> str:
        """RUNNING, PAUSED or the close event's status (COMPLETED, FAILED, ...)."""
        if self._state.run.state != "CLOSED":
            return self._state.run.state
        close = self._last_close()
        assert close is not None
        return _STATUS[close[1]]

    @property
    def close_event(self) -> HistoryEvent | None:
        close = self._last_close()
        if close is None:
            return None
        if self._mark is not None and close[0] <= self._mark.length:
            self._load_history(self._mark)  # it is among the events before the snapshot
        for event in reversed(self._history):
            if event.originator_version == close[0]:
                return event
        raise AssertionError(f"close event {close[0]} not in the run's history")

    def _last_close(self) -> tuple[int, EventType] | None:
        """(event id, type) of the last close event, without loading events a snapshot left
        in the store."""
        for event in reversed(self._history):
            if event.event_type in CLOSE_EVENTS:
                return event.originator_version, event.event_type
        return self._mark.close if self._mark is not None else None

    @property
    def is_closed(self) -> bool:
        return self._state.run.state == "CLOSED"

    def pending(self, entity: Entity) -> dict[int | str, Any]:
        """Live entities of one kind, by key (activities by scheduled id, timers by timer id...)."""
        return dict(self._state.entities[entity])


_STATUS = {
    EventType.WORKFLOW_EXECUTION_COMPLETED: "COMPLETED",
    EventType.WORKFLOW_EXECUTION_FAILED: "FAILED",
    EventType.WORKFLOW_EXECUTION_TIMED_OUT: "TIMED_OUT",
    EventType.WORKFLOW_EXECUTION_CANCELED: "CANCELED",
    EventType.WORKFLOW_EXECUTION_TERMINATED: "TERMINATED",
    EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}


_TAIL_TYPES = frozenset({EventType.WORKFLOW_TASK_SCHEDULED, EventType.WORKFLOW_TASK_STARTED})


def non_durable_tail(events: Sequence[HistoryEvent]) -> int:
    """How many trailing events form the transient/speculative tail an SDK fetch appends."""
    count = 0
    for event in reversed(events):
        if event.task_id != 0 or event.event_type not in _TAIL_TYPES:
            break
        count += 1
    if count == len(events) or events[len(events) - count - 1].task_id == 0:
        return 0
    return count


def _out_of_sequence(event: HistoryEvent, expected: int) -> EventOutOfSequence:
    error = EventOutOfSequence(
        event_id=event.originator_version,
        event_type=event.type_name,
        entity=Entity.RUN.value,
        key="event ids",
        state=f"at event {expected - 1}",
        allowed=[f"event {expected}"],
        reason=f"expected event id {expected}, got {event.originator_version}",
        rule="I1",
    )
    OriginatorVersionError.__init__(error, str(error))
    return error
