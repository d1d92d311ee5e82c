"""Deciding: judge one event against the run's state, without changing anything.

The checks run in a fixed order, so the error names the most basic rule an event breaks:
nothing after close (I2), a started workflow task closes first (I5, I10), command events only
right after their completion (I6), then the entity's own transition table and guards."""

from __future__ import annotations

from typing import Any

from runhistory.domain.enums import EventType as E
from runhistory.domain.errors import IllegalTransition
from runhistory.domain.event_base import HistoryEvent, UnknownEvent
from runhistory.domain.guards import GUARDS
from runhistory.domain.routing import ROUTES
from runhistory.domain.state import EntityRecord, RunState
from runhistory.domain.transitions import (
    ABSENT,
    COMMAND_EVENTS,
    NEVER_WRITTEN,
    WFT_CLOSE_EVENTS,
    Entity,
    Transition,
    allowed_events,
    transitions_for,
)

__all__ = ["decide", "find_transition"]

_WFT_CLOSE_NAMES = sorted(e.name for e in WFT_CLOSE_EVENTS)


Lookup = tuple[Entity, int | str, EntityRecord | None, Transition | None, str | None]


def find_transition(state: RunState, event: HistoryEvent) -> Lookup:
    """The entity, key, record and transition an event takes, or the first failed guard."""
    entity, key_of = ROUTES[event.event_type]
    key = key_of(event)
    rec = state.entities[entity].get(key)
    current = rec.state if rec is not None else ABSENT
    failed: str | None = None
    for tr in transitions_for(entity, current, event.event_type):
        for name in tr.guards:
            failed = GUARDS[name](state, rec, event)
            if failed is not None:
                break
        else:
            return entity, key, rec, tr, None
    return entity, key, rec, None, failed


def _illegal(
    event: HistoryEvent,
    entity: Entity,
    key: object,
    state: str,
    reason: str,
    rule: str = "",
    allowed: list[str] | None = None,
) -> IllegalTransition:
    return IllegalTransition(
        event_id=event.originator_version,
        event_type=event.type_name,
        entity=entity.value,
        key=key,
        state=state,
        allowed=allowed if allowed is not None else allowed_events(entity, state),
        reason=reason,
        rule=rule,
    )


def _check_run_open(state: RunState, event: HistoryEvent) -> None:
    if state.run.state == "CLOSED":
        raise _illegal(event, Entity.RUN, "", "CLOSED", "nothing follows a close event", "I2", [])


def _check_in_flight(state: RunState, event: HistoryEvent) -> None:
    wft = state.workflow_task
    if wft.state == "STARTED" and event.event_type not in WFT_CLOSE_EVENTS:
        raise _illegal(
            event,
            Entity.WORKFLOW_TASK,
            wft.opened_by,
            "STARTED",
            f"workflow task {wft.opened_by} started at event {wft.started_id} must close before"
            " anything else is written",
            "I5",
            _WFT_CLOSE_NAMES,
        )
    if wft.state == "SCHEDULED_T" and event.event_type is not E.WORKFLOW_TASK_STARTED:
        raise _illegal(
            event,
            Entity.WORKFLOW_TASK,
            wft.opened_by,
            "SCHEDULED_T",
            "a transient task's schedule event is written together with its start",
            "I10",
            [E.WORKFLOW_TASK_STARTED.name],
        )


def _check_command_phase(state: RunState, event: HistoryEvent) -> None:
    if event.event_type not in COMMAND_EVENTS:
        return
    completed = state.command_phase_of
    if completed == 0:
        raise _illegal(
            event,
            Entity.WORKFLOW_TASK,
            state.workflow_task.opened_by,
            "not completing",
            "command events are written only right after their WORKFLOW_TASK_COMPLETED",
            "I6",
            [E.WORKFLOW_TASK_COMPLETED.name],
        )
    attrs: Any = event.attributes
    ref = getattr(attrs, "workflow_task_completed_event_id", completed)
    if ref != completed:
        raise _illegal(
            event,
            Entity.WORKFLOW_TASK,
            state.workflow_task.opened_by,
            f"completed by {completed}",
            f"workflowTaskCompletedEventId {ref} is not the completion {completed} it follows",
            "I6",
            [],
        )


def decide(state: RunState, event: HistoryEvent) -> Lookup | None:
    """Raise IllegalTransition if a Temporal server could not have written `event` next.

    Returns the transition found (None for an opaque unknown event), for `evolve` to apply."""
    if state.run.state == ABSENT and event.event_type is not E.WORKFLOW_EXECUTION_STARTED:
        raise _illegal(
            event, Entity.RUN, "", ABSENT, "a history starts with WORKFLOW_EXECUTION_STARTED", "I1"
        )
    _check_run_open(state, event)
    if isinstance(event, UnknownEvent):
        return None  # the codec already applied workerMayIgnore; its order is not ours to judge
    _check_in_flight(state, event)
    if event.event_type in NEVER_WRITTEN:
        raise _illegal(
            event,
            Entity.RUN,
            "",
            state.run.state,
            "the Temporal server never writes this event type",
            "§1",
            [],
        )
    _check_command_phase(state, event)
    lookup = find_transition(state, event)
    entity, key, rec, transition, failed = lookup
    if transition is not None:
        return lookup
    current = rec.state if rec is not None else ABSENT
    if failed is None:
        failed = f"{event.type_name} is not allowed when the {entity.value} is {current}"
    rules = {tr.rule for tr in transitions_for(entity, current, event.event_type) if tr.rule}
    shown_key: object = key
    if entity is Entity.WORKFLOW_TASK:
        shown_key = state.workflow_task.opened_by
    elif entity is Entity.RUN:
        shown_key = ""
    raise _illegal(event, entity, shown_key, current, failed, "/".join(sorted(rules)))
