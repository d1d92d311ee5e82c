"""eventsourcing's aggregate and application recorders on SQLAlchemy Core.

Each insert is one transaction (atomic: a conflict on any version writes nothing). Pass
`connection=` to `insert_events` (it also reaches here through `Application.save(...,
connection=conn)`) to write inside a host application's open transaction instead: the events
then commit or roll back with the host's own rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    Notification,
    Recorder,
    StoredEvent,
    Subscription,
)
from sqlalchemy.engine import Connection

from runhistory.stores.sql.datastore import SQLDatastore
from runhistory.stores.sql.events import EventWriter
from runhistory.stores.sql.rows import to_uuid
from runhistory.stores.sql.subscription import SQLSubscription
from runhistory.stores.sql.tables import Tables

__all__ = ["SQLAggregateRecorder", "SQLApplicationRecorder", "SQLRecorder"]


class SQLRecorder(Recorder):
    """A recorder of one application's tables in one datastore."""

    def __init__(self, datastore: SQLDatastore, tables: Tables) -> None:
        self.datastore = datastore
        self.tables = tables

    def schema_tables(self) -> list[sa.Table]:
        """The tables this recorder reads and writes."""
        return []

    def create_table(self) -> None:
        """Create this recorder's tables if they are missing (safe to race other processes)."""
        tables = self.schema_tables()
        if not tables:
            return
        with self.datastore.transaction(write=True) as conn:
            if not self.datastore.is_sqlite:
                # Serialise concurrent creators: CREATE ... IF NOT EXISTS still races in catalogs.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(4242, hashtext(:name))"),
                    {"name": self.tables.prefix},
                )
            self.tables.metadata.create_all(conn, tables=tables, checkfirst=True)
            if self.tables.events in tables:
                # Indexes switched on after the table was made (the audit indexes).
                for index in sorted(self.tables.events.indexes, key=lambda i: str(i.name)):
                    index.create(conn, checkfirst=True)
                if self.datastore.is_sqlite:
                    self._create_id_floor(conn)
                self._create_history_view(conn)

    def _create_id_floor(self, conn: Connection) -> None:
        quote = conn.dialect.identifier_preparer.quote
        for statement in self.tables.id_floor_sql(quote):
            conn.exec_driver_sql(statement)
        has_sequence = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
        ).scalar()
        if has_sequence:
            conn.exec_driver_sql(self.tables.seed_id_floor_sql(quote), (self.tables.events.name,))

    def _create_history_view(self, conn: Connection) -> None:
        """Create `<prefix>_history` if it is missing (on SQLite: or if its definition is not
        this version's)."""
        preparer = conn.dialect.identifier_preparer
        name = self.tables.history_view
        create = self.tables.history_view_sql(conn.dialect.name, preparer.quote)
        if self.datastore.is_sqlite:
            existing = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (name,)
            ).scalar()
            if existing == create:
                return
            if existing is not None:
                conn.exec_driver_sql(f"DROP VIEW {preparer.quote(name)}")
        else:
            found = conn.execute(
                sa.text("SELECT to_regclass(:name)"), {"name": preparer.quote(name)}
            )
            if found.scalar() is not None:
                return
        conn.exec_driver_sql(create)


