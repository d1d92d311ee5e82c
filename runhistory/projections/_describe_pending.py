"""The pending-work parts of `describe`: pending activities, children, workflow task, Nexus
operations and callbacks, in the shape of DescribeWorkflowExecutionResponse (semantics §5.2-5.3).
Only what history knows is written; see `describe`."""

from __future__ import annotations

from typing import Any

from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Duration, Timestamp
from runhistory.projections._common import E, attr
from runhistory.projections._fold import Entity, Fold
from runhistory.projections._protojson import MessageEncoder, encode_enum

__all__ = [
    "activity_json",
    "callbacks_json",
    "child_json",
    "nexus_json",
    "plus",
    "put",
    "workflow_task_json",
]


def plus(ts: Timestamp | None, d: Duration | None) -> Timestamp | None:
    if ts is None:
        return None
    return Timestamp.from_nanos(ts.total_nanos + (d.total_nanos if d else 0))


def put(target: dict[str, Any], key: str, message: object, enc: MessageEncoder) -> None:
    if message is not None:
        target[key] = enc(message)


def activity_json(entity: Entity, enc: MessageEncoder) -> dict[str, Any]:
    event = entity.opened
    a = event.attributes
    out: dict[str, Any] = {"activityId": a.activity_id}
    put(out, "activityType", a.activity_type, enc)
    if entity.cancel_requested is not None:  # GetActivityState: the flag wins over everything
        out["state"] = "PENDING_ACTIVITY_STATE_CANCEL_REQUESTED"
    policy = a.retry_policy
    if policy is not None and policy.maximum_attempts:
        out["maximumAttempts"] = policy.maximum_attempts
    if a.schedule_to_close_timeout is not None and a.schedule_to_close_timeout.total_nanos > 0:
        out["expirationTime"] = str(plus(event.event_time, a.schedule_to_close_timeout))
    put(out, "priority", a.priority, enc)
    options: dict[str, Any] = {}
    queue = a.task_queue
    if queue is not None:  # as the server rebuilds it from the activity's queue name
        options["taskQueue"] = {"name": queue.name, "normalName": queue.normal_name or queue.name}
    for key, name in (
        ("scheduleToCloseTimeout", "schedule_to_close_timeout"),
        ("scheduleToStartTimeout", "schedule_to_start_timeout"),
        ("startToCloseTimeout", "start_to_close_timeout"),
        ("heartbeatTimeout", "heartbeat_timeout"),
    ):
        value = getattr(a, name)
        if value is not None:
            options[key] = str(value)
    put(options, "retryPolicy", policy, enc)
    put(options, "priority", a.priority, enc)
    out["activityOptions"] = options
    return out


def child_json(entity: Entity) -> dict[str, Any]:
    event = entity.opened
    out: dict[str, Any] = {"workflowId": attr(event, "workflow_id", "")}
    run_id = getattr(attr(entity.started, "workflow_execution"), "run_id", "")
    if run_id:
        out["runId"] = run_id
    type_name = getattr(attr(event, "workflow_type"), "name", "")
    if type_name:
        out["workflowTypeName"] = type_name
    out["initiatedId"] = str(event.event_id)
    policy = attr(event, "parent_close_policy")
    if policy:
        out["parentClosePolicy"] = encode_enum(policy)
    return out


def workflow_task_json(folded: Fold, closed: bool, omitted: list[str]) -> dict[str, Any] | None:
    task = folded.pending_workflow_task
    if task is None:
        last = folded.workflow_tasks[-1] if folded.workflow_tasks else None
        owed = last is not None and last.closed is not None and not closed
        if owed and last is not None and last.closed is not None and _failed(last.closed, folded):
            omitted.append("pendingWorkflowTask (a transient attempt with no event, I10)")
        return None
    out: dict[str, Any] = {
        "state": "PENDING_WORKFLOW_TASK_STATE_" + ("STARTED" if task.started else "SCHEDULED")
    }
    if task.scheduled.event_time is not None:
        out["scheduledTime"] = str(task.scheduled.event_time)
    if task.started is not None and task.started.event_time is not None:
        out["startedTime"] = str(task.started.event_time)
    out["attempt"] = task.attempt
    omitted.append("pendingWorkflowTask.originalScheduledTime")
    return out


def _failed(event: HistoryEvent, folded: Fold) -> bool:
    return event.event_type != E.WORKFLOW_TASK_COMPLETED and event is not folded.reset


def nexus_json(entity: Entity, enc: MessageEncoder) -> dict[str, Any]:
    event = entity.opened
    a = event.attributes
    out: dict[str, Any] = {"endpoint": a.endpoint, "service": a.service, "operation": a.operation}
    started = entity.started
    if started is not None and started.attributes.operation_id:
        out["operationId"] = started.attributes.operation_id
    if a.schedule_to_close_timeout is not None:
        out["scheduleToCloseTimeout"] = str(a.schedule_to_close_timeout)
    if event.event_time is not None:
        out["scheduledTime"] = str(event.event_time)
    if started is not None:
        out["state"] = "PENDING_NEXUS_OPERATION_STATE_STARTED"
    out["scheduledEventId"] = str(event.event_id)
    if started is not None and started.attributes.operation_token:
        out["operationToken"] = started.attributes.operation_token
    for key, name in (
        ("scheduleToStartTimeout", "schedule_to_start_timeout"),
        ("startToCloseTimeout", "start_to_close_timeout"),
    ):
        value = getattr(a, name)
        if value is not None:
            out[key] = str(value)
    requested = entity.cancel_requested
    if requested is not None and requested.event_time is not None:
        out["cancellationInfo"] = {"requestedTime": str(requested.event_time)}
    return out


def callbacks_json(
    run: WorkflowRun, options_updates: list[HistoryEvent], enc: MessageEncoder
) -> list[dict[str, Any]]:
    """Callback registrations: STARTED `completion_callbacks` and OPTIONS_UPDATED attachments.
    Their state and attempts live outside history."""
    out: list[dict[str, Any]] = []
    sources: list[tuple[HistoryEvent, Any]] = [
        (run.history[0], attr(run.history[0], "completion_callbacks", ()) or ()),
        *((e, attr(e, "attached_completion_callbacks", ()) or ()) for e in options_updates),
    ]
    for event, callbacks in sources:
        for callback in callbacks:
            entry: dict[str, Any] = {"callback": enc(callback), "trigger": {"workflowClosed": {}}}
            if event.event_time is not None:
                entry["registrationTime"] = str(event.event_time)
            out.append(entry)
    return out
