"""`describe`: Temporal's DescribeWorkflowExecutionResponse, as far as history can tell.

The result uses the proto3 JSON field names of `temporal workflow describe -o json`, so it can be
diffed against the server's. Like the server, a closed run keeps the activities, children, Nexus
operations and workflow task that were pending when it closed (semantics §5). What history cannot
know (an activity's attempt, heartbeats or STARTED state while pending, a reset run's start time,
the server's system search attributes, …; §5.1-5.3) is left out and listed under the extra
top-level key `runhistory.omitted`; nothing is guessed. `runhistory.stateTransitions` gives the
bounds of the derived `stateTransitionCount`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.projections._common import E, attr
from runhistory.projections._describe_pending import (
    activity_json,
    callbacks_json,
    child_json,
    nexus_json,
    plus,
    put,
    workflow_task_json,
)
from runhistory.projections._fold import Fold, fold
from runhistory.projections._index import index
from runhistory.projections._protojson import MessageEncoder, encode_message
from runhistory.projections._server import merge_server
from runhistory.projections.size import history_size_bytes
from runhistory.projections.transitions import StateTransitions, transitions_from

__all__ = ["describe"]

_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what the server shows for "none"
_NULL = b"binary/null"


def describe(
    run: WorkflowRun,
    *,
    server_describe: Mapping[str, Any] | None = None,
    encode: MessageEncoder | None = None,
) -> dict[str, Any]:
    """The run's DescribeWorkflowExecutionResponse as proto3 JSON, derived from history alone.

    With `server_describe` (the server's own response as JSON) the fields history cannot know are
    filled in from it and listed in `runhistory.fromServer`, and derivable fields that disagree
    are listed in `runhistory.mismatches`. `encode` replaces the built-in message encoder."""
    enc = encode or encode_message
    idx = index(run)
    folded = fold(run, idx, open_only=True)
    stc = transitions_from(idx, server_count=_server_count(server_describe))
    omitted: list[str] = []
    info = _execution_info(run, folded, stc, enc, omitted)
    result: dict[str, Any] = {
        "executionConfig": _execution_config(run, enc),
        "workflowExecutionInfo": info,
    }
    pending_activities = [activity_json(a, enc) for a in folded.activities.values() if a.open]
    if pending_activities:
        result["pendingActivities"] = pending_activities
        omitted.append("pendingActivities[].state/attempt/scheduledTime/heartbeat*/last*")
    children = [child_json(c) for c in folded.children.values() if c.open]
    if children:
        result["pendingChildren"] = children
    task = workflow_task_json(folded, run.is_closed, omitted)
    if task:
        result["pendingWorkflowTask"] = task
    callbacks = callbacks_json(run, folded.options_updates, enc)
    if callbacks:
        result["callbacks"] = callbacks
        omitted.append("callbacks[].state/attempt/lastAttempt*")
    nexus = [nexus_json(n, enc) for n in folded.nexus.values() if n.open]
    if nexus:
        result["pendingNexusOperations"] = nexus
    result["workflowExtendedInfo"] = _extended_info(run, folded, enc, omitted)
    result["runhistory"] = {
        "source": "history",
        "stateTransitions": _stc_json(stc),
        "omitted": omitted,
    }
    if server_describe is not None:
        merge_server(result, server_describe)
    return result


def _server_count(server: Mapping[str, Any] | None) -> int | None:
    value = (server or {}).get("workflowExecutionInfo", {}).get("stateTransitionCount")
    return int(value) if value is not None else None


def _stc_json(stc: StateTransitions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "value": str(stc.value),
        "exact": stc.exact,
        "lower": str(stc.lower),
        "upper": None if stc.upper is None else str(stc.upper),
        "reasons": list(stc.reasons),
    }
    if stc.server is not None:
        out["server"] = str(stc.server)
    return out


def _execution_info(
    run: WorkflowRun,
    folded: Fold,
    stc: StateTransitions,
    enc: MessageEncoder,
    omitted: list[str],
) -> dict[str, Any]:
    started = run.history[0]
    attrs = started.attributes
    key = run.key
    info: dict[str, Any] = {
        "execution": {
            "workflowId": (key.workflow_id if key else "") or attr(started, "workflow_id", ""),
            "runId": key.run_id if key else attr(started, "original_execution_run_id", ""),
        }
    }
    put(info, "type", attr(started, "workflow_type"), enc)
    start = None if folded.reset is not None else started.event_time
    execution_time = plus(start, attr(started, "first_workflow_task_backoff"))
    if start is None:
        omitted.append(
            "workflowExecutionInfo.startTime/executionTime/executionDuration (reset run)"
        )
    else:
        info["startTime"] = str(start)
    close = folded.close
    if close is not None and close.event_time is not None:
        info["closeTime"] = str(close.event_time)
    info["status"] = "WORKFLOW_EXECUTION_STATUS_" + run.status
    info["historyLength"] = str(folded.durable_count)
    if execution_time is not None:
        info["executionTime"] = str(execution_time)
    info["memo"] = _merged(started, folded.memo_updates, "memo", enc)
    search = _merged(started, folded.search_attribute_updates, "search_attributes", enc)
    if search:
        info["searchAttributes"] = search
    omitted.append(
        "workflowExecutionInfo.searchAttributes: server-set system attributes (BuildIds, …)"
    )
    points = _reset_points(run, folded, enc)
    info["autoResetPoints"] = {"points": points} if points else {}
    queue = attr(started, "task_queue")
    if queue is not None and queue.name:
        info["taskQueue"] = queue.name
    info["stateTransitionCount"] = str(stc.value)
    info["historySizeBytes"] = str(history_size_bytes(run))  # cheap: server checkpoints
    put(info, "parentExecution", attr(started, "parent_workflow_execution"), enc)
    parent_namespace_id = str(attr(started, "parent_workflow_namespace_id", "") or "")
    if parent_namespace_id:
        info["parentNamespaceId"] = parent_namespace_id
    stamp = _last_worker_version(folded)
    put(info, "mostRecentWorkerVersionStamp", stamp, enc)
    if close is not None and close.event_time is not None and execution_time is not None:
        info["executionDuration"] = str(close.event_time - execution_time)
    root = attr(started, "root_workflow_execution")
    info["rootExecution"] = enc(root) if root is not None else dict(info["execution"])
    if attr(started, "first_execution_run_id", ""):
        info["firstRunId"] = attrs.first_execution_run_id
    options = folded.options_updates
    put(info, "priority", _latest_option(options, "priority", attr(started, "priority")), enc)
    override = _latest_option(options, "versioning_override", attr(started, "versioning_override"))
    if override is not None:
        info["versioningInfo"] = {"versioningOverride": _override(override, enc)}
    return info


def _override(override: Any, enc: MessageEncoder) -> dict[str, Any]:
    """A VersioningOverride as the server echoes it: with the deprecated `behavior` filled in
    from the newer `auto_upgrade` / `pinned` form."""
    out: dict[str, Any] = enc(override)
    if "behavior" not in out:
        if getattr(override, "auto_upgrade", None):
            out = {"behavior": "VERSIONING_BEHAVIOR_AUTO_UPGRADE", **out}
        elif getattr(override, "pinned", None) is not None:
            out = {"behavior": "VERSIONING_BEHAVIOR_PINNED", **out}
    return out


def _latest_option(updates: list[HistoryEvent], name: str, initial: object) -> object:
    """A run option as last set: STARTED, then WORKFLOW_EXECUTION_OPTIONS_UPDATED events."""
    value = initial
    for event in updates:
        if name == "versioning_override" and attr(event, "unset_versioning_override", False):
            value = None
        elif attr(event, name) is not None:
            value = attr(event, name)
    return value


def _merged(
    started: HistoryEvent, updates: list[HistoryEvent], field: str, enc: MessageEncoder
) -> dict[str, Any]:
    """Memo or search attributes as the run last set them: STARTED, then upserts; a null payload
    removes the key."""
    inner, json_inner, update_field = {
        "memo": ("fields", "fields", "upserted_memo"),
        "search_attributes": ("indexed_fields", "indexedFields", "search_attributes"),
    }[field]
    values: dict[str, Any] = {}
    for source in [attr(started, field), *(attr(e, update_field) for e in updates)]:
        for name, payload in (getattr(source, inner, None) or {}).items():
            if getattr(payload, "metadata", {}).get("encoding") == _NULL:
                values.pop(name, None)
            else:
                values[name] = payload
    if not values:
        return {}
    return {json_inner: {name: enc(p) for name, p in values.items()}}


def _reset_points(run: WorkflowRun, folded: Fold, enc: MessageEncoder) -> list[Any]:
    """Points carried over by continue-as-new, then one per new build id / binary checksum of
    this run's completed workflow tasks (capped at 20 like the server). `createTime` is the
    server's clock, not the event's, so it is left out of new points."""
    carried = getattr(attr(run.history[0], "prev_auto_reset_points"), "points", ()) or ()
    points = [enc(p) for p in carried]
    seen = {(getattr(p, "build_id", ""), getattr(p, "binary_checksum", "")) for p in carried}
    run_id = run.key.run_id if run.key else ""
    after = folded.reset.event_id if folded.reset is not None else 0
    for task in folded.workflow_tasks:
        done = task.closed
        if done is None or done.event_type != E.WORKFLOW_TASK_COMPLETED or done.event_id < after:
            continue
        build_id = str(getattr(attr(done, "worker_version"), "build_id", "") or "")
        checksum = str(attr(done, "binary_checksum", "") or "")
        if (build_id, checksum) in seen or not (build_id or checksum):
            continue
        seen.add((build_id, checksum))
        point: dict[str, Any] = {
            "runId": run_id,
            "firstWorkflowTaskCompletedId": str(done.event_id),
        }
        if checksum:
            point["binaryChecksum"] = checksum
        point["resettable"] = True
        if build_id:
            point["buildId"] = build_id
        points.append(point)
    return points[-20:]


def _last_worker_version(folded: Fold) -> object:
    for task in reversed(folded.workflow_tasks):
        done = task.closed
        if done is not None and done.event_type == E.WORKFLOW_TASK_COMPLETED:
            stamp = attr(done, "worker_version")
            if stamp is not None:
                return stamp
    return None


def _execution_config(run: WorkflowRun, enc: MessageEncoder) -> dict[str, Any]:
    started = run.history[0]
    config: dict[str, Any] = {}
    put(config, "taskQueue", attr(started, "task_queue"), enc)
    for key, name in (
        ("workflowExecutionTimeout", "workflow_execution_timeout"),
        ("workflowRunTimeout", "workflow_run_timeout"),
        ("defaultWorkflowTaskTimeout", "workflow_task_timeout"),
    ):
        value = attr(started, name)
        if value is not None:
            config[key] = str(value)
    put(config, "userMetadata", started.user_metadata, enc)
    return config


def _extended_info(
    run: WorkflowRun, folded: Fold, enc: MessageEncoder, omitted: list[str]
) -> dict[str, Any]:
    started = run.history[0]
    out: dict[str, Any] = {}
    expiration = attr(started, "workflow_execution_expiration_time")
    if expiration is not None and expiration.seconds > 0:
        out["executionExpirationTime"] = str(expiration)
    run_timeout = attr(started, "workflow_run_timeout")
    if folded.reset is None:
        has_timeout = run_timeout is not None and run_timeout.total_nanos > 0
        run_expiry = plus(started.event_time, run_timeout) if has_timeout else None
        if run_expiry is not None and expiration is not None and expiration.seconds > 0:
            run_expiry = min(run_expiry, expiration)  # a run never outlives its execution
        out["runExpirationTime"] = str(run_expiry) if run_expiry else _ZERO_TIME
    else:
        omitted.append("workflowExtendedInfo.lastResetTime/runExpirationTime (reset run)")
    if started.event_time is not None:
        out["originalStartTime"] = str(started.event_time)
    if folded.cancel_request is not None:
        out["cancelRequested"] = True
    if folded.pause is not None:
        pause: dict[str, Any] = {}
        if attr(folded.pause, "identity", ""):
            pause["identity"] = folded.pause.attributes.identity
        if folded.pause.event_time is not None:
            pause["pausedTime"] = str(folded.pause.event_time)
        if attr(folded.pause, "reason", ""):
            pause["reason"] = folded.pause.attributes.reason
        out["pauseInfo"] = pause
    omitted.append("workflowExtendedInfo.requestIdInfos/resetRunId")
    return out
