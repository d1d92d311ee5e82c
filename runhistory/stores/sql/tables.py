"""The SQL schema: one application's events, runs, tracking and snapshot tables, and the
`<prefix>_history` view an auditor queries.

Every name starts with the application's prefix, so several applications (or tests) can share
one database; `docs/sql-schema.md` explains each column, and what the optional audit indexes
cost and buy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing.persistence import ProgrammingError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

__all__ = ["EVENT_COLUMNS", "MAX_PREFIX_LENGTH", "Tables", "check_prefix", "make_tables"]

# PostgreSQL truncates names at 63 bytes; the longest is "<prefix>_events_event_time_idx".
MAX_PREFIX_LENGTH = 40

# The columns an insert fills, in the order of a row tuple.
EVENT_COLUMNS = (
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "event_id",
    "event_type",
    "event_time",
    "attributes_key",
)

# The history view's columns: the events' (all but `state`) and the run's, from `<prefix>_runs`.
VIEW_COLUMNS = (
    "e.notification_id",
    "e.originator_id",
    "e.originator_version",
    "e.topic",
    "r.namespace",
    "r.workflow_id",
    "r.run_id",
    "e.event_id",
    "e.event_type",
    "e.event_time",
    "e.attributes_key",
)

# A rowid alias on SQLite (so ids come from the table itself, kept from reuse by
# `Tables.id_floor_sql`), a bigserial on PostgreSQL.
_NOTIFICATION_ID = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class Tables:
    """The tables of one application, all in `metadata`."""

    prefix: str
    metadata: MetaData
    events: Table
    runs: Table
    tracking: Table

    @property
    def history_view(self) -> str:
        """The name of the view of history events, with their attributes and JSON."""
        return f"{self.prefix}_history"

    def history_view_sql(self, dialect: str, quote: Callable[[str], str]) -> str:
        """`CREATE VIEW <prefix>_history`: the events' queryable columns, the run's (from
        `<prefix>_runs`), `attributes` (the attributes object, read from `state` by
        `attributes_key`) and `event` (the whole event JSON). Both are read when a query asks
        for them; the guards keep other rows (whose state may not be JSON) out of the JSON
        functions whatever order a planner picks."""
        if dialect == "sqlite":
            document = "CAST(e.state AS TEXT)"
            attributes = f"json_extract({document}, '$.' || e.attributes_key)"
            event = f"json({document})"
        else:
            document = "convert_from(e.state, 'UTF8')::jsonb"
            attributes = f"{document} -> e.attributes_key"
            event = document
        columns = ", ".join(f"{column} AS {column[2:]}" for column in VIEW_COLUMNS)
        return (
            f"CREATE VIEW {quote(self.history_view)} AS SELECT {columns}, "
            f"CASE WHEN e.attributes_key IS NOT NULL THEN {attributes} END AS attributes, "
            f"CASE WHEN e.event_type IS NOT NULL THEN {event} END AS event "
            f"FROM {quote(self.events.name)} AS e "
            f"LEFT JOIN {quote(self.runs.name)} AS r ON r.originator_id = e.originator_id "
            "WHERE e.event_type IS NOT NULL"
        )

    @property
    def id_floor(self) -> str:
        """SQLite only: the one-row table of the highest notification id ever deleted."""
        return f"{self.prefix}_id_floor"

    def id_floor_sql(self, quote: Callable[[str], str]) -> list[str]:
        """SQLite: `<prefix>_id_floor` and the triggers that keep it. SQLite gives a new row the
        highest rowid plus one, so ids would be handed out again after the newest rows were
        deleted (or renumbered) by hand, and a tracked projection would skip the new events;
        `AUTOINCREMENT` prevents that with a write to `sqlite_sequence` for every row inserted,
        these triggers with a write only when a row is deleted. The writer starts each batch
        above the floor (`EventWriter`). A table made with `AUTOINCREMENT` by an earlier version
        seeds the floor from `sqlite_sequence` (see `seed_id_floor_sql`)."""
        floor = quote(self.id_floor)
        events = quote(self.events.name)
        keep = (
            f"INSERT INTO {floor} (id, highest) VALUES (0, old.notification_id) "
            "ON CONFLICT (id) DO UPDATE SET highest = max(highest, excluded.highest)"
        )
        return [
            f"CREATE TABLE IF NOT EXISTS {floor} "
            "(id INTEGER PRIMARY KEY CHECK (id = 0), highest INTEGER NOT NULL)",
            f"CREATE TRIGGER IF NOT EXISTS {quote(self.prefix + '_events_deleted')} "
            f"AFTER DELETE ON {events} BEGIN {keep}; END",
            f"CREATE TRIGGER IF NOT EXISTS {quote(self.prefix + '_events_renumbered')} "
            f"AFTER UPDATE OF notification_id ON {events} BEGIN {keep}; END",
        ]

    def seed_id_floor_sql(self, quote: Callable[[str], str]) -> str:
        """SQLite, when `sqlite_sequence` exists: raise the floor to this table's sequence."""
        return (
            f"INSERT INTO {quote(self.id_floor)} (id, highest) "
            "SELECT 0, seq FROM sqlite_sequence WHERE name = ? "
            "ON CONFLICT (id) DO UPDATE SET highest = max(highest, excluded.highest)"
        )

    def snapshots(self, purpose: str = "snapshots") -> Table:
        """The table of an aggregate recorder for `purpose` (snapshots: no notification ids)."""
        name = f"{self.prefix}_{purpose}"
        existing = self.metadata.tables.get(name)
        if existing is not None:
            return existing
        return Table(
            name,
            self.metadata,
            Column("originator_id", Uuid(), nullable=False),
            Column("originator_version", BigInteger(), nullable=False),
            Column("topic", Text(), nullable=False),
            Column("state", LargeBinary(), nullable=False),
            PrimaryKeyConstraint("originator_id", "originator_version", name=f"{name}_pkey"),
        )


