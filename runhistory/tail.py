"""The non-durable tail of a run, stored beside it.

A history fetched by an SDK client may end with a transient or speculative workflow task's
`[WORKFLOW_TASK_SCHEDULED, WORKFLOW_TASK_STARTED]`, written with no `taskId` (I13). Those
events are not durable: the server may later write different events with the same ids. So they
never enter the run's append-only stream; the latest tail is kept in a small aggregate of its
own, replaced whenever a newer fetch shows a different one, and re-attached on export.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import orjson
from eventsourcing.domain import Aggregate, event

from runhistory.domain.run_key import RUNHISTORY_NAMESPACE_UUID, RunKey

__all__ = ["RunTail", "tail_id", "tail_id_of"]


def tail_id(key: RunKey) -> uuid.UUID:
    return tail_id_of(key.aggregate_id)


def tail_id_of(run_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(RUNHISTORY_NAMESPACE_UUID, f"tail:{run_id}")


class RunTail(Aggregate):
    """The latest non-durable tail of one run: canonical JSON events after `after_event_id`."""

    TOPIC: ClassVar[str] = "runhistory:RunTail"

    class Created(Aggregate.Created):
        TOPIC = "runhistory:RunTail.Created"
        run_id: uuid.UUID
        after_event_id: int
        events_json: str

    class Replaced(Aggregate.Event):
        TOPIC = "runhistory:RunTail.Replaced"
        after_event_id: int
        events_json: str

    @event(Created)
    def __init__(self, run_id: uuid.UUID, after_event_id: int, events_json: str) -> None:
        self.run_id = run_id
        self.after_event_id = after_event_id
        self.events_json = events_json

    @staticmethod
    def create_id(run_id: uuid.UUID, after_event_id: int, events_json: str) -> uuid.UUID:
        return tail_id_of(run_id)

    @event(Replaced)
    def replace(self, after_event_id: int, events_json: str) -> None:
        self.after_event_id = after_event_id
        self.events_json = events_json

    def events(self) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = orjson.loads(self.events_json)
        return loaded
