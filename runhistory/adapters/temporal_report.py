"""What `sync` reports: one `RunOutcome` per step of each run, and the `SyncReport` totals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runhistory.domain.run_key import RunKey

__all__ = ["Progress", "RunError", "RunOutcome", "SyncError", "SyncReport"]

Progress = Callable[["RunOutcome", "SyncReport"], None]
"""`progress(outcome, report)`: called after each step of each run."""


class SyncError(Exception):
    """The sync as a whole could not run: no connection, or the server refused the listing.
    `usage` is True when the caller's input was at fault (an invalid visibility query)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one step of the sync did to one run. `status`: "new" (first stored), "updated"
    (events appended or its transient tail replaced), "unchanged" or "failed"."""

    key: RunKey
    status: str
    events: int = 0
    appended: int = 0
    describe_stored: bool = False
    open: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.key.namespace, "workflowId": self.key.workflow_id,
            "runId": self.key.run_id, "status": self.status, "events": self.events,
            "appended": self.appended, "describeStored": self.describe_stored,
            "open": self.open, "error": self.error,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunError:
    key: RunKey
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass(slots=True)
class SyncReport:
    """Counts over the whole sync (a follow included). A run that failed and later synced
    (follow mode retries at each re-listing) is no longer in `errors`."""

    runs_seen: int = 0
    runs_new: int = 0
    runs_updated: int = 0
    events_appended: int = 0
    describes_stored: int = 0
    following: int = 0
    failures: dict[RunKey, RunError] = field(default_factory=dict)

    @property
    def errors(self) -> list[RunError]:
        return list(self.failures.values())

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "runsSeen": self.runs_seen, "runsNew": self.runs_new,
            "runsUpdated": self.runs_updated, "eventsAppended": self.events_appended,
            "describesStored": self.describes_stored,
            "errors": [{**_key_json(e.key), "error": e.message} for e in self.errors],
        }  # fmt: skip


def _key_json(key: RunKey) -> dict[str, str]:
    return {"namespace": key.namespace, "workflowId": key.workflow_id, "runId": key.run_id}
