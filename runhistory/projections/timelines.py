"""`timeline` and `run_durations`: what ran when, how long it took, and how it ended.

One row per activity, workflow task, timer, child, Nexus operation, update and external
signal/cancel request, plus point rows for signals received. Times are the events' own: an
activity's `started` is its *last* attempt's real start (the deferred ACTIVITY_TASK_STARTED
carries it, I8/I11), so earlier attempts show only in `attempts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runhistory.domain.enums import PROTO_PREFIX, TaskQueueKind
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Duration, Timestamp
from runhistory.projections._common import E, attr
from runhistory.projections._fold import Entity, Fold, WorkflowTask, fold

__all__ = ["RunDurations", "TimelineRow", "run_durations", "timeline"]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One entity's life. `outcome` is the closing event's verb (COMPLETED, FAILED, TIMED_OUT,
    CANCELED, TERMINATED, FIRED, SIGNALED, RECEIVED, …), PENDING while the run is open and
    ABANDONED if the run closed first. `attempts` is None where history does not record it."""

    kind: str
    key: str
    name: str
    scheduled: Timestamp | None
    started: Timestamp | None
    closed: Timestamp | None
    outcome: str
    attempts: int | None
    event_ids: tuple[int, ...]
    failure: str = ""
    detail: str = ""

    @property
    def queued(self) -> Duration | None:
        """Scheduled to started (for an activity: of its last attempt, after any retries)."""
        return _between(self.scheduled, self.started)

    @property
    def running(self) -> Duration | None:
        """Started to closed."""
        return _between(self.started, self.closed)

    @property
    def total(self) -> Duration | None:
        """Scheduled to closed."""
        return _between(self.scheduled, self.closed)


def _between(a: Timestamp | None, b: Timestamp | None) -> Duration | None:
    return None if a is None or b is None else b - a


def timeline(run: WorkflowRun) -> list[TimelineRow]:
    """Every entity of the run as a row, in the order the entities were opened."""
    folded = fold(run)
    closed = run.is_closed
    rows: list[TimelineRow] = []
    rows += (_workflow_task(t) for t in folded.workflow_tasks)
    rows += (_activity(a, closed) for a in folded.activities.values())
    rows += (_timer(t, closed) for t in folded.timers.values())
    rows += (_child(c, closed) for c in folded.children.values())
    rows += (_nexus(n, closed) for n in folded.nexus.values())
    rows += (_external("external_signal", x, closed) for x in folded.signals_out.values())
    rows += (_external("external_cancel", x, closed) for x in folded.cancels_out.values())
    rows += (_signal(s) for s in folded.signals)
    rows += _updates(folded, closed)
    rows.sort(key=lambda row: row.event_ids[0] if row.event_ids else 0)
    return rows


_VERBS = {
    E.START_CHILD_WORKFLOW_EXECUTION_FAILED: "START_FAILED",
    E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED: "CANCEL_REQUESTED",
}


def _verb(event: HistoryEvent | None, open_outcome: str) -> str:
    """The closing event's verb: ..._COMPLETED -> COMPLETED, ..._TIMED_OUT -> TIMED_OUT."""
    if event is None:
        return open_outcome
    if event.event_type in _VERBS:
        return _VERBS[event.event_type]
    name = event.event_type.name
    return "TIMED_OUT" if name.endswith("TIMED_OUT") else name.rsplit("_", 1)[-1]


def _ids(*events: HistoryEvent | None) -> tuple[int, ...]:
    return tuple(sorted(e.event_id for e in events if e is not None))


def _time(event: HistoryEvent | None) -> Timestamp | None:
    return None if event is None else event.event_time


def _failure_text(event: HistoryEvent | None) -> str:
    failure = attr(event, "failure")
    if failure is None:
        return ""
    text = str(getattr(failure, "message", ""))
    timeout = getattr(getattr(failure, "timeout_failure_info", None), "timeout_type", None)
    if timeout:
        text = f"{text} ({PROTO_PREFIX[type(timeout)]}{timeout.name})".strip()
    return text


def _pending(closed: bool) -> str:
    return "ABANDONED" if closed else "PENDING"


