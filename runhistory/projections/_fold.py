"""One pass over a run's history that pairs every entity's events: the shared base of `pending`,
`describe` and `timeline`.

Entities are keyed as the server keys them (§2.3): activities and Nexus operations by scheduled
event id, timers by started event id (timer ids may be reused once closed), children and external
requests by initiated event id, updates by update id, workflow tasks by scheduled event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from runhistory.domain.enums import EventType, WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.transitions import CLOSE_EVENTS
from runhistory.projections._common import E, attr
from runhistory.projections._index import Index, index

__all__ = ["Entity", "Fold", "Update", "WorkflowTask", "activities", "fold", "update_id"]


@dataclass
class Entity:
    """An activity, timer, child, Nexus operation or external request: the event that opened it,
    the one that reported its start, the one that closed it, and a cancel request if any."""

    opened: HistoryEvent
    started: HistoryEvent | None = None
    closed: HistoryEvent | None = None
    cancel_requested: HistoryEvent | None = None
    cancel_closed: HistoryEvent | None = None

    @property
    def open(self) -> bool:
        return self.closed is None


@dataclass
class WorkflowTask:
    """One workflow task as history shows it; `durable` is False for the `task_id == 0` tail."""

    scheduled: HistoryEvent
    started: HistoryEvent | None = None
    closed: HistoryEvent | None = None
    durable: bool = True

    @property
    def attempt(self) -> int:
        return max(int(attr(self.scheduled, "attempt", 1) or 1), 1)


@dataclass
class Update:
    update_id: str
    admitted: HistoryEvent | None = None
    accepted: HistoryEvent | None = None
    completed: HistoryEvent | None = None


@dataclass
class Fold:
    """Every entity of a run, in order of opening. `durable_count` excludes the tail (I13)."""

    activities: dict[int, Entity] = field(default_factory=dict)
    timers: dict[int, Entity] = field(default_factory=dict)
    children: dict[int, Entity] = field(default_factory=dict)
    nexus: dict[int, Entity] = field(default_factory=dict)
    signals_out: dict[int, Entity] = field(default_factory=dict)
    cancels_out: dict[int, Entity] = field(default_factory=dict)
    updates: dict[str, Update] = field(default_factory=dict)
    workflow_tasks: list[WorkflowTask] = field(default_factory=list)
    signals: list[HistoryEvent] = field(default_factory=list)
    markers: list[HistoryEvent] = field(default_factory=list)
    options_updates: list[HistoryEvent] = field(default_factory=list)
    memo_updates: list[HistoryEvent] = field(default_factory=list)
    search_attribute_updates: list[HistoryEvent] = field(default_factory=list)
    cancel_request: HistoryEvent | None = None
    close: HistoryEvent | None = None
    pause: HistoryEvent | None = None  # the PAUSED event while paused
    reset: HistoryEvent | None = None  # this run's RESET_WORKFLOW workflow-task failure
    durable_count: int = 0
    tail: list[HistoryEvent] = field(default_factory=list)

    @property
    def pending_workflow_task(self) -> WorkflowTask | None:
        last = self.workflow_tasks[-1] if self.workflow_tasks else None
        return last if last is not None and last.closed is None else None


def update_id(event: HistoryEvent) -> str:
    """The update id an update event refers to."""
    attributes = event.attributes
    if event.event_type == E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        return str(attributes.protocol_instance_id or _request_id(attributes.accepted_request))
    if event.event_type == E.WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        return str(getattr(attributes.meta, "update_id", ""))
    return _request_id(attr(event, "request"))


def _request_id(request: object) -> str:
    return str(getattr(getattr(request, "meta", None), "update_id", ""))


_BY_SCHEDULED = (
    (E.ACTIVITY_TASK_STARTED, "activities", "started"),
    (E.ACTIVITY_TASK_COMPLETED, "activities", "closed"),
    (E.ACTIVITY_TASK_FAILED, "activities", "closed"),
    (E.ACTIVITY_TASK_TIMED_OUT, "activities", "closed"),
    (E.ACTIVITY_TASK_CANCELED, "activities", "closed"),
    (E.ACTIVITY_TASK_CANCEL_REQUESTED, "activities", "cancel_requested"),
    (E.NEXUS_OPERATION_STARTED, "nexus", "started"),
    (E.NEXUS_OPERATION_COMPLETED, "nexus", "closed"),
    (E.NEXUS_OPERATION_FAILED, "nexus", "closed"),
    (E.NEXUS_OPERATION_CANCELED, "nexus", "closed"),
    (E.NEXUS_OPERATION_TIMED_OUT, "nexus", "closed"),
    (E.NEXUS_OPERATION_CANCEL_REQUESTED, "nexus", "cancel_requested"),
    (E.NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED, "nexus", "cancel_closed"),
    (E.NEXUS_OPERATION_CANCEL_REQUEST_FAILED, "nexus", "cancel_closed"),
)
_BY_INITIATED = (
    (E.START_CHILD_WORKFLOW_EXECUTION_FAILED, "children", "closed"),
    (E.CHILD_WORKFLOW_EXECUTION_STARTED, "children", "started"),
    (E.CHILD_WORKFLOW_EXECUTION_COMPLETED, "children", "closed"),
    (E.CHILD_WORKFLOW_EXECUTION_FAILED, "children", "closed"),
    (E.CHILD_WORKFLOW_EXECUTION_CANCELED, "children", "closed"),
    (E.CHILD_WORKFLOW_EXECUTION_TIMED_OUT, "children", "closed"),
    (E.CHILD_WORKFLOW_EXECUTION_TERMINATED, "children", "closed"),
    (E.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED, "signals_out", "closed"),
    (E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED, "signals_out", "closed"),
    (E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "cancels_out", "closed"),
    (E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED, "cancels_out", "closed"),
)
_OPENS = (
    (E.ACTIVITY_TASK_SCHEDULED, "activities"),
    (E.NEXUS_OPERATION_SCHEDULED, "nexus"),
    (E.START_CHILD_WORKFLOW_EXECUTION_INITIATED, "children"),
    (E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, "signals_out"),
    (E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, "cancels_out"),
)
_WFT = (
    E.WORKFLOW_TASK_SCHEDULED,
    E.WORKFLOW_TASK_STARTED,
    E.WORKFLOW_TASK_COMPLETED,
    E.WORKFLOW_TASK_FAILED,
    E.WORKFLOW_TASK_TIMED_OUT,
)
_UPDATES = {
    E.WORKFLOW_EXECUTION_UPDATE_ADMITTED: "admitted",
    E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "accepted",
    E.WORKFLOW_EXECUTION_UPDATE_COMPLETED: "completed",
}


def fold(run: WorkflowRun, idx: Index | None = None, *, open_only: bool = False) -> Fold:
    """Pair up the events of every entity of the run (from the shared index, if given). With
    `open_only`, activities, children, Nexus operations and external requests that closed are
    left out (what `describe` needs, at a fraction of the cost on long histories)."""
    idx = idx or index(run)
    by_type = idx.by_type
    result = Fold(durable_count=len(idx.events), tail=idx.tail)
    closed: dict[str, set[int]] = {}
    if open_only:
        for kind, table, slot in _BY_SCHEDULED:
            if slot == "closed":
                ids = closed.setdefault(table, set())
                ids.update(e.attributes.scheduled_event_id for e in by_type[kind])
        for kind, table, slot in _BY_INITIATED:
            if slot == "closed":
                ids = closed.setdefault(table, set())
                ids.update(e.attributes.initiated_event_id for e in by_type[kind])
    for kind, table in _OPENS:
        entities = getattr(result, table)
        done = closed.get(table, set())
        for event in by_type[kind]:
            if event.event_id not in done:
                entities[event.event_id] = Entity(event)
    for kind, table, slot in _BY_SCHEDULED:
        if open_only and slot == "closed":
            continue
        entities = getattr(result, table)
        for event in by_type[kind]:
            entity = entities.get(event.attributes.scheduled_event_id)
            if entity is not None:
                setattr(entity, slot, event)
    for kind, table, slot in _BY_INITIATED:
        if open_only and slot == "closed":
            continue
        entities = getattr(result, table)
        for event in by_type[kind]:
            entity = entities.get(event.attributes.initiated_event_id)
            if entity is not None:
                setattr(entity, slot, event)
    _timers(result, idx)
    _workflow_tasks(result, idx.of(*_WFT), durable=True)
    _workflow_tasks(result, idx.tail, durable=False)
    for event in idx.of(*_UPDATES):
        key = update_id(event)
        update = result.updates.get(key)
        if update is None:
            update = result.updates[key] = Update(key)
        setattr(update, _UPDATES[event.event_type], event)
    result.signals = by_type[E.WORKFLOW_EXECUTION_SIGNALED]
    result.markers = by_type[E.MARKER_RECORDED]
    result.options_updates = by_type[E.WORKFLOW_EXECUTION_OPTIONS_UPDATED]
    result.memo_updates = by_type[E.WORKFLOW_PROPERTIES_MODIFIED]
    result.search_attribute_updates = by_type[E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    requests = by_type[E.WORKFLOW_EXECUTION_CANCEL_REQUESTED]
    result.cancel_request = requests[-1] if requests else None
    closes = idx.of(*CLOSE_EVENTS)
    result.close = closes[-1] if closes else None
    pauses = idx.of(E.WORKFLOW_EXECUTION_PAUSED, E.WORKFLOW_EXECUTION_UNPAUSED)
    if pauses and pauses[-1].event_type == E.WORKFLOW_EXECUTION_PAUSED:
        result.pause = pauses[-1]
    run_id = run.key.run_id if run.key else ""
    for event in by_type[E.WORKFLOW_TASK_FAILED]:
        if event.attributes.cause == WorkflowTaskFailedCause.RESET_WORKFLOW and (
            not run_id or event.attributes.new_run_id == run_id
        ):
            result.reset = event
    return result


_ACTIVITY_SLOTS = tuple((kind, slot) for kind, at, slot in _BY_SCHEDULED if at == "activities")
_ACTIVITY_KINDS = frozenset({E.ACTIVITY_TASK_SCHEDULED, *(kind for kind, _ in _ACTIVITY_SLOTS)})


def activities(run: WorkflowRun) -> dict[int, Entity]:
    """`fold(run).activities` alone, without indexing the whole history (the activity checks
    need nothing else). Activity events are never part of the non-durable tail, which holds
    workflow-task events only, so the whole history is scanned."""
    by_kind: dict[EventType, list[HistoryEvent]] = {}
    for event in run.history:
        kind = event.event_type
        if kind in _ACTIVITY_KINDS:
            bucket = by_kind.get(kind)
            if bucket is None:
                bucket = by_kind[kind] = []
            bucket.append(event)
    entities = {e.event_id: Entity(e) for e in by_kind.get(E.ACTIVITY_TASK_SCHEDULED, ())}
    for kind, slot in _ACTIVITY_SLOTS:  # in fold's order, so a later slot wins as it does there
        for event in by_kind.get(kind, ()):
            entity = entities.get(event.attributes.scheduled_event_id)
            if entity is not None:
                setattr(entity, slot, event)
    return entities


def _timers(result: Fold, idx: Index) -> None:
    open_timers: dict[str, int] = {}
    for event in idx.of(E.TIMER_STARTED, E.TIMER_FIRED, E.TIMER_CANCELED):
        attributes = event.attributes
        if event.event_type == E.TIMER_STARTED:
            result.timers[event.event_id] = Entity(event)
            open_timers[attributes.timer_id] = event.event_id
            continue
        started_id = attributes.started_event_id or open_timers.get(attributes.timer_id, 0)
        timer = result.timers.get(started_id)
        if timer is not None:
            timer.closed = event
        open_timers.pop(attributes.timer_id, None)


def _workflow_tasks(result: Fold, events: Sequence[HistoryEvent], *, durable: bool) -> None:
    tasks = result.workflow_tasks
    for event in events:
        kind = event.event_type
        if kind == E.WORKFLOW_TASK_SCHEDULED:
            tasks.append(WorkflowTask(event, durable=durable))
        elif tasks and tasks[-1].scheduled.event_id == attr(event, "scheduled_event_id", 0):
            if kind == E.WORKFLOW_TASK_STARTED:
                tasks[-1].started = event
            elif kind in _WFT:
                tasks[-1].closed = event
