"""Temporal's legal event order as data: one transition table per entity.

Each `Transition` says: an entity in one of `sources` may take `event` and then is in `target`,
provided every named guard holds (guards live in `guards.py`; they compare references such as
`scheduledEventId` with the entity). `ABSENT` is "no such entity" (never opened, or closed).
The validator, the docs and the table-driven tests all read these same tables.
References are to ../shared/docs/temporal-semantics.md (§2.2 invariants I1-I21, §2.3 tables).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runhistory.domain.enums import EventType as E

__all__ = [
    "ABSENT",
    "COMMAND_EVENTS",
    "CLOSE_EVENTS",
    "NEVER_WRITTEN",
    "SAME",
    "TABLES",
    "WFT_CLOSE_EVENTS",
    "Entity",
    "Transition",
    "allowed_events",
    "transitions_for",
]

ABSENT = "ABSENT"
SAME = "SAME"  # the entity stays in the state it was in


class Entity(enum.StrEnum):
    RUN = "run"
    WORKFLOW_TASK = "workflow task"
    ACTIVITY = "activity"
    TIMER = "timer"
    CHILD_WORKFLOW = "child workflow"
    EXTERNAL_SIGNAL = "external signal"
    EXTERNAL_CANCEL = "external cancel"
    UPDATE = "update"
    NEXUS_OPERATION = "nexus operation"
    NEXUS_CANCEL = "nexus cancel request"


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[str]
    event: E
    target: str
    guards: tuple[str, ...] = ()
    rule: str = ""


def _t(sources: str, event: E, target: str, *guards: str, rule: str = "") -> Transition:
    return Transition(frozenset(sources.split("|")), event, target, guards, rule)


CLOSE_EVENTS = frozenset(
    {
        E.WORKFLOW_EXECUTION_COMPLETED,
        E.WORKFLOW_EXECUTION_FAILED,
        E.WORKFLOW_EXECUTION_TIMED_OUT,
        E.WORKFLOW_EXECUTION_CANCELED,
        E.WORKFLOW_EXECUTION_TERMINATED,
        E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)

WFT_CLOSE_EVENTS = frozenset(
    {E.WORKFLOW_TASK_COMPLETED, E.WORKFLOW_TASK_FAILED, E.WORKFLOW_TASK_TIMED_OUT}
)

# I6: written only from a worker's commands or update messages, in the RespondWorkflowTaskCompleted
# transaction, as one contiguous run right after that WORKFLOW_TASK_COMPLETED.
COMMAND_EVENTS = frozenset(
    {
        E.ACTIVITY_TASK_SCHEDULED,
        E.ACTIVITY_TASK_CANCEL_REQUESTED,
        E.TIMER_STARTED,
        E.TIMER_CANCELED,
        E.MARKER_RECORDED,
        E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        E.START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        E.WORKFLOW_PROPERTIES_MODIFIED,
        E.NEXUS_OPERATION_SCHEDULED,
        E.NEXUS_OPERATION_CANCEL_REQUESTED,
        E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        E.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        E.WORKFLOW_EXECUTION_COMPLETED,
        E.WORKFLOW_EXECUTION_FAILED,
        E.WORKFLOW_EXECUTION_CANCELED,
        E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)

# §1: the current server never writes these; a history holding one did not come from it.
NEVER_WRITTEN = frozenset(
    {
        E.WORKFLOW_EXECUTION_UPDATE_REJECTED,
        E.WORKFLOW_PROPERTIES_MODIFIED_EXTERNALLY,
        E.ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY,
    }
)

_OPEN = "RUNNING|PAUSED"

RUN = (
    _t("ABSENT", E.WORKFLOW_EXECUTION_STARTED, "RUNNING", "first_event", rule="I1"),
    *(_t(_OPEN, ev, "CLOSED", rule="I2/I3") for ev in sorted(CLOSE_EVENTS)),
    _t("RUNNING", E.WORKFLOW_EXECUTION_PAUSED, "PAUSED", "no_scheduled_task"),
    _t("PAUSED", E.WORKFLOW_EXECUTION_UNPAUSED, "RUNNING"),
    _t(_OPEN, E.WORKFLOW_EXECUTION_CANCEL_REQUESTED, SAME, "first_cancel_request", rule="I17"),
    *(
        _t(_OPEN, ev, SAME)
        for ev in (
            E.WORKFLOW_EXECUTION_SIGNALED,
            E.MARKER_RECORDED,
            E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            E.WORKFLOW_PROPERTIES_MODIFIED,
            E.WORKFLOW_EXECUTION_OPTIONS_UPDATED,
            E.WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED,
        )
    ),
)

WORKFLOW_TASK = (
    _t(
        "ABSENT|OWED",
        E.WORKFLOW_TASK_SCHEDULED,
        "SCHEDULED",
        "run_not_paused",
        "first_attempt",
        rule="I4",
    ),
    _t(
        "OWED",
        E.WORKFLOW_TASK_SCHEDULED,
        "SCHEDULED_T",
        "run_not_paused",
        "retry_attempt",
        rule="I10",
    ),
    _t("SCHEDULED", E.WORKFLOW_TASK_STARTED, "STARTED", "refs_scheduled"),
    _t(
        "SCHEDULED_T",
        E.WORKFLOW_TASK_STARTED,
        "STARTED_T",
        "refs_scheduled",
        "follows_scheduled",
        rule="I10",
    ),
    # a transient attempt is written only when it completes; failing ones leave no event (I10)
    _t(
        "STARTED_T",
        E.WORKFLOW_TASK_COMPLETED,
        ABSENT,
        "follows_started",
        "refs_scheduled",
        "refs_started",
        rule="I10",
    ),
    _t(
        "STARTED",
        E.WORKFLOW_TASK_COMPLETED,
        ABSENT,
        "follows_started",
        "refs_scheduled",
        "refs_started",
        rule="I5",
    ),
    _t(
        "STARTED",
        E.WORKFLOW_TASK_FAILED,
        "OWED",
        "follows_started",
        "refs_scheduled",
        "refs_started",
        rule="I5",
    ),
    _t(
        "STARTED",
        E.WORKFLOW_TASK_TIMED_OUT,
        "OWED",
        "follows_started",
        "refs_scheduled",
        "refs_started",
        "not_schedule_to_start",
        rule="I5",
    ),
    _t(
        "SCHEDULED",
        E.WORKFLOW_TASK_FAILED,
        ABSENT,
        "refs_scheduled",
        "never_started",
        "pause_before_start",
    ),
    _t(
        "SCHEDULED",
        E.WORKFLOW_TASK_FAILED,
        "OWED",
        "refs_scheduled",
        "never_started",
        "reset_cause",
        rule="I14",
    ),
    _t(
        "SCHEDULED",
        E.WORKFLOW_TASK_TIMED_OUT,
        "OWED",
        "refs_scheduled",
        "never_started",
        "schedule_to_start",
    ),
)

ACTIVITY = (
    _t("ABSENT", E.ACTIVITY_TASK_SCHEDULED, "SCHEDULED", "unique_activity_id", rule="I17"),
    _t("SCHEDULED", E.ACTIVITY_TASK_STARTED, "STARTED"),
    _t("SCHEDULED_CANCEL_REQUESTED", E.ACTIVITY_TASK_STARTED, "STARTED_CANCEL_REQUESTED"),
    *(
        _t("STARTED|STARTED_CANCEL_REQUESTED", ev, ABSENT, "refs_started", rule="I11")
        for ev in (E.ACTIVITY_TASK_COMPLETED, E.ACTIVITY_TASK_FAILED, E.ACTIVITY_TASK_TIMED_OUT)
    ),
    _t(
        "SCHEDULED|SCHEDULED_CANCEL_REQUESTED",
        E.ACTIVITY_TASK_TIMED_OUT,
        ABSENT,
        "never_started",
        "timeout_before_start",
    ),
    _t("SCHEDULED", E.ACTIVITY_TASK_CANCEL_REQUESTED, "SCHEDULED_CANCEL_REQUESTED"),
    _t("STARTED", E.ACTIVITY_TASK_CANCEL_REQUESTED, "STARTED_CANCEL_REQUESTED"),
    _t(
        "SCHEDULED_CANCEL_REQUESTED",
        E.ACTIVITY_TASK_CANCELED,
        ABSENT,
        "never_started",
        "refs_cancel_request",
    ),
    _t(
        "STARTED_CANCEL_REQUESTED",
        E.ACTIVITY_TASK_CANCELED,
        ABSENT,
        "refs_started",
        "refs_cancel_request",
    ),
)

TIMER = (
    _t("ABSENT", E.TIMER_STARTED, "STARTED", rule="I17"),
    _t("STARTED", E.TIMER_FIRED, ABSENT, "refs_timer_started"),
    _t("STARTED", E.TIMER_CANCELED, ABSENT, "refs_timer_started", rule="I18"),
)

CHILD_WORKFLOW = (
    _t("ABSENT", E.START_CHILD_WORKFLOW_EXECUTION_INITIATED, "INITIATED"),
    _t("INITIATED", E.START_CHILD_WORKFLOW_EXECUTION_FAILED, ABSENT),
    _t("INITIATED", E.CHILD_WORKFLOW_EXECUTION_STARTED, "STARTED", rule="I16"),
    *(
        _t("STARTED", ev, ABSENT, "refs_started")
        for ev in (
            E.CHILD_WORKFLOW_EXECUTION_COMPLETED,
            E.CHILD_WORKFLOW_EXECUTION_FAILED,
            E.CHILD_WORKFLOW_EXECUTION_CANCELED,
            E.CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
            E.CHILD_WORKFLOW_EXECUTION_TERMINATED,
        )
    ),
)

EXTERNAL_SIGNAL = (
    _t("ABSENT", E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, "INITIATED"),
    _t("INITIATED", E.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED, ABSENT),
    _t("INITIATED", E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED, ABSENT),
)

EXTERNAL_CANCEL = (
    _t("ABSENT", E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, "INITIATED"),
    _t("INITIATED", E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED, ABSENT),
    _t("INITIATED", E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED, ABSENT),
)

UPDATE = (
    _t("ABSENT", E.WORKFLOW_EXECUTION_UPDATE_ADMITTED, "ADMITTED", rule="I14"),
    _t("ABSENT|ADMITTED", E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED, "ACCEPTED"),
    _t("ACCEPTED", E.WORKFLOW_EXECUTION_UPDATE_COMPLETED, "COMPLETED", "refs_accepted"),
)

_NEXUS_TERMINAL = (
    E.NEXUS_OPERATION_COMPLETED,
    E.NEXUS_OPERATION_FAILED,
    E.NEXUS_OPERATION_CANCELED,
    E.NEXUS_OPERATION_TIMED_OUT,
)

NEXUS_OPERATION = (
    _t("ABSENT", E.NEXUS_OPERATION_SCHEDULED, "SCHEDULED"),
    _t("SCHEDULED", E.NEXUS_OPERATION_STARTED, "STARTED"),
    *(_t("SCHEDULED|STARTED", ev, ABSENT) for ev in _NEXUS_TERMINAL),
)

# The cancellation of a Nexus operation is its own small machine, keyed like the operation.
NEXUS_CANCEL = (
    _t("ABSENT", E.NEXUS_OPERATION_CANCEL_REQUESTED, "REQUESTED", "nexus_operation_pending"),
    _t("REQUESTED", E.NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED, "RESOLVED", "refs_cancel_request"),
    _t("REQUESTED", E.NEXUS_OPERATION_CANCEL_REQUEST_FAILED, "RESOLVED", "refs_cancel_request"),
)

TABLES: Mapping[Entity, tuple[Transition, ...]] = {
    Entity.RUN: RUN,
    Entity.WORKFLOW_TASK: WORKFLOW_TASK,
    Entity.ACTIVITY: ACTIVITY,
    Entity.TIMER: TIMER,
    Entity.CHILD_WORKFLOW: CHILD_WORKFLOW,
    Entity.EXTERNAL_SIGNAL: EXTERNAL_SIGNAL,
    Entity.EXTERNAL_CANCEL: EXTERNAL_CANCEL,
    Entity.UPDATE: UPDATE,
    Entity.NEXUS_OPERATION: NEXUS_OPERATION,
    Entity.NEXUS_CANCEL: NEXUS_CANCEL,
}

_INDEX: dict[tuple[Entity, str, E], tuple[Transition, ...]] = {}
for _entity, _table in TABLES.items():
    for _tr in _table:
        for _source in _tr.sources:
            key = (_entity, _source, _tr.event)
            _INDEX[key] = (*_INDEX.get(key, ()), _tr)


def transitions_for(entity: Entity, state: str, event: E) -> tuple[Transition, ...]:
    """The transitions an entity in `state` may take on `event` (guards not yet checked)."""
    return _INDEX.get((entity, state, event), ())


def allowed_events(entity: Entity, state: str) -> list[str]:
    """Names of the event types the table allows from `state`, in table order."""
    seen: dict[str, None] = {}
    for tr in TABLES[entity]:
        if state in tr.sources:
            seen.setdefault(tr.event.name, None)
    return list(seen)


def states(entity: Entity) -> list[str]:
    """Every state of an entity that its table mentions, `ABSENT` first."""
    found: dict[str, None] = {ABSENT: None}
    for tr in TABLES[entity]:
        for s in sorted(tr.sources):
            found.setdefault(s, None)
        if tr.target not in (ABSENT, SAME):
            found.setdefault(tr.target, None)
    return list(found)


def events_of(entity: Entity) -> Iterable[E]:
    return {tr.event for tr in TABLES[entity]}
