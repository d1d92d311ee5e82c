"""Table-driven: for every entity, every state its table names and every event type it knows,
`decide` accepts exactly the pairs the table lists (with references that match the entity)."""

from __future__ import annotations

from typing import Any

import pytest

from runhistory.domain import messages as m
from runhistory.domain.decide import decide
from runhistory.domain.enums import EventType as E
from runhistory.domain.enums import TimeoutType, WorkflowTaskFailedCause
from runhistory.domain.errors import IllegalTransition
from runhistory.domain.routing import ROUTES
from runhistory.domain.state import EntityRecord, RunState
from runhistory.domain.transitions import (
    ABSENT,
    COMMAND_EVENTS,
    TABLES,
    Entity,
    events_of,
    states,
    transitions_for,
)
from tests.factory import make_event

OPENED, STARTED, CANCEL, COMPLETION, NEXT = 10, 12, 14, 20, 30
ENTITY_KEY: dict[Entity, int | str] = {
    Entity.ACTIVITY: OPENED,
    Entity.TIMER: "t1",
    Entity.CHILD_WORKFLOW: OPENED,
    Entity.EXTERNAL_SIGNAL: OPENED,
    Entity.EXTERNAL_CANCEL: OPENED,
    Entity.UPDATE: "u1",
    Entity.NEXUS_OPERATION: OPENED,
    Entity.NEXUS_CANCEL: OPENED,
}


def _attrs(event: E, entity: Entity, state: str) -> dict[str, Any]:
    """Attributes whose references all point at the entity under test."""
    refs: dict[str, Any] = {}
    key = ENTITY_KEY.get(entity)
    if event in COMMAND_EVENTS:
        refs["workflow_task_completed_event_id"] = COMPLETION
    if entity is Entity.WORKFLOW_TASK:
        refs.update(scheduled_event_id=OPENED, started_event_id=STARTED, attempt=1)
        if event is E.WORKFLOW_TASK_SCHEDULED and state == "OWED":
            refs["attempt"] = 1
        if state == "SCHEDULED":
            refs["started_event_id"] = 0
            refs["timeout_type"] = TimeoutType.SCHEDULE_TO_START
            refs["cause"] = WorkflowTaskFailedCause.WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED
        else:
            refs["timeout_type"] = TimeoutType.START_TO_CLOSE
        if event is E.WORKFLOW_TASK_SCHEDULED:
            return {"attempt": 1}
        return refs
    if entity is Entity.TIMER:
        refs.update(timer_id=key, started_event_id=OPENED)
    elif entity is Entity.UPDATE:
        refs.update(
            protocol_instance_id=key,
            accepted_event_id=STARTED,
            meta=m.UpdateMeta(update_id=str(key)),
            request=m.UpdateRequest(meta=m.UpdateMeta(update_id=str(key))),
        )
    elif entity is Entity.ACTIVITY:
        refs.update(
            activity_id="a1",
            scheduled_event_id=key,
            started_event_id=STARTED if "STARTED" in state else 0,
            latest_cancel_requested_event_id=CANCEL,
        )
    elif entity in (Entity.CHILD_WORKFLOW, Entity.EXTERNAL_SIGNAL, Entity.EXTERNAL_CANCEL):
        refs.update(initiated_event_id=key, started_event_id=STARTED)
    elif entity in (Entity.NEXUS_OPERATION, Entity.NEXUS_CANCEL):
        refs.update(scheduled_event_id=key, requested_event_id=OPENED)
    return refs


def _state_with(entity: Entity, state: str, event: E) -> RunState:
    run = RunState()
    run.run.state = "RUNNING"
    run.command_phase_of = COMPLETION if event in COMMAND_EVENTS else 0
    if entity is Entity.RUN:
        run.run.state = state
        return run
    if entity is Entity.WORKFLOW_TASK:
        wft = run.workflow_task
        wft.state, wft.opened_by = state, OPENED
        wft.started_id = STARTED if state in ("STARTED", "STARTED_T") else 0
        return run
    if state == ABSENT:
        if entity is Entity.NEXUS_CANCEL:  # a cancel request needs its operation
            run.entities[Entity.NEXUS_OPERATION][OPENED] = EntityRecord("SCHEDULED", OPENED)
        return run
    key = ENTITY_KEY[entity]
    rec = EntityRecord(state, OPENED, "a1")
    rec.started_id = STARTED
    rec.cancel_id = CANCEL
    run.entities[entity][key] = rec
    if entity is Entity.ACTIVITY:
        run.activity_ids["a1"] = OPENED
    return run


def _event_id(entity: Entity, state: str, event: E) -> int:
    if entity is Entity.WORKFLOW_TASK and state in ("STARTED", "STARTED_T"):
        return STARTED + 1
    if entity is Entity.WORKFLOW_TASK and state == "SCHEDULED_T":
        return OPENED + 1
    if ROUTES[event][1].__name__ == "_own_id":
        return OPENED  # the event opens the entity under test: its id is the entity's key
    return NEXT


CASES = [
    pytest.param(entity, state, event, id=f"{entity.name}-{state}-{event.name}")
    for entity in TABLES
    for state in states(entity)
    for event in sorted(events_of(entity))
]


@pytest.mark.parametrize(("entity", "state", "event"), CASES)
def test_decide_follows_the_table(entity: Entity, state: str, event: E) -> None:
    if entity is Entity.RUN and state == "CLOSED":
        pytest.skip("CLOSED is covered by test_nothing_follows_a_close_event")
    run = _state_with(entity, state, event)
    event_id = _event_id(entity, state, event)
    if event is E.WORKFLOW_EXECUTION_STARTED:
        event_id = 1
        if state != ABSENT:
            run.run.state = state
    elif entity is Entity.RUN and state == ABSENT:
        run.run.state = ABSENT
    candidate = make_event(event, event_id, **_attrs(event, entity, state))
    legal = bool(transitions_for(entity, state, event))
    if legal:
        decide(run, candidate)
    else:
        with pytest.raises(IllegalTransition) as info:
            decide(run, candidate)
        assert info.value.event_id == event_id
        assert info.value.event_type == event.name


@pytest.mark.parametrize("event", sorted(ROUTES))
def test_nothing_follows_a_close_event(event: E) -> None:
    if event is E.WORKFLOW_EXECUTION_STARTED:
        pytest.skip("a second start is refused by the sequence check")
    run = RunState()
    run.run.state = "CLOSED"
    with pytest.raises(IllegalTransition) as info:
        decide(run, make_event(event, NEXT))
    assert info.value.rule == "I2"
    assert info.value.state == "CLOSED"
