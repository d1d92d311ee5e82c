"""`findings`: things in a run's history worth a person's attention.

A check is any callable `run -> Iterable[Finding]`; `findings(run, checks)` runs them in order.
`DEFAULT_CHECKS` holds the built-in ones below; pass your own tuple to add or drop some.
Thresholds are Temporal's defaults (semantics §4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from runhistory.domain.enums import TaskQueueKind, TimeoutType, WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Timestamp
from runhistory.projections._common import E, attr, durable
from runhistory.projections._fold import activities
from runhistory.projections.size import history_size_bytes

__all__ = [
    "DEFAULT_CHECKS",
    "Check",
    "Finding",
    "activity_timeouts",
    "continue_as_new_refused",
    "findings",
    "history_limits",
    "long_activities_without_heartbeat",
    "signals_after_last_workflow_task",
    "sticky_schedule_to_start_timeouts",
    "workflow_task_problems",
]

INFO, WARNING, ERROR = "info", "warning", "error"
EVENTS_WARN, EVENTS_ERROR = 10_240, 51_200  # limit.historyCount.warn / .error
SIZE_WARN, SIZE_ERROR = 10 * 1024 * 1024, 50 * 1024 * 1024  # limit.historySize.warn / .error
NEAR_TIMEOUT = 0.9  # an activity that used this share of its start-to-close timeout
LONG_ACTIVITY_NANOS = 60 * 1_000_000_000  # ran this long with no heartbeat timeout
LONG_TIMEOUT_NANOS = 10 * 60 * 1_000_000_000  # or was allowed this long


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation: a stable `rule` id, `severity` (info, warning, error), the events it is
    about and a sentence for a person."""

    rule: str
    severity: str
    message: str
    event_ids: tuple[int, ...] = ()


Check = Callable[[WorkflowRun], Iterable[Finding]]


def history_limits(run: WorkflowRun, *, size: int | None = None) -> Iterable[Finding]:
    """Near Temporal's history limits: 10,240 events warns, 51,200 events or 50 MiB terminates.
    `size`: the run's `history_size_bytes`, when the caller has already computed it."""
    count = len(durable(run))
    if count >= EVENTS_ERROR:
        yield Finding("history-count-limit", ERROR, f"{count} events: at the {EVENTS_ERROR} limit")
    elif count >= EVENTS_WARN:
        yield Finding(
            "history-count-warn",
            WARNING,
            f"{count} events: past the warning level "
            f"{EVENTS_WARN}; the server terminates at {EVENTS_ERROR}",
        )
    if size is None:
        size = history_size_bytes(run)
    if size >= SIZE_ERROR:
        yield Finding("history-size-limit", ERROR, f"history is {size} bytes: at the 50 MiB limit")
    elif size >= SIZE_WARN:
        yield Finding(
            "history-size-warn",
            WARNING,
            f"history is {size} bytes: past 10 MiB; the server terminates at 50 MiB",
        )
    suggested = [e.event_id for e in run.history if attr(e, "suggest_continue_as_new", False)]
    if suggested:
        yield Finding(
            "continue-as-new-suggested",
            INFO,
            f"the server suggested continue-as-new {len(suggested)} time(s)",
            tuple(suggested),
        )


def workflow_task_problems(run: WorkflowRun) -> Iterable[Finding]:
    """Workflow tasks that failed or timed out, non-determinism first among them, and tasks
    that needed retries (transient attempts, I10)."""
    for event in run.history:
        kind = event.event_type
        if kind == E.WORKFLOW_TASK_FAILED:
            cause = attr(event, "cause")
            if cause in (
                WorkflowTaskFailedCause.RESET_WORKFLOW,
                WorkflowTaskFailedCause.UNHANDLED_COMMAND,
            ):
                continue  # a reset, or reported by continue_as_new_refused
            message = str(getattr(attr(event, "failure"), "message", ""))
            if cause == WorkflowTaskFailedCause.NON_DETERMINISTIC_ERROR:
                yield Finding(
                    "non-determinism", ERROR, f"non-determinism: {message}", (event.event_id,)
                )
            else:
                name = getattr(cause, "name", str(cause))
                yield Finding(
                    "workflow-task-failed",
                    WARNING,
                    f"workflow task failed ({name}): {message}".rstrip(": "),
                    (event.event_id,),
                )
        elif kind == E.WORKFLOW_TASK_TIMED_OUT:
            timeout = attr(event, "timeout_type")
            if timeout != TimeoutType.SCHEDULE_TO_START:  # sticky ones: see below
                yield Finding(
                    "workflow-task-timed-out",
                    WARNING,
                    f"workflow task timed out ({getattr(timeout, 'name', timeout)})",
                    (event.event_id,),
                )
        elif kind == E.WORKFLOW_TASK_SCHEDULED and int(attr(event, "attempt", 1) or 1) > 1:
            yield Finding(
                "workflow-task-retried",
                WARNING,
                f"a workflow task needed {event.attributes.attempt} attempts",
                (event.event_id,),
            )


def sticky_schedule_to_start_timeouts(run: WorkflowRun) -> Iterable[Finding]:
    """A sticky workflow task nobody picked up in time: the worker that cached the run is gone
    or overloaded, so the task went back to the normal queue."""
    scheduled = {}
    for event in run.history:
        if event.event_type == E.WORKFLOW_TASK_SCHEDULED:
            scheduled[event.event_id] = event
        elif event.event_type == E.WORKFLOW_TASK_TIMED_OUT and attr(event, "timeout_type") == (
            TimeoutType.SCHEDULE_TO_START
        ):
            task = scheduled.get(attr(event, "scheduled_event_id", 0))
            queue = attr(task, "task_queue")
            sticky = getattr(queue, "kind", 0) == TaskQueueKind.STICKY
            yield Finding(
                "sticky-schedule-to-start-timeout" if sticky else "workflow-task-schedule-to-start",
                WARNING if sticky else INFO,
                f"workflow task not picked up from {'sticky ' if sticky else ''}queue "
                f"{getattr(queue, 'name', '')} in time",
                (event.event_id,),
            )


