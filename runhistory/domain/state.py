"""The validation state of a run: one small record per live entity."""

from __future__ import annotations

from runhistory.domain.transitions import ABSENT, Entity

__all__ = ["EntityRecord", "RunState"]


class EntityRecord:
    """One live entity: its state, the event that opened it, and the ids later events quote."""

    __slots__ = ("cancel_id", "name", "opened_by", "started_id", "state")

    def __init__(self, state: str, opened_by: int, name: str = "") -> None:
        self.state = state
        self.opened_by = opened_by
        self.started_id = 0
        self.cancel_id = 0
        self.name = name

    def __repr__(self) -> str:
        return (
            f"EntityRecord({self.state}, opened_by={self.opened_by}, started_id={self.started_id},"
            f" cancel_id={self.cancel_id}, name={self.name!r})"
        )


class RunState:
    """Everything the transition tables need to judge the next event."""

    __slots__ = (
        "activity_ids",
        "cancel_requested_by",
        "command_phase_of",
        "entities",
        "run",
        "workflow_task",
    )

    def __init__(self) -> None:
        self.entities: dict[Entity, dict[int | str, EntityRecord]] = {e: {} for e in Entity}
        # the two singletons, also reachable directly: they are read for every event
        self.run = self.entities[Entity.RUN][0] = EntityRecord(ABSENT, 0)
        self.workflow_task = self.entities[Entity.WORKFLOW_TASK][0] = EntityRecord(ABSENT, 0)
        # activity id -> scheduled event id, for I17's duplicate check among pending activities
        self.activity_ids: dict[str, int] = {}
        self.cancel_requested_by = 0
        # id of the WORKFLOW_TASK_COMPLETED whose command events are being written, else 0 (I6)
        self.command_phase_of = 0

    def record(self, entity: Entity, key: int | str) -> EntityRecord | None:
        return self.entities[entity].get(key)
