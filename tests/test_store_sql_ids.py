"""Notification ids on SQLite are never handed out twice, even after someone deletes or renumbers
the newest rows by hand: a tracked projection that has seen id n must never miss a later event
because it was given an id at or below n. (PostgreSQL's ids come from a sequence, which never goes
back.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from sqlalchemy import event

from runhistory.stores.sql import Factory, create_engine
from tests.test_store_sql_support import SQLStore


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    opened = SQLStore(request.param)
    yield opened
    opened.close()


def _events(count: int) -> list[StoredEvent]:
    originator = uuid4()
    return [StoredEvent(originator, v, "myapp:Happened", b"{}") for v in range(1, count + 1)]


def _stored_ids(recorder: ApplicationRecorder) -> list[int]:
    return [n.id for n in recorder.select_notifications(start=None, limit=1000)]


def _execute(store: SQLStore, recorder: ApplicationRecorder, sql: str) -> None:
    """Run `sql` by hand, as someone at a SQL prompt would (on the store's own connection when
    the database is in memory)."""
    table = f"{store.prefix}_events"
    engine = store.factories[0].datastore.engine
    with engine.begin() as conn:
        conn.exec_driver_sql(sql.format(table=table))


def test_ids_are_not_reused_after_the_newest_rows_are_deleted(store: SQLStore) -> None:
    recorder = store.factory().application_recorder()
    assert recorder.insert_events(_events(5)) == [1, 2, 3, 4, 5]
    _execute(store, recorder, "DELETE FROM {table} WHERE notification_id >= 4")
    assert recorder.insert_events(_events(3)) == [6, 7, 8]
    assert _stored_ids(recorder) == [1, 2, 3, 6, 7, 8]
    _execute(store, recorder, "DELETE FROM {table}")
    assert recorder.insert_events(_events(1)) == [9]
    assert recorder.max_notification_id() == 9


def test_ids_are_not_reused_after_the_newest_row_is_renumbered(store: SQLStore) -> None:
    recorder = store.factory().application_recorder()
    recorder.insert_events(_events(4))
    _execute(store, recorder, "UPDATE {table} SET notification_id = 100 WHERE notification_id = 4")
    _execute(store, recorder, "UPDATE {table} SET notification_id = 4 WHERE notification_id = 100")
    assert recorder.insert_events(_events(2)) == [101, 102]
    assert _stored_ids(recorder) == [1, 2, 3, 4, 101, 102]


def test_the_ids_returned_are_the_ids_stored(store: SQLStore) -> None:
    recorder = store.factory().application_recorder()
    returned: list[int] = []
    for size in (1, 3, 2, 7):
        returned += recorder.insert_events(_events(size)) or []
        if size == 3:
            _execute(store, recorder, "DELETE FROM {table} WHERE notification_id = 4")
    stored = _stored_ids(recorder)
    assert returned == sorted(set(returned))
    assert stored == [i for i in returned if i != 4]


def test_inserts_write_no_sequence_row(store: SQLStore) -> None:
    """The table has no AUTOINCREMENT: no write to `sqlite_sequence` for every row inserted."""
    factory = store.factory()
    factory.application_recorder().insert_events(_events(3))
    with factory.datastore.engine.connect() as conn:
        names = {
            row[0]
            for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert "sqlite_sequence" not in names


def test_a_table_made_with_autoincrement_keeps_its_sequence(tmp_path: object) -> None:
    """An events table that an earlier version made with AUTOINCREMENT, whose newest rows were
    deleted: the floor is seeded from its sequence when the store opens."""
    store = SQLStore("file")
    try:
        assert store.tmp is not None
        path = store.tmp / "events.db"
        table = f"{store.prefix}_events"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(
            f"CREATE TABLE {table} (notification_id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " originator_id CHAR(32) NOT NULL, originator_version BIGINT NOT NULL,"
            " topic TEXT NOT NULL, state BLOB NOT NULL, event_id BIGINT, event_type TEXT,"
            " event_time DATETIME, attributes_key TEXT,"
            f" CONSTRAINT {table}_version_key UNIQUE (originator_id, originator_version))"
        )
        for version in range(1, 8):
            conn.execute(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                " VALUES (?, ?, 'myapp:Happened', x'7b7d')",
                (uuid4().hex, version),
            )
        conn.execute(f"DELETE FROM {table} WHERE notification_id > 5")
        conn.close()
        recorder = store.factory().application_recorder()
        assert recorder.insert_events(_events(2)) == [8, 9]
        assert _stored_ids(recorder) == [1, 2, 3, 4, 5, 8, 9]
    finally:
        store.close()


@pytest.mark.parametrize("sizes", [[1, 2, 3, 7], [255, 256, 257], [600, 1000, 31]])
def test_batches_of_any_size_get_consecutive_ids_in_version_order(
    store: SQLStore, sizes: list[int]
) -> None:
    """A batch is written with several multi-row statements; its rows must still be stored in
    order, each with the id returned for it."""
    recorder = store.factory().application_recorder()
    batches = [_events(size) for size in sizes]
    returned = [recorder.insert_events(batch) for batch in batches]
    stored = recorder.select_notifications(start=None, limit=sum(sizes) + 1)
    assert [(n.originator_id, n.originator_version) for n in stored] == [
        (e.originator_id, e.originator_version) for batch in batches for e in batch
    ]
    flat = [i for ids in returned for i in ids or []]
    assert [n.id for n in stored] == flat == list(range(1, sum(sizes) + 1))


def test_a_sqlite_that_binds_few_parameters_gets_smaller_statements() -> None:
    """SQLite before 3.32 binds at most 999 parameters per statement; here a limit of 20 (two
    rows of eight columns) is set on every connection."""
    store = SQLStore("file")
    try:
        engine = create_engine(store.url)

        @event.listens_for(engine, "connect")
        def _few(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)

        factory = Factory.from_engine(engine, {"RUNHISTORY_SQL_TABLE_PREFIX": store.prefix})
        recorder = factory.application_recorder()
        batch = _events(7)
        assert recorder.insert_events(batch) == list(range(1, 8))
        stored = recorder.select_events(batch[0].originator_id)
        assert [e.originator_version for e in stored] == list(range(1, 8))
        factory.close()
        engine.dispose()
    finally:
        store.close()
