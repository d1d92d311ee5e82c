"""The server's own DescribeWorkflowExecution of a run, stored beside the run.

History cannot tell everything describe shows: the server's stateTransitionCount, a pending
activity's attempt, heartbeat details and last heartbeat time, callback states (semantics §5).
`sync` fetches describe with each run and keeps the latest one in a small aggregate of its own,
replaced only when its content changed, so the aggregate's versions are the distinct states the
server reported. `server_describe(app, key)` reads it back for `describe(run, server_describe=...)`.

This module needs no temporalio: reading a stored describe works without the extra.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from runhistory.domain.run_key import RUNHISTORY_NAMESPACE_UUID, RunKey

__all__ = [
    "ServerDescribe",
    "load_server_describe",
    "server_describe",
    "server_describe_id",
    "store_server_describe",
]


def server_describe_id(key: RunKey) -> uuid.UUID:
    """The aggregate id of a run's stored describe: uuid5 of the run's own aggregate id."""
    return uuid.uuid5(RUNHISTORY_NAMESPACE_UUID, f"server-describe:{key.aggregate_id}")


class ServerDescribe(Aggregate):
    """The latest DescribeWorkflowExecutionResponse the server gave for one run, as proto3 JSON."""

    TOPIC: ClassVar[str] = "runhistory:ServerDescribe"

    class Created(Aggregate.Created):
        TOPIC = "runhistory:ServerDescribe.Created"
        run_id: uuid.UUID
        describe_json: str

    class Replaced(Aggregate.Event):
        TOPIC = "runhistory:ServerDescribe.Replaced"
        describe_json: str

    @event(Created)
    def __init__(self, run_id: uuid.UUID, describe_json: str) -> None:
        self.run_id = run_id
        self.describe_json = describe_json

    @staticmethod
    def create_id(run_id: uuid.UUID, describe_json: str) -> uuid.UUID:
        return uuid.uuid5(RUNHISTORY_NAMESPACE_UUID, f"server-describe:{run_id}")

    @event(Replaced)
    def replace(self, describe_json: str) -> None:
        self.describe_json = describe_json

    def describe(self) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(self.describe_json)
        return loaded

    @property
    def closed(self) -> bool:
        """Whether the server described the run as closed (any status but running)."""
        status = self.describe().get("workflowExecutionInfo", {}).get("status")
        return status not in (None, "WORKFLOW_EXECUTION_STATUS_RUNNING")

    @property
    def history_length(self) -> int | None:
        """The server's `historyLength` when this describe was taken."""
        value = self.describe().get("workflowExecutionInfo", {}).get("historyLength")
        return int(value) if value is not None else None


def load_server_describe(app: Application[uuid.UUID], key: RunKey) -> ServerDescribe | None:
    """The stored aggregate (with its version and `modified_on`), or None."""
    try:
        stored: Any = app.repository.get(server_describe_id(key))
    except AggregateNotFoundError:
        return None
    assert isinstance(stored, ServerDescribe)
    return stored


def server_describe(app: Application[uuid.UUID], key: RunKey) -> dict[str, Any] | None:
    """The server's latest stored DescribeWorkflowExecutionResponse of the run, or None."""
    stored = load_server_describe(app, key)
    return None if stored is None else stored.describe()


def store_server_describe(
    app: Application[uuid.UUID], key: RunKey, describe: Mapping[str, Any]
) -> bool:
    """Save `describe` for the run unless the stored one has the same content (key order aside).
    Returns whether anything was written."""
    stored = load_server_describe(app, key)
    if stored is None:
        app.save(ServerDescribe(key.aggregate_id, _dumps(describe)))
        return True
    if stored.describe() == describe:
        return False
    stored.replace(_dumps(describe))
    app.save(stored)
    return True


def _dumps(describe: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(describe)).decode()
