"""`audit`: who did what to the run, and when.

Only actions that come from outside the workflow's own code are listed: the start, signals,
updates (accepted and completed), cancel requests, termination, resets, option updates, pause
and unpause. Each entry carries what history records about its author: `identity` (the client
or worker name), `principal` (the authenticated caller, on servers that record it), the
`reason` given and the `request_id` used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runhistory.domain.enums import ContinueAsNewInitiator, WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Timestamp
from runhistory.projections._common import E

__all__ = ["AuditEntry", "audit"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One outside action. `action` is one of: started, signaled, update_admitted,
    update_accepted, update_completed, cancel_requested, terminated, reset, options_updated,
    paused, unpaused. `principal` is `type:name` when the server recorded one."""

    event_id: int
    time: Timestamp | None
    action: str
    identity: str = ""
    principal: str = ""
    reason: str = ""
    request_id: str = ""
    detail: str = ""


def audit(run: WorkflowRun) -> list[AuditEntry]:
    """Every outside action in history order (the copied prefix of a reset run included)."""
    entries: list[AuditEntry] = []
    for event in run.history:
        entry = _entry(event)
        if entry is not None:
            entries.append(entry)
    return entries


def _principal(event: HistoryEvent) -> str:
    principal = event.principal
    if principal is None:
        return ""
    kind, name = getattr(principal, "type", ""), getattr(principal, "name", "")
    return f"{kind}:{name}" if kind else str(name)


def _make(event: HistoryEvent, action: str, **fields: str) -> AuditEntry:
    return AuditEntry(
        event.event_id, event.event_time, action, principal=_principal(event), **fields
    )


def _execution(execution: object) -> str:
    if execution is None:
        return ""
    return f"{getattr(execution, 'workflow_id', '')}/{getattr(execution, 'run_id', '')}"


def _entry(event: HistoryEvent) -> AuditEntry | None:
    kind = event.event_type
    a = event.attributes
    if kind == E.WORKFLOW_EXECUTION_STARTED:
        return _make(event, "started", identity=a.identity, detail=_start_detail(a))
    if kind == E.WORKFLOW_EXECUTION_SIGNALED:
        sender = _execution(a.external_workflow_execution)
        detail = f"signal {a.signal_name}" + (f" from workflow {sender}" if sender else "")
        return _make(event, "signaled", identity=a.identity, request_id=a.request_id, detail=detail)
    if kind in (E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED, E.WORKFLOW_EXECUTION_UPDATE_ADMITTED):
        request = a.accepted_request if kind == E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED else a.request
        meta = getattr(request, "meta", None)
        name = getattr(getattr(request, "input", None), "name", "")
        action = (
            "update_accepted" if kind == E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED else "update_admitted"
        )
        return _make(
            event,
            action,
            identity=str(getattr(meta, "identity", "")),
            request_id=str(getattr(request, "request_id", "")),
            detail=f"update {getattr(meta, 'update_id', '')} ({name})",
        )
    if kind == E.WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        failure = getattr(a.outcome, "failure", None)
        verdict = f"failed: {failure.message}" if failure is not None else "succeeded"
        return _make(
            event,
            "update_completed",
            identity=str(getattr(a.meta, "identity", "")),
            detail=f"update {getattr(a.meta, 'update_id', '')} {verdict}",
        )
    if kind == E.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
        sender = _execution(a.external_workflow_execution)
        return _make(
            event,
            "cancel_requested",
            identity=a.identity,
            reason=a.cause,
            detail=f"from workflow {sender}" if sender else "",
        )
    if kind == E.WORKFLOW_EXECUTION_TERMINATED:
        return _make(event, "terminated", identity=a.identity, reason=a.reason)
    if kind == E.WORKFLOW_TASK_FAILED and a.cause == WorkflowTaskFailedCause.RESET_WORKFLOW:
        return _make(
            event,
            "reset",
            identity=a.identity,
            reason=str(getattr(a.failure, "message", "")),
            detail=f"base run {a.base_run_id} -> new run {a.new_run_id}",
        )
    if kind == E.WORKFLOW_EXECUTION_OPTIONS_UPDATED:
        return _make(
            event,
            "options_updated",
            identity=a.identity,
            request_id=a.attached_request_id,
            detail=_options_detail(a),
        )
    if kind in (E.WORKFLOW_EXECUTION_PAUSED, E.WORKFLOW_EXECUTION_UNPAUSED):
        action = "paused" if kind == E.WORKFLOW_EXECUTION_PAUSED else "unpaused"
        return _make(event, action, identity=a.identity, reason=a.reason, request_id=a.request_id)
    return None


_INITIATORS = {
    ContinueAsNewInitiator.WORKFLOW: "continued as new from run",
    ContinueAsNewInitiator.RETRY: "retry of run",
    ContinueAsNewInitiator.CRON_SCHEDULE: "cron run after",
}


def _start_detail(a: Any) -> str:
    parts = []
    parent = _execution(a.parent_workflow_execution)
    if parent:
        parts.append(f"child of {parent}")
    if a.continued_execution_run_id:
        how = _INITIATORS.get(a.initiator, "continued from run")
        parts.append(f"{how} {a.continued_execution_run_id}")
    if a.cron_schedule:
        parts.append(f"cron {a.cron_schedule}")
    return "; ".join(parts)


def _options_detail(a: Any) -> str:
    changed = []
    if a.versioning_override is not None:
        changed.append("versioning override set")
    if a.unset_versioning_override:
        changed.append("versioning override unset")
    if a.priority is not None:
        changed.append("priority")
    if a.attached_completion_callbacks:
        changed.append(f"{len(a.attached_completion_callbacks)} callback(s) attached")
    if a.attached_request_id:
        changed.append("request id attached")
    if a.time_skipping_config is not None:
        changed.append("time skipping")
    return ", ".join(changed)
