"""Writing stored events into the events table: the one statement written per dialect, for speed.

Everything else is SQLAlchemy Core. The insert is driver SQL, run on a DBAPI cursor and fed plain
tuples, because Core's per-row parameter processing (and its per-statement overhead, for small
runs) costs more than the insert itself. The cursor is the unit of work's connection's or, for
an application's plain insert into a store that made its own engine, the datastore's held write
connection's (`SQLDatastore.driver_write`: no SQLAlchemy work per transaction at all; on
PostgreSQL the transaction's `BEGIN` rides in the lock's round trip).
- SQLite: multi-row `INSERT`s; SQLite gives each row the highest rowid plus one, and the transaction
  holds the database's only write lock from `BEGIN IMMEDIATE`, so the ids are the `n` after the
  highest id read just before, or after the id floor (`Tables.id_floor_sql`) if the newest
  rows were deleted by hand (then the first row is written with its id).
- PostgreSQL: after `LOCK TABLE ... IN EXCLUSIVE MODE` (so ids are handed out in commit order:
  readers never skip an id that commits later) and a `NOTIFY` that subscribers in other
  processes hear, a batch of `copy_min_rows` rows or more is written with `COPY ... FROM STDIN`
  in binary (psycopg formats the rows in C); its ids follow the id sequence's last value, read
  in the same round trip as the lock, since nothing else can take ids from it while the lock is
  held. A smaller batch is one `INSERT ... SELECT FROM unnest(<column arrays>) RETURNING
  notification_id` (fewer round trips). A duplicate `(originator_id, originator_version)` fails
  either statement, and the transaction, with the driver's unique violation.
A batch holding a run's started event also writes the run's row in `<prefix>_runs`, in the same
transaction: the run's key is stored once, not on each event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection

from runhistory.stores.sql.datastore import SQLDatastore
from runhistory.stores.sql.rows import RowBuilder
from runhistory.stores.sql.tables import EVENT_COLUMNS, Tables

__all__ = ["EventWriter"]

_PG_CHUNK = 5000
# Rows per multi-row INSERT on SQLite: measured best among 64, 256 and 1,000 for both a 50k-event
# run and runs of ~100 events (bench/README.md, "SQL import").
SQLITE_MULTI_ROWS = 256
# Batches of at least this many rows go by COPY on PostgreSQL. COPY takes one more round trip
# than the INSERT but skips psycopg's Python-level dumping of the column arrays (about half the
# client's time per row): measured, the two are within noise up to a few rows per batch, and
# COPY is ahead from there (a quarter less time per 64-row batch).
COPY_MIN_ROWS = 8
_PG_COPY_TYPES = (
    "uuid", "int8", "text", "bytea", "int8", "text", "timestamptz", "text",
)  # fmt: skip
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
            self._insert_head = f"INSERT INTO {table_name} ({columns}) VALUES "
            self._row_marks = f"({marks})"
            self._insert_sql_by_size: dict[int, str] = {}
            self._insert_at_sql = (
                f"INSERT INTO {table_name} ({preparer.quote('notification_id')}, {columns}) "
                f"VALUES (?, {marks})"
            )
            floor = preparer.quote(tables.id_floor)
            self._last_ids_sql = (
                f"SELECT (SELECT max(notification_id) FROM {table_name}), "
                f"(SELECT highest FROM {floor} WHERE id = 0)"
            )
            self._rows = RowBuilder(uuid_as_hex=True, time_as_datetime=False, flat=True)
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
            self._copy_sql = f"COPY {table_name} ({columns}) FROM STDIN (FORMAT BINARY)"
            sequence = (
                f"pg_get_serial_sequence({_pg_string(table_name)}, 'notification_id')::regclass"
            )
            # NULL until the sequence's first id: then `currval` after the COPY says.
            self._last_id_sql = f"SELECT pg_sequence_last_value({sequence})"
            self._currval_sql = f"SELECT currval({sequence})"
            self._runs_sql = (
                f"INSERT INTO {preparer.format_table(self.runs)} "
                "(originator_id, namespace, workflow_id, run_id) VALUES ",
                " ON CONFLICT DO NOTHING",
            )
            self._rows = RowBuilder(uuid_as_hex=False, time_as_datetime=True)
        self.copy_min_rows = COPY_MIN_ROWS
        self._max_rows: int | None = None

    def insert(
        self, conn: Connection, stored_events: Sequence[StoredEvent], *, want_ids: bool
    ) -> list[int]:
        """Insert in the caller's transaction, and the runs its started events start; the ids
        (if wanted). Driver errors are raised as they are (the datastore's unit of work
        translates them)."""
        return self.insert_driver(conn.connection, stored_events, want_ids=want_ids)

    def insert_driver(
        self,
        driver: Any,
        stored_events: Sequence[StoredEvent],
        *,
        want_ids: bool,
        begin: bool = False,
    ) -> list[int]:
        """`insert`, on the transaction open on a DBAPI connection, or (PostgreSQL, `begin`)
        on an autocommit connection: the first statement then begins the transaction."""
        if not stored_events:
            return []
        rows, started = self._rows.build(stored_events)
        cursor = driver.cursor()
        try:
            runs = [(self._rows.originator(k), *v) for k, v in started.items()]
            if self.datastore.is_sqlite:
                ids = self._insert_sqlite(cursor, rows, len(stored_events), want_ids)
                for run in runs:  # mostly none or one
                    cursor.execute(self._insert_runs_sql, run)
            elif len(rows) >= self.copy_min_rows:
                ids = self._copy_postgres(cursor, rows, runs, want_ids, begin)
            else:
                # After the Python work: hold the lock briefly.
                cursor.execute("BEGIN; " + self._lock_sql if begin else self._lock_sql)
                ids = self._insert_postgres(cursor, rows, runs)
        finally:
            cursor.close()
        return ids

    def _insert_sqlite(
        self, cursor: Any, values: list[Any], count: int, want_ids: bool
    ) -> list[int]:
        """Insert `count` rows whose values are `values` (flat) with multi-row `INSERT`s: one
        statement of up to SQLITE_MULTI_ROWS rows binds and steps once, where `executemany`
        steps and resets the statement for every row (measured a fifth faster or more)."""
        width = len(EVENT_COLUMNS)
        cursor.execute(self._last_ids_sql)
        newest, floor = cursor.fetchone()
        last = newest or 0
        done = 0
        if floor is not None and floor > last:
            # The newest rows were deleted: start above every id ever handed out.
            last = floor
            cursor.execute(self._insert_at_sql, (last + 1, *values[:width]))
            done = 1
        while done < count:
            size = _chunk(count - done, self._multi_rows(cursor))
            cursor.execute(self._sqlite_insert(size), values[done * width : (done + size) * width])
            done += size
        if not want_ids:
            return []
        return list(range(last + 1, last + count + 1))

    def _sqlite_insert(self, rows: int) -> str:
        sql = self._insert_sql_by_size.get(rows)
        if sql is None:
            sql = self._insert_head + ", ".join([self._row_marks] * rows)
            self._insert_sql_by_size[rows] = sql
        return sql

    def _multi_rows(self, cursor: Any) -> int:
        """Rows per statement: SQLITE_MULTI_ROWS, or fewer if this SQLite binds fewer
        parameters per statement (999 before SQLite 3.32)."""
        if self._max_rows is None:
            limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._max_rows = max(1, min(SQLITE_MULTI_ROWS, limit // len(EVENT_COLUMNS)))
        return self._max_rows

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

    def _copy_postgres(
        self,
        cursor: Any,
        rows: list[tuple[Any, ...]],
        runs: list[tuple[Any, ...]],
        want_ids: bool,
        begin: bool,
    ) -> list[int]:
        # One round trip: the lock, the NOTIFY, the batch's runs and the sequence's last value.
        statements = ["BEGIN", self._lock_sql] if begin else [self._lock_sql]
        if runs:
            statements.append(self._runs_literal(runs))
        if want_ids:
            statements.append(self._last_id_sql)
        cursor.execute("; ".join(statements))
        last: int | None = None
        if want_ids:
            while cursor.description is None and cursor.nextset():
                pass
            last = cursor.fetchone()[0]
        with cursor.copy(self._copy_sql) as copy:
            copy.set_types(_PG_COPY_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
        if not want_ids:
            return []
        if last is None:
            cursor.execute(self._currval_sql)
            last = int(cursor.fetchone()[0]) - len(rows)
        return list(range(last + 1, last + len(rows) + 1))

    def _runs_literal(self, runs: list[tuple[Any, ...]]) -> str:
        """The runs' insert, its values written in as literals (so it rides in the lock's
        round trip, which cannot carry parameters)."""
        values = ", ".join(
            f"('{oid}'::uuid, {_pg_string(ns)}, {_pg_string(wid)}, {_pg_string(rid)})"
            for oid, ns, wid, rid in runs
        )
        head, tail = self._runs_sql
        return head + values + tail


def _chunk(remaining: int, most: int) -> int:
    """How many rows the next statement takes: `most`, else the largest power of two in what
    remains, so a batch of any size is written with few distinct statements (each is prepared
    once and cached by the driver)."""
    if remaining >= most:
        return most
    return 1 << (remaining.bit_length() - 1)


def _pg_string(text: str) -> str:
    """`text` as a PostgreSQL escape-string literal (`E'...'`: the same whatever
    `standard_conforming_strings` says)."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
