"""Build domain events directly, for tests that judge single transitions."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from runhistory.domain.enums import EventType
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.events import EVENT_CLASSES
from runhistory.domain.schema import ATTRIBUTES
from runhistory.domain.timeval import Timestamp

RUN_ID = uuid.UUID(int=7)
T0 = Timestamp(1_790_000_000, 0)


def make_event(
    event_type: EventType, event_id: int, *, task_id: int = 0, **attrs: Any
) -> HistoryEvent:
    """An event of `event_type` with id `event_id` and the given attributes (others default)."""
    _, _, attrs_cls = ATTRIBUTES[event_type]
    known = {f.name for f in dataclasses.fields(attrs_cls)}
    attrs = {k: v for k, v in attrs.items() if k in known}  # one refs dict serves every type
    fields: dict[str, Any] = {
        "originator_id": RUN_ID,
        "originator_version": event_id,
        "timestamp": T0.to_datetime(),
        "event_time": Timestamp(T0.seconds + event_id, 0),
        "task_id": task_id or 1000 + event_id,
        "version": 0,
        "worker_may_ignore": False,
        "user_metadata": None,
        "links": (),
        "principal": None,
        "event_group_markers": (),
        "unknown_fields": None,
        "attributes": attrs_cls(**attrs),
    }
    if event_type is EventType.WORKFLOW_EXECUTION_STARTED:
        fields["originator_topic"] = "runhistory:WorkflowRun"
    return EVENT_CLASSES[event_type](**fields)
