"""Small helpers shared by the projections: the durable events and attribute access.

Everything here is a pure function of `run.history`; nothing is cached on the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runhistory.domain.enums import EventType
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun

__all__ = ["E", "attr", "durable", "split_tail"]

E = EventType
_TAIL_TYPES = frozenset({E.WORKFLOW_TASK_SCHEDULED, E.WORKFLOW_TASK_STARTED})


def split_tail(history: Sequence[HistoryEvent]) -> tuple[list[HistoryEvent], list[HistoryEvent]]:
    """(durable events, trailing non-durable tail): the tail is the `task_id == 0`
    transient/speculative workflow-task events a GetWorkflowExecutionHistory appends (I13)."""
    end = len(history)
    while end > 1 and history[end - 1].task_id == 0 and history[end - 1].event_type in _TAIL_TYPES:
        end -= 1
    if end < len(history) and all(e.task_id == 0 for e in history[:end]):
        end = len(history)  # a history with no task ids at all: nothing marks a tail
    return list(history[:end]), list(history[end:])


def durable(run: WorkflowRun) -> list[HistoryEvent]:
    """The run's durable events: everything but the `task_id == 0` tail."""
    return split_tail(run.history)[0]


def attr(event: HistoryEvent | None, name: str, default: Any = None) -> Any:
    """An attribute of an event's attributes, or `default` (also for opaque unknown events)."""
    if event is None:
        return default
    return getattr(event.attributes, name, default)
