"""The read model's tables: `<prefix>_runs`, `<prefix>_audit` and `<prefix>_findings`.

The tracking table, `<prefix>_tracking`, is the SQL store's own (`runhistory.stores.sql`);
`docs/read-model.md` explains every column and when it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from runhistory.stores.sql.tables import check_prefix

__all__ = [
    "APPLIED_COLUMNS",
    "DERIVED_COLUMNS",
    "CatalogTables",
    "make_catalog_tables",
]

# Columns written by the tracked, per-event maintenance (each batch with its tracking record).
APPLIED_COLUMNS = (
    "namespace",
    "workflow_id",
    "run_id",
    "workflow_type",
    "task_queue",
    "status",
    "start_time",
    "close_time",
    "history_length",
    "last_event_id",
    "last_task_id",
    "last_event_time",
    "pending_activities",
    "pending_timers",
    "pending_children",
    "pending_nexus_operations",
    "pending_updates",
    "pending_external_signals",
    "pending_external_cancels",
    "pending_workflow_task",
    "cancel_requested",
    "parent_workflow_id",
    "parent_run_id",
    "cron_schedule",
    "first_run_id",
    "continued_from_run_id",
    "continued_from_reason",
    "reset_from_run_id",
    "next_run_id",
    "next_reason",
    # maintenance state: what the next event needs to know
    "wft_scheduled_id",
    "wft_state",
    "paused",
    "updates_json",
    "tail_id",
    "tail_after_event_id",
    "tail_state",
)

# Columns recomputed from the whole history (when a run closes; see `derive`).
DERIVED_COLUMNS = (
    "derived_event_id",
    "state_transitions",
    "state_transitions_exact",
    "state_transitions_lower",
    "state_transitions_upper",
    "history_size_bytes",
    "findings",
    "worst_severity",
)


@dataclass(frozen=True)
class CatalogTables:
    """The read model's tables, all in `metadata`."""

    prefix: str
    metadata: MetaData
    runs: Table
    audit: Table
    findings: Table


def make_catalog_tables(prefix: str) -> CatalogTables:
    """`<prefix>_runs`, `<prefix>_audit` and `<prefix>_findings`, with prefixed index names
    (PostgreSQL index names are per schema, not per table)."""
    check_prefix(prefix)
    metadata = MetaData()
    runs_name = f"{prefix}_runs"
    runs = Table(
        runs_name,
        metadata,
        Column("originator_id", Uuid(), primary_key=True),
        Column("namespace", Text(), nullable=False),
        Column("workflow_id", Text(), nullable=False),
        Column("run_id", Text(), nullable=False),
        Column("workflow_type", Text()),
        Column("task_queue", Text()),
        Column("status", Text(), nullable=False),
        Column("start_time", DateTime(timezone=True)),
        Column("close_time", DateTime(timezone=True)),
        Column("history_length", BigInteger(), nullable=False),
        Column("last_event_id", BigInteger(), nullable=False),
        Column("last_task_id", BigInteger(), nullable=False),
        Column("last_event_time", DateTime(timezone=True)),
        Column("pending_activities", Integer(), nullable=False),
        Column("pending_timers", Integer(), nullable=False),
        Column("pending_children", Integer(), nullable=False),
        Column("pending_nexus_operations", Integer(), nullable=False),
        Column("pending_updates", Integer(), nullable=False),
        Column("pending_external_signals", Integer(), nullable=False),
        Column("pending_external_cancels", Integer(), nullable=False),
        Column("pending_workflow_task", Text()),
        Column("cancel_requested", Boolean(), nullable=False),
        Column("parent_workflow_id", Text()),
        Column("parent_run_id", Text()),
        Column("cron_schedule", Text()),
        Column("first_run_id", Text()),
        Column("continued_from_run_id", Text()),
        Column("continued_from_reason", Text()),
        Column("reset_from_run_id", Text()),
        Column("next_run_id", Text()),
        Column("next_reason", Text()),
        Column("wft_scheduled_id", BigInteger()),
        Column("wft_state", Text()),
        Column("paused", Boolean(), nullable=False),
        Column("updates_json", Text()),
        Column("tail_id", Uuid()),
        Column("tail_after_event_id", BigInteger()),
        Column("tail_state", Text()),
        Column("derive_pending", Boolean(), nullable=False, server_default=text("false")),
        Column("derived_event_id", BigInteger()),
        Column("state_transitions", BigInteger()),
        Column("state_transitions_exact", Boolean()),
        Column("state_transitions_lower", BigInteger()),
        Column("state_transitions_upper", BigInteger()),
        Column("history_size_bytes", BigInteger()),
        Column("findings", Integer()),
        Column("worst_severity", Text()),
        UniqueConstraint("namespace", "workflow_id", "run_id", name=f"{runs_name}_key"),
        Index(f"{runs_name}_status_idx", "status"),
        Index(f"{runs_name}_type_idx", "workflow_type"),
        Index(f"{runs_name}_start_idx", "start_time"),
        Index(f"{runs_name}_tail_idx", "tail_id"),
        Index(
            f"{runs_name}_derive_idx",
            "derive_pending",
            sqlite_where=text("derive_pending"),
            postgresql_where=text("derive_pending"),
        ),
    )
    audit_name = f"{prefix}_audit"
    audit = Table(
        audit_name,
        metadata,
        Column("originator_id", Uuid(), nullable=False),
        Column("event_id", BigInteger(), nullable=False),
        Column("namespace", Text(), nullable=False),
        Column("workflow_id", Text(), nullable=False),
        Column("run_id", Text(), nullable=False),
        Column("event_time", DateTime(timezone=True)),
        Column("action", Text(), nullable=False),
        Column("identity", Text(), nullable=False),
        Column("principal", Text(), nullable=False),
        Column("reason", Text(), nullable=False),
        Column("request_id", Text(), nullable=False),
        Column("detail", Text(), nullable=False),
        PrimaryKeyConstraint("originator_id", "event_id", name=f"{audit_name}_pkey"),
        Index(f"{audit_name}_run_idx", "namespace", "workflow_id", "run_id"),
        Index(f"{audit_name}_time_idx", "event_time"),
        Index(f"{audit_name}_action_idx", "action"),
    )
    findings_name = f"{prefix}_findings"
    findings = Table(
        findings_name,
        metadata,
        Column("originator_id", Uuid(), nullable=False),
        Column("seq", Integer(), nullable=False),
        Column("namespace", Text(), nullable=False),
        Column("workflow_id", Text(), nullable=False),
        Column("run_id", Text(), nullable=False),
        Column("rule", Text(), nullable=False),
        Column("severity", Text(), nullable=False),
        Column("event_ids", Text(), nullable=False),
        Column("first_event_id", BigInteger()),
        Column("message", Text(), nullable=False),
        PrimaryKeyConstraint("originator_id", "seq", name=f"{findings_name}_pkey"),
        Index(f"{findings_name}_run_idx", "namespace", "workflow_id", "run_id"),
        Index(f"{findings_name}_rule_idx", "rule"),
        Index(f"{findings_name}_severity_idx", "severity"),
    )
    return CatalogTables(prefix, metadata, runs, audit, findings)