def check_prefix(prefix: str) -> None:
    """Refuse a table prefix that is empty or would make names too long for PostgreSQL's 63."""
    if not prefix or len(prefix) > MAX_PREFIX_LENGTH:
        raise ProgrammingError(
            f"table prefix {prefix!r} must have 1 to {MAX_PREFIX_LENGTH} characters"
        )


def make_tables(prefix: str, *, audit_indexes: bool = False) -> Tables:
    """The tables named `<prefix>_events`, `<prefix>_runs` and `<prefix>_tracking`. The events
    table is indexed for writing and for reading an aggregate (a run); the runs table finds a
    run by its key. `audit_indexes` adds indexes on `event_type` and `event_time`, which audit
    queries over a large store use, at a cost to every insert."""
    check_prefix(prefix)
    metadata = MetaData()
    events_name = f"{prefix}_events"
    events = Table(
        events_name,
        metadata,
        Column("notification_id", _NOTIFICATION_ID, primary_key=True, autoincrement=True),
        Column("originator_id", Uuid(), nullable=False),
        Column("originator_version", BigInteger(), nullable=False),
        Column("topic", Text(), nullable=False),
        Column("state", LargeBinary(), nullable=False),
        Column("event_id", BigInteger()),
        Column("event_type", Text()),
        Column("event_time", DateTime(timezone=True)),
        Column("attributes_key", Text()),
        UniqueConstraint("originator_id", "originator_version", name=f"{events_name}_version_key"),
    )
    if audit_indexes:
        Index(f"{events_name}_event_type_idx", events.c.event_type)
        Index(f"{events_name}_event_time_idx", events.c.event_time)
    runs_name = f"{prefix}_runs"
    runs = Table(
        runs_name,
        metadata,
        Column("originator_id", Uuid(), primary_key=True),
        Column("namespace", Text(), nullable=False),
        Column("workflow_id", Text(), nullable=False),
        Column("run_id", Text(), nullable=False),
        UniqueConstraint("namespace", "workflow_id", "run_id", name=f"{runs_name}_key"),
        # One b-tree fewer to write per run on SQLite: the rows live in the primary key's.
        sqlite_with_rowid=False,
    )
    tracking = Table(
        f"{prefix}_tracking",
        metadata,
        Column("application_name", Text(), primary_key=True),
        Column("notification_id", BigInteger(), nullable=False),
    )
    return Tables(prefix, metadata, events, runs, tracking)
