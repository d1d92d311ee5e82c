"""The envelope every Temporal history event shares, as an eventsourcing aggregate event.

The aggregate version of a `WorkflowRun` is the Temporal event id, so `originator_version`
*is* `eventId`; the eventsourcing `timestamp` is `event_time` truncated to microseconds, while
`event_time` keeps the nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.domain import AggregateCreated, AggregateEvent
from eventsourcing.utils import register_topic

from runhistory.domain import messages as m
from runhistory.domain.enums import EventType
from runhistory.domain.run_key import RunKey
from runhistory.domain.timeval import Timestamp

if TYPE_CHECKING:
    from runhistory.domain.run import WorkflowRun

__all__ = ["HistoryEvent", "HistoryStarted", "UnknownEvent", "register_topics"]


class HistoryEvent(AggregateEvent):
    """One event of a run's history. Subclasses fix `event_type` and type `attributes`."""

    TOPIC: ClassVar[str] = "runhistory:HistoryEvent"
    event_type: ClassVar[EventType] = EventType.UNSPECIFIED

    event_time: Timestamp | None
    task_id: int
    version: int
    worker_may_ignore: bool
    user_metadata: m.UserMetadata | None
    links: tuple[m.Link, ...]
    principal: m.Principal | None
    event_group_markers: tuple[m.EventGroupMarker, ...]
    unknown_fields: Mapping[str, Any] | None
    attributes: Any

    @property
    def event_id(self) -> int:
        return self.originator_version

    @property
    def type_name(self) -> str:
        """The event type without its `EVENT_TYPE_` prefix, e.g. `ACTIVITY_TASK_SCHEDULED`."""
        return self.event_type.name

    @property
    def durable(self) -> bool:
        """False for the `taskId`-less transient or speculative workflow-task tail (I13)."""
        return self.task_id != 0

    def apply(self, aggregate: WorkflowRun) -> None:
        aggregate.evolve(self)


class HistoryStarted(HistoryEvent, AggregateCreated):
    """The base of WorkflowExecutionStarted: the event that creates a `WorkflowRun`.

    `run_key` names the run. Temporal's own event cannot: the namespace is not in history, and
    a reset run's id is only known from its later RESET_WORKFLOW workflow-task failure (I14)."""

    TOPIC: ClassVar[str] = "runhistory:HistoryStarted"

    run_key: RunKey | None = None


class UnknownEvent(HistoryEvent):
    """An event type this API version does not know, kept opaque (lenient mode, or ignorable).

    `type_name` is the wire name as read; `attributes_key` the JSON key of its attributes."""

    TOPIC: ClassVar[str] = "runhistory:UnknownEvent"

    raw_type: str
    attributes_key: str | None

    @property
    def type_name(self) -> str:
        return self.raw_type


def register_topics(classes: Iterable[type[HistoryEvent]]) -> None:
    """Make each class's explicit TOPIC resolvable, as reading a store needs."""
    for cls in classes:
        register_topic(cls.TOPIC, cls)


register_topics((HistoryEvent, HistoryStarted, UnknownEvent))
