"""Which entity an event moves, and under which key (temporal-semantics.md §2.1 and §2.3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runhistory.domain.enums import EventType as E
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.transitions import Entity

__all__ = ["ROUTES", "SINGLETONS", "STAMPS", "Route"]

Key = int | str
Route = tuple[Entity, Callable[[HistoryEvent], Key]]

SINGLETONS = frozenset({Entity.RUN, Entity.WORKFLOW_TASK})


def _own_id(event: HistoryEvent) -> Key:
    return event.originator_version


def _attr(name: str) -> Callable[[HistoryEvent], Key]:
    def key(event: HistoryEvent) -> Key:
        value: Key = getattr(event.attributes, name)
        return value

    key.__name__ = f"attributes.{name}"
    return key


def _singleton(event: HistoryEvent) -> Key:
    return 0


def _admitted_update_id(event: HistoryEvent) -> Key:
    request: Any = event.attributes.request
    meta = request.meta if request is not None else None
    return meta.update_id if meta is not None else ""


def _completed_update_id(event: HistoryEvent) -> Key:
    meta: Any = event.attributes.meta
    return meta.update_id if meta is not None else ""


_scheduled = _attr("scheduled_event_id")
_initiated = _attr("initiated_event_id")

ROUTES: dict[E, Route] = {
    **{
        ev: (Entity.RUN, _singleton)
        for ev in (
            E.WORKFLOW_EXECUTION_STARTED,
            E.WORKFLOW_EXECUTION_COMPLETED,
            E.WORKFLOW_EXECUTION_FAILED,
            E.WORKFLOW_EXECUTION_TIMED_OUT,
            E.WORKFLOW_EXECUTION_CANCELED,
            E.WORKFLOW_EXECUTION_TERMINATED,
            E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            E.WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            E.WORKFLOW_EXECUTION_SIGNALED,
            E.WORKFLOW_EXECUTION_PAUSED,
            E.WORKFLOW_EXECUTION_UNPAUSED,
            E.WORKFLOW_EXECUTION_OPTIONS_UPDATED,
            E.WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED,
            E.MARKER_RECORDED,
            E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            E.WORKFLOW_PROPERTIES_MODIFIED,
            E.WORKFLOW_PROPERTIES_MODIFIED_EXTERNALLY,
            E.ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY,
            E.WORKFLOW_EXECUTION_UPDATE_REJECTED,
        )
    },
    **{
        ev: (Entity.WORKFLOW_TASK, _singleton)
        for ev in (
            E.WORKFLOW_TASK_SCHEDULED,
            E.WORKFLOW_TASK_STARTED,
            E.WORKFLOW_TASK_COMPLETED,
            E.WORKFLOW_TASK_FAILED,
            E.WORKFLOW_TASK_TIMED_OUT,
        )
    },
    E.ACTIVITY_TASK_SCHEDULED: (Entity.ACTIVITY, _own_id),
    **{
        ev: (Entity.ACTIVITY, _scheduled)
        for ev in (
            E.ACTIVITY_TASK_STARTED,
            E.ACTIVITY_TASK_COMPLETED,
            E.ACTIVITY_TASK_FAILED,
            E.ACTIVITY_TASK_TIMED_OUT,
            E.ACTIVITY_TASK_CANCEL_REQUESTED,
            E.ACTIVITY_TASK_CANCELED,
        )
    },
    **{
        ev: (Entity.TIMER, _attr("timer_id"))
        for ev in (E.TIMER_STARTED, E.TIMER_FIRED, E.TIMER_CANCELED)
    },
    E.START_CHILD_WORKFLOW_EXECUTION_INITIATED: (Entity.CHILD_WORKFLOW, _own_id),
    **{
        ev: (Entity.CHILD_WORKFLOW, _initiated)
        for ev in (
            E.START_CHILD_WORKFLOW_EXECUTION_FAILED,
            E.CHILD_WORKFLOW_EXECUTION_STARTED,
            E.CHILD_WORKFLOW_EXECUTION_COMPLETED,
            E.CHILD_WORKFLOW_EXECUTION_FAILED,
            E.CHILD_WORKFLOW_EXECUTION_CANCELED,
            E.CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
            E.CHILD_WORKFLOW_EXECUTION_TERMINATED,
        )
    },
    E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: (Entity.EXTERNAL_SIGNAL, _own_id),
    E.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED: (Entity.EXTERNAL_SIGNAL, _initiated),
    E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: (Entity.EXTERNAL_SIGNAL, _initiated),
    E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: (Entity.EXTERNAL_CANCEL, _own_id),
    E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED: (Entity.EXTERNAL_CANCEL, _initiated),
    E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: (Entity.EXTERNAL_CANCEL, _initiated),
    E.WORKFLOW_EXECUTION_UPDATE_ADMITTED: (Entity.UPDATE, _admitted_update_id),
    E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED: (Entity.UPDATE, _attr("protocol_instance_id")),
    E.WORKFLOW_EXECUTION_UPDATE_COMPLETED: (Entity.UPDATE, _completed_update_id),
    E.NEXUS_OPERATION_SCHEDULED: (Entity.NEXUS_OPERATION, _own_id),
    **{
        ev: (Entity.NEXUS_OPERATION, _scheduled)
        for ev in (
            E.NEXUS_OPERATION_STARTED,
            E.NEXUS_OPERATION_COMPLETED,
            E.NEXUS_OPERATION_FAILED,
            E.NEXUS_OPERATION_CANCELED,
            E.NEXUS_OPERATION_TIMED_OUT,
        )
    },
    **{
        ev: (Entity.NEXUS_CANCEL, _scheduled)
        for ev in (
            E.NEXUS_OPERATION_CANCEL_REQUESTED,
            E.NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED,
            E.NEXUS_OPERATION_CANCEL_REQUEST_FAILED,
        )
    },
}

# The event id an event stamps on its entity: the "started" or "cancel requested" reference
# that later events must quote back.
STAMPS: dict[E, str] = {
    E.WORKFLOW_TASK_STARTED: "started_id",
    E.ACTIVITY_TASK_STARTED: "started_id",
    E.CHILD_WORKFLOW_EXECUTION_STARTED: "started_id",
    E.NEXUS_OPERATION_STARTED: "started_id",
    E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "started_id",
    E.ACTIVITY_TASK_CANCEL_REQUESTED: "cancel_id",
}
