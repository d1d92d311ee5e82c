"""`pending`: the work a run is still waiting on, as history shows it.

The semantic view is empty once the run has closed: nothing more can happen to it. The server's
own describe keeps what was pending at close (its mutable state is frozen, §5); ask for that with
`at_close=True`. Only what history can tell is reported: an activity's STARTED state, attempt and
heartbeats are invisible (I11), so an activity is SCHEDULED or CANCEL_REQUESTED here.
"""

from __future__ import annotations

from dataclasses import dataclass

from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Timestamp
from runhistory.projections._common import E, attr
from runhistory.projections._fold import Entity, Fold, Update, fold

__all__ = ["PendingItem", "PendingWork", "pending", "pending_from"]


@dataclass(frozen=True, slots=True)
class PendingItem:
    """One pending entity: `kind` (activity, timer, child, nexus_operation, update,
    external_signal, external_cancel, workflow_task), its `key` (activity id, timer id, child
    workflow id, update id, …), the event that opened it, a display `name`, the `state` history
    shows, and since when."""

    kind: str
    key: str
    event_id: int
    name: str = ""
    state: str = ""
    since: Timestamp | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class PendingWork:
    """Everything pending, by kind. `workflow_task` is None when no task is owed."""

    activities: tuple[PendingItem, ...] = ()
    timers: tuple[PendingItem, ...] = ()
    children: tuple[PendingItem, ...] = ()
    nexus_operations: tuple[PendingItem, ...] = ()
    updates: tuple[PendingItem, ...] = ()
    external_signals: tuple[PendingItem, ...] = ()
    external_cancels: tuple[PendingItem, ...] = ()
    workflow_task: PendingItem | None = None

    @property
    def items(self) -> tuple[PendingItem, ...]:
        task = (self.workflow_task,) if self.workflow_task else ()
        return (
            *self.activities,
            *self.timers,
            *self.children,
            *self.nexus_operations,
            *self.updates,
            *self.external_signals,
            *self.external_cancels,
            *task,
        )

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)


def pending(run: WorkflowRun, *, at_close: bool = False) -> PendingWork:
    """What the run waits on. Empty for a closed run unless `at_close` (server parity)."""
    if run.is_closed and not at_close:
        return PendingWork()
    return pending_from(fold(run), closed=run.is_closed)


def pending_from(folded: Fold, *, closed: bool) -> PendingWork:
    """`pending` from an existing fold (shared with `describe`)."""
    return PendingWork(
        activities=tuple(_activity(a) for a in folded.activities.values() if a.open),
        timers=tuple(_timer(t) for t in folded.timers.values() if t.open),
        children=tuple(_child(c) for c in folded.children.values() if c.open),
        nexus_operations=tuple(_nexus(n) for n in folded.nexus.values() if n.open),
        updates=() if closed else tuple(filter(None, map(_update, folded.updates.values()))),
        external_signals=tuple(
            _external("external_signal", e) for e in folded.signals_out.values() if e.open
        ),
        external_cancels=tuple(
            _external("external_cancel", e) for e in folded.cancels_out.values() if e.open
        ),
        workflow_task=_workflow_task(folded, closed),
    )


def _timer(entity: Entity) -> PendingItem:
    event = entity.opened
    key = str(attr(event, "timer_id", ""))
    return PendingItem("timer", key, event.event_id, key, "STARTED", event.event_time)


def _external(kind: str, entity: Entity) -> PendingItem:
    event = entity.opened
    workflow_id = str(getattr(attr(event, "workflow_execution"), "workflow_id", ""))
    name = str(attr(event, "signal_name", ""))
    return PendingItem(kind, workflow_id, event.event_id, name, "INITIATED", event.event_time)


def _activity(entity: Entity) -> PendingItem:
    event = entity.opened
    state = "CANCEL_REQUESTED" if entity.cancel_requested is not None else "SCHEDULED"
    return PendingItem(
        "activity",
        str(attr(event, "activity_id", "")),
        event.event_id,
        str(getattr(attr(event, "activity_type"), "name", "")),
        state,
        event.event_time,
    )


def _child(entity: Entity) -> PendingItem:
    event = entity.opened
    return PendingItem(
        "child",
        str(attr(event, "workflow_id", "")),
        event.event_id,
        str(getattr(attr(event, "workflow_type"), "name", "")),
        "STARTED" if entity.started is not None else "INITIATED",
        (entity.started or event).event_time,
    )


def _nexus(entity: Entity) -> PendingItem:
    event = entity.opened
    state = "STARTED" if entity.started is not None else "SCHEDULED"
    if entity.cancel_requested is not None:
        state += "+CANCEL_REQUESTED"
    return PendingItem(
        "nexus_operation",
        str(event.event_id),
        event.event_id,
        f"{attr(event, 'service', '')}/{attr(event, 'operation', '')}",
        state,
        event.event_time,
    )


def _update(update: Update) -> PendingItem | None:
    """An update accepted (or re-admitted after a reset) and not completed; an update admitted
    in memory only is invisible (§2.3)."""
    event = update.accepted or update.admitted
    if event is None or update.completed is not None:
        return None
    state = "ACCEPTED" if update.accepted else "ADMITTED"
    return PendingItem(
        "update", update.update_id, event.event_id, _update_name(event), state, event.event_time
    )


def _update_name(event: object) -> str:
    request = getattr(getattr(event, "attributes", None), "accepted_request", None) or getattr(
        getattr(event, "attributes", None), "request", None
    )
    return str(getattr(getattr(request, "input", None), "name", ""))


def _workflow_task(folded: Fold, closed: bool) -> PendingItem | None:
    task = folded.pending_workflow_task
    if task is None:
        last = folded.workflow_tasks[-1] if folded.workflow_tasks else None
        if closed or folded.pause is not None or last is None or last.closed is None:
            return None
        if last.closed.event_type == E.WORKFLOW_TASK_COMPLETED or last.closed is folded.reset:
            return None
        # failed or timed out: a transient attempt is owed and writes nothing (I10)
        return PendingItem("workflow_task", "", last.closed.event_id, "", "TRANSIENT")
    state = "STARTED" if task.started is not None else "SCHEDULED"
    return PendingItem(
        "workflow_task",
        str(task.scheduled.event_id),
        task.scheduled.event_id,
        "",
        state,
        (task.started or task.scheduled).event_time,
        task.attempt,
    )