def _workflow_task(task: WorkflowTask) -> TimelineRow:
    done = task.closed
    failure = _failure_text(done)
    cause = attr(done, "cause")
    if cause:
        failure = f"{cause.name}: {failure}" if failure else cause.name
    timeout = attr(done, "timeout_type")
    queue = attr(task.scheduled, "task_queue")
    sticky = getattr(queue, "kind", 0) == TaskQueueKind.STICKY
    details = [
        name for name, on in (("sticky", sticky), (getattr(timeout, "name", ""), timeout)) if on
    ]
    return TimelineRow(
        kind="workflow_task",
        key=str(task.scheduled.event_id),
        name=str(getattr(queue, "normal_name", "") or getattr(queue, "name", "")),
        scheduled=_time(task.scheduled),
        started=_time(task.started),
        closed=_time(done),
        outcome=_verb(done, "PENDING" if task.durable else "PENDING_TRANSIENT"),
        attempts=task.attempt,
        event_ids=_ids(task.scheduled, task.started, done),
        failure=failure,
        detail=" ".join(details),
    )


def _activity(entity: Entity, closed: bool) -> TimelineRow:
    event, done = entity.opened, entity.closed
    attempts = attr(entity.started, "attempt") if entity.started else None
    return TimelineRow(
        kind="activity",
        key=str(attr(event, "activity_id", "")),
        name=str(getattr(attr(event, "activity_type"), "name", "")),
        scheduled=_time(event),
        started=_time(entity.started),
        closed=_time(done),
        outcome=_verb(done, "CANCEL_REQUESTED" if entity.cancel_requested else _pending(closed)),
        attempts=attempts,
        event_ids=_ids(event, entity.started, entity.cancel_requested, done),
        failure=_failure_text(done) or _failure_text(entity.started),
    )


def _timer(entity: Entity, closed: bool) -> TimelineRow:
    event, done = entity.opened, entity.closed
    timeout = attr(event, "start_to_fire_timeout")
    return TimelineRow(
        kind="timer",
        key=str(attr(event, "timer_id", "")),
        name=str(attr(event, "timer_id", "")),
        scheduled=_time(event),
        started=_time(event),
        closed=_time(done),
        outcome=_verb(done, _pending(closed)),
        attempts=None,
        event_ids=_ids(event, done),
        detail=f"start_to_fire {timeout}" if timeout is not None else "",
    )


def _child(entity: Entity, closed: bool) -> TimelineRow:
    event, done = entity.opened, entity.closed
    run_id = getattr(attr(entity.started, "workflow_execution"), "run_id", "")
    cause = attr(done, "cause") if done is not None else None
    return TimelineRow(
        kind="child",
        key=str(attr(event, "workflow_id", "")),
        name=str(getattr(attr(event, "workflow_type"), "name", "")),
        scheduled=_time(event),
        started=_time(entity.started),
        closed=_time(done),
        outcome=_verb(done, _pending(closed)),
        attempts=None,
        event_ids=_ids(event, entity.started, done),
        failure=_failure_text(done) or (cause.name if cause else ""),
        detail=f"run {run_id}" if run_id else "",
    )


def _nexus(entity: Entity, closed: bool) -> TimelineRow:
    event, done = entity.opened, entity.closed
    return TimelineRow(
        kind="nexus_operation",
        key=str(event.event_id),
        name=f"{attr(event, 'endpoint', '')}/{attr(event, 'service', '')}/"
        f"{attr(event, 'operation', '')}",
        scheduled=_time(event),
        started=_time(entity.started),
        closed=_time(done),
        outcome=_verb(done, _pending(closed)),
        attempts=None,
        event_ids=_ids(event, entity.started, entity.cancel_requested, entity.cancel_closed, done),
        failure=_failure_text(done),
    )


def _external(kind: str, entity: Entity, closed: bool) -> TimelineRow:
    event, done = entity.opened, entity.closed
    cause = attr(done, "cause") if done is not None else None
    return TimelineRow(
        kind=kind,
        key=str(getattr(attr(event, "workflow_execution"), "workflow_id", "")),
        name=str(attr(event, "signal_name", "")),
        scheduled=_time(event),
        started=None,
        closed=_time(done),
        outcome=_verb(done, _pending(closed)),
        attempts=None,
        event_ids=_ids(event, done),
        failure=cause.name if cause else "",
    )


