"""Reading the catalog: runs, audit entries and findings across every run of a store."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from runhistory.domain.run_key import RunKey
from runhistory.projections.catalog.fold import OPEN_STATUSES, parse_time
from runhistory.projections.catalog.view import CatalogView

__all__ = [
    "AuditRow",
    "FindingRow",
    "RunRow",
    "list_audit",
    "list_findings",
    "list_runs",
    "normalise_status",
]

_STATUS_PREFIX = "WORKFLOW_EXECUTION_STATUS_"
STATUSES = (
    "RUNNING",
    "PAUSED",
    "COMPLETED",
    "FAILED",
    "TIMED_OUT",
    "CANCELED",
    "TERMINATED",
    "CONTINUED_AS_NEW",
)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run. Times are aware UTC datetimes (microseconds). `pending_*` are what
    `pending(run, at_close=True)` counts (a closed run keeps what was pending when it closed,
    as the server's describe does, except updates). The chain columns are `chain_links`'s.
    `derived_event_id` is the event up to which the whole-history columns (`state_transitions*`,
    `history_size_bytes`, `findings`, `worst_severity`) were computed; None: not yet."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str | None
    task_queue: str | None
    status: str
    start_time: datetime | None
    close_time: datetime | None
    history_length: int
    last_event_id: int
    last_task_id: int
    last_event_time: datetime | None
    pending_activities: int
    pending_timers: int
    pending_children: int
    pending_nexus_operations: int
    pending_updates: int
    pending_external_signals: int
    pending_external_cancels: int
    pending_workflow_task: str | None
    cancel_requested: bool
    parent_workflow_id: str | None
    parent_run_id: str | None
    cron_schedule: str | None
    first_run_id: str | None
    continued_from_run_id: str | None
    continued_from_reason: str | None
    reset_from_run_id: str | None
    next_run_id: str | None
    next_reason: str | None
    derived_event_id: int | None
    state_transitions: int | None
    state_transitions_exact: bool | None
    state_transitions_lower: int | None
    state_transitions_upper: int | None
    history_size_bytes: int | None
    findings: int | None
    worst_severity: str | None

    @property
    def key(self) -> RunKey:
        return RunKey(self.workflow_id, self.run_id, self.namespace)

    @property
    def closed(self) -> bool:
        return self.status not in OPEN_STATUSES

    @property
    def derived(self) -> bool:
        """Whether the whole-history columns describe the run's current history."""
        return self.derived_event_id is not None and self.derived_event_id == self.last_event_id

    @property
    def pending(self) -> int:
        """Everything pending, the workflow task included."""
        return (
            self.pending_activities
            + self.pending_timers
            + self.pending_children
            + self.pending_nexus_operations
            + self.pending_updates
            + self.pending_external_signals
            + self.pending_external_cancels
            + (self.pending_workflow_task is not None)
        )


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One outside action on a run: `audit()`'s `AuditEntry`, with the run it was done to."""

    namespace: str
    workflow_id: str
    run_id: str
    event_id: int
    time: datetime | None
    action: str
    identity: str
    principal: str
    reason: str
    request_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding of `findings()` on a closed (or derived) run; `seq` is its place there."""

    namespace: str
    workflow_id: str
    run_id: str
    seq: int
    rule: str
    severity: str
    event_ids: tuple[int, ...]
    message: str


_RUN_FIELDS = tuple(f.name for f in fields(RunRow))
_TIME_FIELDS = frozenset({"start_time", "close_time", "last_event_time"})
_BOOL_FIELDS = frozenset({"cancel_requested", "state_transitions_exact"})


def normalise_status(status: str) -> str:
    """`running`, `RUNNING`, `WORKFLOW_EXECUTION_STATUS_RUNNING` -> `RUNNING`; `open` and
    `closed` stand for their groups. Raises ValueError for anything else."""
    name = status.strip().upper().removeprefix(_STATUS_PREFIX).replace("-", "_")
    if name in STATUSES or name in ("OPEN", "CLOSED"):
        return name
    raise ValueError(
        f"unknown status {status!r}: use one of {', '.join(s.lower() for s in STATUSES)}, "
        "open or closed"
    )


def _run_row(row: Any) -> RunRow:
    values: dict[str, Any] = {}
    for name in _RUN_FIELDS:
        value = row[name]
        if name in _TIME_FIELDS:
            value = parse_time(value)
        elif name in _BOOL_FIELDS and value is not None:
            value = bool(value)
        values[name] = value
    return RunRow(**values)


def list_runs(
    view: CatalogView,
    *,
    status: str | None = None,
    workflow_type: str | None = None,
    namespace: str | None = None,
    workflow_id: str | None = None,
    limit: int | None = None,
) -> list[RunRow]:
    """Runs, oldest start first. `status` is a status name, or `open` / `closed`."""
    runs = view.catalog.runs
    c = runs.c
    query = sa.select(*(c[name] for name in _RUN_FIELDS))
    if status is not None:
        wanted = normalise_status(status)
        if wanted == "OPEN":
            query = query.where(c.status.in_(OPEN_STATUSES))
        elif wanted == "CLOSED":
            query = query.where(c.status.not_in(OPEN_STATUSES))
        else:
            query = query.where(c.status == wanted)
    if workflow_type is not None:
        query = query.where(c.workflow_type == workflow_type)
    if namespace is not None:
        query = query.where(c.namespace == namespace)
    if workflow_id is not None:
        query = query.where(c.workflow_id == workflow_id)
    query = query.order_by(c.start_time, c.namespace, c.workflow_id, c.run_id)
    if limit is not None:
        query = query.limit(limit)
    with view.datastore.transaction(write=False) as conn:
        return [_run_row(row) for row in conn.execute(query).mappings()]


def list_audit(
    view: CatalogView,
    *,
    namespace: str | None = None,
    workflow_id: str | None = None,
    run_id: str | None = None,
    action: str | None = None,
    identity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[AuditRow]:
    """Outside actions on every run, oldest first (`since` inclusive, `until` exclusive)."""
    audit = view.catalog.audit
    c = audit.c
    query = sa.select(
        c.namespace,
        c.workflow_id,
        c.run_id,
        c.event_id,
        c.event_time,
        c.action,
        c.identity,
        c.principal,
        c.reason,
        c.request_id,
        c.detail,
    )
    for column, value in (
        (c.namespace, namespace),
        (c.workflow_id, workflow_id),
        (c.run_id, run_id),
        (c.action, action),
        (c.identity, identity),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(c.event_time >= since)
    if until is not None:
        query = query.where(c.event_time < until)
    query = query.order_by(c.event_time, c.namespace, c.workflow_id, c.run_id, c.event_id)
    if limit is not None:
        query = query.limit(limit)
    with view.datastore.transaction(write=False) as conn:
        return [
            AuditRow(
                row.namespace,
                row.workflow_id,
                row.run_id,
                int(row.event_id),
                parse_time(row.event_time),
                row.action,
                row.identity,
                row.principal,
                row.reason,
                row.request_id,
                row.detail,
            )
            for row in conn.execute(query)
        ]


def list_findings(
    view: CatalogView,
    *,
    severity: str | None = None,
    rule: str | None = None,
    namespace: str | None = None,
    workflow_id: str | None = None,
    run_id: str | None = None,
    limit: int | None = None,
) -> list[FindingRow]:
    """Findings of every derived run, run by run in `findings()` order."""
    table = view.catalog.findings
    c = table.c
    query = sa.select(
        c.namespace, c.workflow_id, c.run_id, c.seq, c.rule, c.severity, c.event_ids, c.message
    )
    for column, value in (
        (c.severity, severity),
        (c.rule, rule),
        (c.namespace, namespace),
        (c.workflow_id, workflow_id),
        (c.run_id, run_id),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(c.namespace, c.workflow_id, c.run_id, c.seq)
    if limit is not None:
        query = query.limit(limit)
    with view.datastore.transaction(write=False) as conn:
        return [
            FindingRow(
                row.namespace,
                row.workflow_id,
                row.run_id,
                int(row.seq),
                row.rule,
                row.severity,
                tuple(int(i) for i in row.event_ids.split(",") if i),
                row.message,
            )
            for row in conn.execute(query)
        ]
