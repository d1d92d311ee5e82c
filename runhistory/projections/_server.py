"""Reconcile a history-derived describe with the server's own DescribeWorkflowExecution JSON.

Fields history cannot know are copied from the server and named in `runhistory.fromServer`;
fields both know that disagree are named in `runhistory.mismatches` (the history-derived value is
kept, so the disagreement stays visible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COMPARED", "merge_server"]

COMPARED = (
    "status",
    "historyLength",
    "historySizeBytes",
    "closeTime",
    "startTime",
    "executionTime",
    "taskQueue",
)
"""The `workflowExecutionInfo` fields history derives exactly, and so compares."""

_LISTS = {
    "pendingActivities": "activityId",
    "pendingChildren": "initiatedId",
    "pendingNexusOperations": "scheduledEventId",
}


def merge_server(result: dict[str, Any], server: Mapping[str, Any]) -> None:
    """Fill `result` in place from `server` (see the module doc)."""
    notes = result.setdefault("runhistory", {})
    filled: list[str] = []
    mismatches: list[str] = []
    for section in ("workflowExecutionInfo", "executionConfig", "workflowExtendedInfo"):
        mine = result.setdefault(section, {})
        theirs = server.get(section) or {}
        missing = [key for key in theirs if key not in mine]
        for key in missing:
            mine[key] = theirs[key]
        filled += (f"{section}.{key}" for key in missing)
    info, server_info = result["workflowExecutionInfo"], server.get("workflowExecutionInfo") or {}
    mismatches += (
        f"workflowExecutionInfo.{key}"
        for key in COMPARED
        if key in server_info and str(server_info[key]) != str(info.get(key))
    )
    for name, key in _LISTS.items():
        mine_list = result.get(name) or []
        theirs_list = server.get(name) or []
        by_key = {str(item.get(key)): item for item in theirs_list}
        if sorted(by_key) != sorted(str(item.get(key)) for item in mine_list):
            mismatches.append(name)
        for item in mine_list:
            for field, value in by_key.get(str(item.get(key)), {}).items():
                if field not in item:
                    item[field] = value
                    filled.append(f"{name}[{item.get(key)}].{field}")
    task, server_task = result.get("pendingWorkflowTask"), server.get("pendingWorkflowTask")
    if (task or {}).get("state") != (server_task or {}).get("state"):
        mismatches.append("pendingWorkflowTask.state")
    if server_task and task:
        for field, value in server_task.items():
            task.setdefault(field, value)
    elif server_task:
        result["pendingWorkflowTask"] = dict(server_task)
        filled.append("pendingWorkflowTask")
    if server.get("callbacks") and result.get("callbacks"):
        for item, theirs in zip(result["callbacks"], server["callbacks"], strict=False):
            for field, value in theirs.items():
                item.setdefault(field, value)
    notes["fromServer"] = filled
    notes["mismatches"] = mismatches