def _signal(event: HistoryEvent) -> TimelineRow:
    sender = attr(event, "external_workflow_execution")
    return TimelineRow(
        kind="signal",
        key=str(attr(event, "signal_name", "")),
        name=str(attr(event, "signal_name", "")),
        scheduled=_time(event),
        started=None,
        closed=None,
        outcome="RECEIVED",
        attempts=None,
        event_ids=(event.event_id,),
        detail=f"from {sender.workflow_id}" if sender is not None else "",
    )


def _updates(folded: Fold, closed: bool) -> Iterable[TimelineRow]:
    for update in folded.updates.values():
        first = update.admitted or update.accepted or update.completed
        if first is None:
            continue
        request = attr(update.accepted, "accepted_request") or attr(update.admitted, "request")
        outcome = attr(update.completed, "outcome")
        failure = getattr(outcome, "failure", None)
        verdict = "FAILED" if failure is not None else "COMPLETED"
        yield TimelineRow(
            kind="update",
            key=update.update_id,
            name=str(getattr(getattr(request, "input", None), "name", "")),
            scheduled=_time(first),
            started=_time(update.accepted),
            closed=_time(update.completed),
            outcome=verdict if update.completed else _pending(closed),
            attempts=None,
            event_ids=_ids(update.admitted, update.accepted, update.completed),
            failure=str(getattr(failure, "message", "")) if failure is not None else "",
        )


@dataclass(frozen=True, slots=True)
class RunDurations:
    """How long the run took and where the time went. See `run_durations` for definitions."""

    total: Duration | None
    execution: Duration | None
    working: Duration
    waiting: Duration | None
    workflow_tasks: Duration
    activities: Duration
    queued: Duration
    closed: bool


def run_durations(run: WorkflowRun) -> RunDurations:
    """Definitions (all from event times; an open run is measured up to its last event):

    - `total`: first event to close (or to the last event of an open run);
    - `execution`: execution time (start + first workflow-task backoff) to close: the server's
      `executionDuration`; None while open;
    - `working`: time in which a worker held this run's work: the union of every workflow task's
      started→closed span and every activity's (last attempt's) started→closed span;
    - `waiting`: `total - working`: time spent on nothing but waiting (timers, signals, children,
      Nexus operations, backoffs, queues);
    - `workflow_tasks` / `activities`: the union of those spans alone;
    - `queued`: the union of scheduled→started spans of workflow tasks and activities (activity:
      last attempt only, so it includes retry backoff; an activity still pending is left out,
      as it may be running unseen)."""
    events = run.history
    start = events[0].event_time
    folded = fold(run)
    close = folded.close
    end = close.event_time if close is not None else _last_time(events)
    wft = [(_time(t.started), _time(t.closed) or end) for t in folded.workflow_tasks if t.started]
    act = [
        (_time(a.started), _time(a.closed) or end) for a in folded.activities.values() if a.started
    ]
    queued = [(_time(t.scheduled), _time(t.started) or end) for t in folded.workflow_tasks]
    queued += [  # a pending activity may be running unseen (I11): left out
        (_time(a.opened), _time(a.started or a.closed))
        for a in folded.activities.values()
        if a.started or a.closed
    ]
    total = _between(start, end)
    working = _union(wft + act)
    backoff = attr(events[0], "first_workflow_task_backoff")
    execution = None
    if close is not None and start is not None and close.event_time is not None:
        begin = Timestamp.from_nanos(start.total_nanos + (backoff.total_nanos if backoff else 0))
        execution = close.event_time - begin
    return RunDurations(
        total=total,
        execution=execution,
        working=working,
        waiting=None
        if total is None
        else Duration.from_nanos(total.total_nanos - working.total_nanos),
        workflow_tasks=_union(wft),
        activities=_union(act),
        queued=_union(queued),
        closed=close is not None,
    )


def _last_time(events: Iterable[HistoryEvent]) -> Timestamp | None:
    times = [e.event_time for e in events if e.event_time is not None]
    return max(times) if times else None


def _union(spans: Iterable[tuple[Timestamp | None, Timestamp | None]]) -> Duration:
    """Total length of the union of [a, b] spans (spans with a missing end are skipped)."""
    clean = sorted((a.total_nanos, b.total_nanos) for a, b in spans if a and b and b >= a)
    total = 0
    current_start = current_end = None
    for a, b in clean:
        if current_end is None or a > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = a, b
        else:
            current_end = max(current_end, b)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return Duration.from_nanos(total)
