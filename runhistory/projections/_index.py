"""One pass over a history that the projections share: durable events and the `task_id == 0`
tail (I13), the Rule T transaction groups (§3.3), and the events of each type in order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from runhistory.domain.enums import EventType
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.projections._common import split_tail

__all__ = ["Index", "index"]


@dataclass(frozen=True, slots=True)
class Index:
    """`groups` split `events` where task ids stop being consecutive; `rule_t` says whether task
    ids increase strictly (else the groups mean nothing); `by_type` gives each type's events, an
    empty list for a type the run has none of."""

    run: WorkflowRun
    events: list[HistoryEvent]
    tail: list[HistoryEvent]
    groups: list[list[HistoryEvent]]
    by_type: defaultdict[EventType, list[HistoryEvent]]
    rule_t: bool

    def of(self, *kinds: EventType) -> list[HistoryEvent]:
        """The events of the given types, in history order."""
        if len(kinds) == 1:
            return self.by_type[kinds[0]]
        merged = [e for kind in kinds for e in self.by_type[kind]]
        merged.sort(key=_event_id)
        return merged


def _event_id(event: HistoryEvent) -> int:
    return event.event_id


def index(run: WorkflowRun) -> Index:
    """Index the run's history in one pass."""
    events, tail = split_tail(run.history)
    # filled as met: a dict of every type, made per run, cost ~3% of deriving a small run's columns
    by_type: defaultdict[EventType, list[HistoryEvent]] = defaultdict(list)
    groups: list[list[HistoryEvent]] = []
    current: list[HistoryEvent] = []
    prev = 0
    increasing = True
    for event in events:
        task_id = event.task_id
        if task_id != prev + 1:
            if task_id <= prev:
                increasing = False
            current = []
            groups.append(current)
        current.append(event)
        prev = task_id
        by_type[event.event_type].append(event)
    return Index(run, events, tail, groups, by_type, increasing)