def activity_timeouts(run: WorkflowRun) -> Iterable[Finding]:
    """Activities that timed out, and completed ones that used ≥ 90% of their start-to-close
    timeout (the next slow run times out)."""
    for activity in activities(run).values():
        done, start = activity.closed, activity.started
        ids = tuple(e.event_id for e in (activity.opened, start, done) if e is not None)
        name = f"activity {attr(activity.opened, 'activity_id', '')}"
        if done is not None and done.event_type == E.ACTIVITY_TASK_TIMED_OUT:
            info = getattr(attr(done, "failure"), "timeout_failure_info", None)
            timeout = getattr(getattr(info, "timeout_type", None), "name", "")
            yield Finding("activity-timed-out", WARNING, f"{name} timed out ({timeout})", ids)
            continue
        limit = attr(activity.opened, "start_to_close_timeout")
        if (
            done is not None
            and start is not None
            and limit is not None
            and limit.total_nanos > 0
            and done.event_time is not None
            and start.event_time is not None
            and (done.event_time - start.event_time).total_nanos >= NEAR_TIMEOUT * limit.total_nanos
        ):
            yield Finding(
                "activity-near-timeout",
                WARNING,
                f"{name} ran "
                f"{done.event_time - start.event_time} of its {limit} start-to-close "
                "timeout",
                ids,
            )


def long_activities_without_heartbeat(run: WorkflowRun) -> Iterable[Finding]:
    """Long activities with no heartbeat timeout: a dead worker is noticed only at the end of
    the start-to-close timeout."""
    for activity in activities(run).values():
        scheduled = activity.opened
        heartbeat = attr(scheduled, "heartbeat_timeout")
        if heartbeat is not None and heartbeat.total_nanos > 0:
            continue
        limit = attr(scheduled, "start_to_close_timeout") or attr(
            scheduled, "schedule_to_close_timeout"
        )
        ran = None
        begin, end = _time(activity.started), _time(activity.closed)
        if begin is not None and end is not None:
            ran = (end - begin).total_nanos
        long_run = ran is not None and ran >= LONG_ACTIVITY_NANOS
        long_limit = limit is not None and limit.total_nanos >= LONG_TIMEOUT_NANOS
        if long_run or long_limit:
            what = f"ran {ran / 1e9:.0f}s" if long_run and ran is not None else f"may run {limit}"
            yield Finding(
                "no-heartbeat-timeout",
                WARNING,
                f"activity {attr(scheduled, 'activity_id', '')} {what} with no heartbeat timeout",
                (scheduled.event_id,),
            )


def _time(event: HistoryEvent | None) -> Timestamp | None:
    return None if event is None else event.event_time


def signals_after_last_workflow_task(run: WorkflowRun) -> Iterable[Finding]:
    """Signals that arrived after the last completed workflow task of a closed run: the
    workflow code never saw them."""
    if not run.is_closed:
        return
    last_completed = 0
    for event in run.history:
        if event.event_type == E.WORKFLOW_TASK_COMPLETED:
            last_completed = event.event_id
    late = [
        e.event_id
        for e in run.history
        if e.event_type == E.WORKFLOW_EXECUTION_SIGNALED and e.event_id > last_completed
    ]
    if late:
        yield Finding(
            "signal-not-handled",
            WARNING,
            f"{len(late)} signal(s) arrived after the "
            "last completed workflow task and were never handled",
            tuple(late),
        )


def continue_as_new_refused(run: WorkflowRun) -> Iterable[Finding]:
    """A close command (continue-as-new, complete, fail) refused because signals or other events
    arrived during the workflow task (UNHANDLED_COMMAND): the worker had to run again."""
    events = run.history
    for index, event in enumerate(events):
        if event.event_type == E.WORKFLOW_TASK_FAILED and attr(event, "cause") == (
            WorkflowTaskFailedCause.UNHANDLED_COMMAND
        ):
            arrivals = _same_txn_after(events, index)
            yield Finding(
                "unhandled-command",
                WARNING,
                "a close command (e.g. continue-as-new) "
                f"was refused: {len(arrivals)} new event(s) arrived while the workflow "
                "task ran",
                (event.event_id, *arrivals),
            )


def _same_txn_after(events: Sequence[object], index: int) -> list[int]:
    out = []
    prev = events[index]
    for event in events[index + 1 :]:
        if getattr(event, "task_id", 0) != getattr(prev, "task_id", 0) + 1:
            break
        if getattr(event, "event_type", None) != E.WORKFLOW_TASK_SCHEDULED:
            out.append(int(getattr(event, "event_id", 0)))
        prev = event
    return out


DEFAULT_CHECKS: tuple[Check, ...] = (
    history_limits,
    workflow_task_problems,
    sticky_schedule_to_start_timeouts,
    activity_timeouts,
    long_activities_without_heartbeat,
    signals_after_last_workflow_task,
    continue_as_new_refused,
)


def findings(run: WorkflowRun, checks: Iterable[Check] = DEFAULT_CHECKS) -> list[Finding]:
    """Run every check over the run and collect what they found, in check order."""
    return [finding for check in checks for finding in check(run)]
