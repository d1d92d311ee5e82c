"""Writing stored events into the events table: the one statement written per dialect, for speed.

Everything else is SQLAlchemy Core. The insert is driver SQL, run on a DBAPI cursor and fed plain
tuples, because Core's per-row parameter processing (and its per-statement overhead, for small
runs) costs more than the insert itself. The cursor is the unit of work's connection's or, for
an application's plain insert into a SQLite store that made its own engine, the datastore's held
write connection's (`SQLDatastore.driver_write`: no SQLAlchemy work per transaction at all).
- SQLite: `executemany`; the ids are the last `n` rowids, since the transaction holds the
  database's only write lock from `BEGIN IMMEDIATE` and rowids only grow (AUTOINCREMENT).
- PostgreSQL: one `INSERT ... SELECT FROM unnest(<column arrays>) RETURNING notification_id` per
  chunk, after `LOCK TABLE ... IN EXCLUSIVE MODE` so ids are handed out in commit order (readers
  never skip an id that commits later), and a `NOTIFY` that subscribers in other processes hear.
A batch holding a run's started event also writes the run's row in `<prefix>_runs`, in the same
transaction: the run's key is stored once, not on each event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection

from runhistory.stores.sql.datastore import SQLDatastore
from runhistory.stores.sql.rows import RowBuilder
from runhistory.stores.sql.tables import EVENT_COLUMNS, Tables

__all__ = ["EventWriter"]

_PG_CHUNK = 5000
_PG_ARRAY_TYPES = (
    "uuid[]", "bigint[]", "text[]", "bytea[]", "bigint[]", "text[]", "timestamptz[]", "text[]",
)  # fmt: skip


class EventWriter:
    """Inserts rows into one application's events table and keeps its runs table."""

    def __init__(self, datastore: SQLDatastore, tables: Tables) -> None:
        self.datastore = datastore
        self.table = tables.events
        self.runs = tables.runs
        dialect = datastore.engine.dialect
        preparer = dialect.identifier_preparer
        table_name = preparer.format_table(self.table)
        self.channel = preparer.quote(self.table.name)
        columns = ", ".join(preparer.quote(name) for name in EVENT_COLUMNS)
        if datastore.is_sqlite:
            self._insert_runs_sql = (
                f"INSERT INTO {preparer.format_table(self.runs)} "
                "(originator_id, namespace, workflow_id, run_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            )
            marks = ", ".join("?" * len(EVENT_COLUMNS))
            self._insert_sql = f"INSERT INTO {table_name} ({columns}) VALUES ({marks})"
            self._rows = RowBuilder(uuid_as_hex=True, time_suffix="")
        else:
            # Binary parameters: psycopg escapes text arrays one character at a time.
            arrays = ", ".join(f"%b::{array}" for array in _PG_ARRAY_TYPES)
            notification_id = preparer.quote("notification_id")
            # The runs a batch starts ride in the same statement: one round trip, not two.
            self._insert_sql = (
                f"WITH new_runs AS (INSERT INTO {preparer.format_table(self.runs)} "
                "(originator_id, namespace, workflow_id, run_id) "
                "SELECT * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[]) "
                "ON CONFLICT DO NOTHING) "
                f"INSERT INTO {table_name} ({columns}) SELECT * FROM unnest({arrays}) "
                f"RETURNING {notification_id}"
            )
            ms = int(datastore.lock_timeout * 1000)
            self._lock_sql = (
                f"SET LOCAL lock_timeout = '{ms}ms'; "
                f"LOCK TABLE {table_name} IN EXCLUSIVE MODE; NOTIFY {self.channel}"
            )
            self._rows = RowBuilder(uuid_as_hex=False, time_suffix="+00:00")

    def insert(
        self, conn: Connection, stored_events: Sequence[StoredEvent], *, want_ids: bool
    ) -> list[int]:
        """Insert in the caller's transaction, and the runs its started events start; the ids
        (if wanted). Driver errors are raised as they are (the datastore's unit of work
        translates them)."""
        return self.insert_driver(conn.connection, stored_events, want_ids=want_ids)

    def insert_driver(
        self, driver: Any, stored_events: Sequence[StoredEvent], *, want_ids: bool
    ) -> list[int]:
        """`insert`, on the transaction open on a DBAPI connection."""
        if not stored_events:
            return []
        rows, started = self._rows.build(stored_events)
        cursor = driver.cursor()
        try:
            if not self.datastore.is_sqlite:
                cursor.execute(self._lock_sql)  # after the Python work: hold it briefly
            runs = [(self._rows.originator(k), *v) for k, v in started.items()]
            if self.datastore.is_sqlite:
                ids = self._insert_sqlite(cursor, rows, want_ids)
                if runs:
                    cursor.executemany(self._insert_runs_sql, runs)
            else:
                ids = self._insert_postgres(cursor, rows, runs)
        finally:
            cursor.close()
        return ids

    def _insert_sqlite(self, cursor: Any, rows: list[tuple[Any, ...]], want_ids: bool) -> list[int]:
        cursor.executemany(self._insert_sql, rows)
        if not want_ids:
            return []
        cursor.execute("SELECT last_insert_rowid()")
        last = int(cursor.fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))

    def _insert_postgres(
        self, cursor: Any, rows: list[tuple[Any, ...]], runs: list[tuple[Any, ...]]
    ) -> list[int]:
        ids: list[int] = []
        run_arrays = tuple(list(column) for column in zip(*runs, strict=True)) or ([], [], [], [])
        for start in range(0, len(rows), _PG_CHUNK):
            arrays = tuple(
                list(column) for column in zip(*rows[start : start + _PG_CHUNK], strict=True)
            )
            cursor.execute(self._insert_sql, run_arrays + arrays)
            run_arrays = ([], [], [], [])
            # One statement's ids are consecutive under the table lock, in the order of the rows.
            ids.extend(sorted(row[0] for row in cursor.fetchall()))
        return ids
