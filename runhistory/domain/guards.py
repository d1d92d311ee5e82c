"""The conditions a transition puts on the event beyond its type: references that must match
the entity, adjacency of ids, attempts, causes. Each guard returns None when it holds, else the
reason it does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runhistory.domain.enums import TimeoutType, WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.state import EntityRecord, RunState
from runhistory.domain.transitions import Entity

__all__ = ["GUARDS", "Guard"]

Guard = Callable[[RunState, EntityRecord | None, HistoryEvent], str | None]


def _a(event: HistoryEvent) -> Any:
    return event.attributes


def _first_event(state: RunState, rec: EntityRecord | None, event: HistoryEvent) -> str | None:
    return None if event.originator_version == 1 else "the run must start with event 1"


def _first_cancel_request(
    state: RunState, rec: EntityRecord | None, ev: HistoryEvent
) -> str | None:
    if state.cancel_requested_by:
        return f"cancel was already requested by event {state.cancel_requested_by}"
    return None


def _first_attempt(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    attempt = _a(ev).attempt
    return None if attempt <= 1 else f"attempt {attempt} may only be scheduled after a failure"


def _retry_attempt(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    return None if _a(ev).attempt > 1 else "a first attempt is not a transient task"


def _refs_scheduled(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    ref = _a(ev).scheduled_event_id
    if ref != rec.opened_by:
        return f"scheduledEventId {ref} is not the pending task's {rec.opened_by}"
    return None


def _follows_scheduled(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    if ev.originator_version != rec.opened_by + 1:
        return f"a transient task's start must directly follow its schedule event {rec.opened_by}"
    return None


def _follows_started(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    if ev.originator_version != rec.started_id + 1:
        return f"a started workflow task closes directly after its start event {rec.started_id}"
    return None


def _refs_started(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    ref = _a(ev).started_event_id
    if ref != rec.started_id:
        return f"startedEventId {ref} is not the started event {rec.started_id}"
    return None


def _never_started(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    ref = _a(ev).started_event_id
    return None if ref == 0 else f"startedEventId {ref} names a start that never happened"


def _not_schedule_to_start(
    state: RunState, rec: EntityRecord | None, ev: HistoryEvent
) -> str | None:
    if _a(ev).timeout_type == TimeoutType.SCHEDULE_TO_START:
        return "a started task cannot time out before it started"
    return None


def _schedule_to_start(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    if _a(ev).timeout_type != TimeoutType.SCHEDULE_TO_START:
        return "a task that never started can only time out SCHEDULE_TO_START"
    return None


def _pause_before_start(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    if _a(ev).cause != WorkflowTaskFailedCause.WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED:
        return "a task that never started fails only for a pause or a reset"
    return None


def _reset_cause(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    if _a(ev).cause != WorkflowTaskFailedCause.RESET_WORKFLOW:
        return "a task that never started fails only for a pause or a reset"
    return None


def _unique_activity_id(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    activity_id = _a(ev).activity_id
    other = state.activity_ids.get(activity_id)
    if other is not None:
        return f"activity id {activity_id!r} is still pending from event {other}"
    return None


def _timeout_before_start(
    state: RunState, rec: EntityRecord | None, ev: HistoryEvent
) -> str | None:
    failure = _a(ev).failure
    info = failure.timeout_failure_info if failure is not None else None
    kind = info.timeout_type if info is not None else TimeoutType.UNSPECIFIED
    if kind in (TimeoutType.START_TO_CLOSE, TimeoutType.HEARTBEAT):
        return f"an activity that never started cannot time out {kind.name}"
    return None


def _refs_cancel_request(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    attrs = _a(ev)
    if hasattr(attrs, "requested_event_id"):  # Nexus cancel-request result
        ref, want = attrs.requested_event_id, rec.opened_by
        name = "requestedEventId"
    else:
        ref, want = attrs.latest_cancel_requested_event_id, rec.cancel_id
        name = "latestCancelRequestedEventId"
    if ref != want:
        return f"{name} {ref} is not the cancel request {want}"
    return None


def _refs_timer_started(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    ref = _a(ev).started_event_id
    if ref != rec.opened_by:
        return f"startedEventId {ref} is not timer {rec.name!r}'s start event {rec.opened_by}"
    return None


def _refs_accepted(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    assert rec is not None
    ref = _a(ev).accepted_event_id
    if ref != rec.started_id:
        return f"acceptedEventId {ref} is not the update's acceptance {rec.started_id}"
    return None


def _nexus_operation_pending(
    state: RunState, rec: EntityRecord | None, ev: HistoryEvent
) -> str | None:
    scheduled = _a(ev).scheduled_event_id
    if state.record(Entity.NEXUS_OPERATION, scheduled) is None:
        return f"no Nexus operation scheduled by event {scheduled} is pending"
    return None


def _run_not_paused(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    if state.run.state == "PAUSED":
        return "no workflow task is scheduled while the run is paused (only UNPAUSED schedules one)"
    return None


def _no_scheduled_task(state: RunState, rec: EntityRecord | None, ev: HistoryEvent) -> str | None:
    wft = state.workflow_task
    if wft.state in ("SCHEDULED", "SCHEDULED_T"):
        return (
            f"a pause first fails the scheduled workflow task {wft.opened_by}"
            " (WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED)"
        )
    return None


GUARDS: dict[str, Guard] = {
    "run_not_paused": _run_not_paused,
    "no_scheduled_task": _no_scheduled_task,
    "first_event": _first_event,
    "first_cancel_request": _first_cancel_request,
    "first_attempt": _first_attempt,
    "retry_attempt": _retry_attempt,
    "refs_scheduled": _refs_scheduled,
    "follows_scheduled": _follows_scheduled,
    "follows_started": _follows_started,
    "refs_started": _refs_started,
    "never_started": _never_started,
    "not_schedule_to_start": _not_schedule_to_start,
    "schedule_to_start": _schedule_to_start,
    "pause_before_start": _pause_before_start,
    "reset_cause": _reset_cause,
    "unique_activity_id": _unique_activity_id,
    "timeout_before_start": _timeout_before_start,
    "refs_cancel_request": _refs_cancel_request,
    "refs_timer_started": _refs_timer_started,
    "refs_accepted": _refs_accepted,
    "nexus_operation_pending": _nexus_operation_pending,
}