class SQLAggregateRecorder(SQLRecorder, AggregateRecorder):
    """Events (with queryable history columns) or, for purpose "snapshots", plain snapshots."""

    def __init__(self, datastore: SQLDatastore, tables: Tables, *, purpose: str = "events") -> None:
        super().__init__(datastore, tables)
        self.purpose = purpose
        self.events_table = tables.events if purpose == "events" else tables.snapshots(purpose)
        self.writer = EventWriter(datastore, tables) if purpose == "events" else None
        c = self.events_table.c
        self._select_events = sa.select(c.originator_version, c.topic, c.state)

    def schema_tables(self) -> list[sa.Table]:
        if self.writer is None:
            return [self.events_table]
        return [self.tables.events, self.tables.runs]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._insert(stored_events, want_ids=False, **kwargs)
        return None

    def _insert(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        want_ids: bool,
        connection: Connection | None = None,
        **kwargs: Any,
    ) -> list[int]:
        if (
            self.writer is not None
            and connection is None
            and self.datastore.driver_writes
            and not self._needs_connection(kwargs)
        ):
            # The common case, an application saving: no SQLAlchemy work per transaction.
            with self.datastore.driver_write() as driver:
                ids = self.writer.insert_driver(
                    driver,
                    stored_events,
                    want_ids=want_ids,
                    begin=self.datastore.begin_in_first_statement,
                )
            if stored_events:
                self.datastore.notify(self.events_table.name)
            return ids
        with self.datastore.transaction(write=True, connection=connection) as conn:
            self._before_insert(conn, **kwargs)
            if self.writer is None:
                if stored_events:
                    conn.execute(
                        sa.insert(self.events_table), [_snapshot_row(s) for s in stored_events]
                    )
                return []
            ids = self.writer.insert(conn, stored_events, want_ids=want_ids)
        if stored_events:
            self.datastore.notify(self.events_table.name)
        return ids

    def _before_insert(self, conn: Connection, **kwargs: Any) -> None:
        """A hook for work that must share the insert's transaction (tracking)."""

    def _needs_connection(self, kwargs: dict[str, Any]) -> bool:
        """Whether an insert with these arguments runs `_before_insert` on a SQLAlchemy
        connection; otherwise it may run on the datastore's driver connection. True whenever a
        subclass overrides `_before_insert`."""
        return type(self)._before_insert is not SQLAggregateRecorder._before_insert

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        uuid = to_uuid(originator_id)
        c = self.events_table.c
        query = self._select_events.where(c.originator_id == uuid)
        if gt is not None:
            query = query.where(c.originator_version > gt)
        if lte is not None:
            query = query.where(c.originator_version <= lte)
        query = query.order_by(c.originator_version.desc() if desc else c.originator_version)
        if limit is not None:
            query = query.limit(limit)
        with self.datastore.transaction(write=False) as conn:
            return [
                StoredEvent(uuid, version, topic, bytes(state))
                for version, topic, state in conn.execute(query)
            ]


def _snapshot_row(stored: StoredEvent) -> dict[str, Any]:
    return {
        "originator_id": to_uuid(stored.originator_id),
        "originator_version": stored.originator_version,
        "topic": stored.topic,
        "state": stored.state,
    }


class SQLApplicationRecorder(SQLAggregateRecorder, ApplicationRecorder):
    """Events in the application sequence: `notification_id`, assigned in commit order."""

    def __init__(self, datastore: SQLDatastore, tables: Tables) -> None:
        super().__init__(datastore, tables, purpose="events")
        c = tables.events.c
        self._select_notifications = sa.select(
            c.notification_id, c.originator_id, c.originator_version, c.topic, c.state
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, want_ids=True, **kwargs)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        c = self.tables.events.c
        query = self._select_notifications
        if start is not None:
            query = query.where(
                c.notification_id >= start if inclusive_of_start else c.notification_id > start
            )
        if stop is not None:
            query = query.where(c.notification_id <= stop)
        if topics:
            query = query.where(c.topic.in_(list(topics)))
        query = query.order_by(c.notification_id).limit(limit)
        with self.datastore.transaction(write=False) as conn:
            return [
                Notification(
                    id=nid,
                    originator_id=oid,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                for nid, oid, version, topic, state in conn.execute(query)
            ]

    def max_notification_id(self) -> int | None:
        query = sa.select(sa.func.max(self.tables.events.c.notification_id))
        with self.datastore.transaction(write=False) as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    @property
    def channel(self) -> str:
        """The (quoted) PostgreSQL channel that each insert NOTIFYs."""
        assert self.writer is not None
        return self.writer.channel

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return SQLSubscription(self, gt=gt, topics=topics)
