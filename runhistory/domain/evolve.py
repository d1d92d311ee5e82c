"""Evolving: apply an accepted event to the run's state. Never validates; replay from a store
goes through here only."""

from __future__ import annotations

from typing import Any

from runhistory.domain.decide import Lookup, find_transition
from runhistory.domain.enums import EventType as E
from runhistory.domain.event_base import HistoryEvent, UnknownEvent
from runhistory.domain.routing import SINGLETONS, STAMPS
from runhistory.domain.state import EntityRecord, RunState
from runhistory.domain.transitions import ABSENT, COMMAND_EVENTS, SAME, Entity

__all__ = ["evolve"]


def evolve(state: RunState, event: HistoryEvent, lookup: Lookup | None = None) -> None:
    """Apply `event`; `lookup` is the transition `decide` already found, if it ran."""
    etype = event.event_type
    if isinstance(event, UnknownEvent):
        return  # an ignorable event of a newer API: it moves nothing we know of
    if etype is E.WORKFLOW_TASK_COMPLETED:
        state.command_phase_of = event.originator_version
    elif etype not in COMMAND_EVENTS:
        state.command_phase_of = 0
    entity, key, rec, transition, _ = lookup or find_transition(state, event)
    if transition is None:
        return  # only reachable when replaying a history recorded leniently
    target = transition.target
    if target == SAME:
        pass
    elif target == ABSENT and entity not in SINGLETONS:
        _close(state, entity, key)
        return
    elif rec is None:
        rec = EntityRecord(target, event.originator_version, _name(event))
        state.entities[entity][key] = rec
        if entity is Entity.ACTIVITY:
            state.activity_ids[rec.name] = event.originator_version
    else:
        rec.state = target
        if etype is E.WORKFLOW_TASK_SCHEDULED:
            rec.opened_by, rec.started_id = event.originator_version, 0
    stamp = STAMPS.get(etype)
    if stamp is not None and rec is not None:
        setattr(rec, stamp, event.originator_version)
    if etype is E.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
        state.cancel_requested_by = event.originator_version


def _name(event: HistoryEvent) -> str:
    attrs: Any = event.attributes
    for field in ("activity_id", "timer_id", "workflow_id", "protocol_instance_id"):
        value = getattr(attrs, field, None)
        if isinstance(value, str):
            return value
    return ""


def _close(state: RunState, entity: Entity, key: int | str) -> None:
    rec = state.entities[entity].pop(key, None)
    if entity is Entity.ACTIVITY and rec is not None:
        state.activity_ids.pop(rec.name, None)
