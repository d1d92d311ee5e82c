"""Import and rebuild rates of the stores, beside the raw-driver floor and eventsourcing's own
recorders, with the same rows and the same commit pattern (one transaction per run). Only the
inserts are timed: tables are created before the clock starts."""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder, StoredEvent

from bench.harness import Figure, Suite
from runhistory import RunHistory, load_history
from runhistory.adapters.mapper import HistoryMapper

PG_URL = os.environ.get("RUNHISTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_names = itertools.count()
Prepared = Callable[[], Callable[[], None]]  # set-up (untimed) returning the timed insert


def stored_runs(docs: Sequence[dict[str, Any]]) -> list[list[StoredEvent]]:
    mapper = HistoryMapper(transcoder=JSONTranscoder())
    return [[mapper.to_stored_event(e) for e in load_history(d).collect_events()] for d in docs]


def _rate(prepare: Prepared, events: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        timed = prepare()
        start = time.perf_counter()
        timed()
        rates.append(events / (time.perf_counter() - start))
    rates.sort()
    return rates[len(rates) // 2]


def _recorder(env: dict[str, str]) -> Any:
    return InfrastructureFactory.construct(env=env).application_recorder()


def _insert_all(recorder: Any, runs: list[list[StoredEvent]]) -> Callable[[], None]:
    def go() -> None:
        for run in runs:
            recorder.insert_events(run)

    return go


def _fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rh-bench-"))


def sqlite_import(suite: Suite, label: str, runs: list[list[StoredEvent]]) -> None:
    events = sum(len(r) for r in runs)

    def ours() -> Callable[[], None]:
        env = {
            "PERSISTENCE_MODULE": "runhistory.stores.sql",
            "RUNHISTORY_SQL_URL": f"sqlite:///{_fresh_dir() / 'rh.db'}",
        }
        return _insert_all(_recorder(env), runs)

    def raw() -> Callable[[], None]:
        conn = sqlite3.connect(_fresh_dir() / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE raw (id INTEGER PRIMARY KEY AUTOINCREMENT, originator_id TEXT,"
            " originator_version INTEGER, topic TEXT, state BLOB,"
            " UNIQUE(originator_id, originator_version))"
        )

        def go() -> None:
            for run in runs:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO raw (originator_id, originator_version, topic, state)"
                    " VALUES (?,?,?,?)",
                    [(str(e.originator_id), e.originator_version, e.topic, e.state) for e in run],
                )
                conn.execute("COMMIT")

        return go

    def theirs() -> Callable[[], None]:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(_fresh_dir() / "es.db"),
        }
        return _insert_all(_recorder(env), runs)

    mine = _rate(ours, events, suite.repeats)
    suite.add(
        f"SQLite import {label} vs raw sqlite3 executemany",
        Figure(
            mine,
            "events/s",
            "sqlite3 executemany, one txn per run",
            _rate(raw, events, suite.repeats),
            higher_is_better=True,
        ),
    )
    suite.add(
        f"SQLite import {label} vs eventsourcing.sqlite",
        Figure(
            mine,
            "events/s",
            "eventsourcing SQLiteApplicationRecorder",
            _rate(theirs, events, suite.repeats),
            higher_is_better=True,
        ),
    )


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means: no server to measure against
        return False


def postgres_import(
    suite: Suite, label: str, runs: list[list[StoredEvent]], *, with_eventsourcing: bool = True
) -> None:
    """`with_eventsourcing=False` leaves out eventsourcing's recorder: given one 50k-event call
    it did not finish in 10 minutes here (the client blocked on a huge statement)."""
    if not pg_available():
        print(f"skipping PostgreSQL figures: no server at {PG_URL}")
        return
    import psycopg

    events = sum(len(r) for r in runs)
    pid = os.getpid()

    def ours() -> Callable[[], None]:
        env = {
            "PERSISTENCE_MODULE": "runhistory.stores.sql",
            "RUNHISTORY_SQL_URL": PG_URL,
            "RUNHISTORY_SQL_TABLE_PREFIX": f"bench{pid}x{next(_names)}",
        }
        return _insert_all(_recorder(env), runs)

    def raw(copy: bool) -> Prepared:
        def prepare() -> Callable[[], None]:
            table = f"raw{pid}x{next(_names)}"
            conn = psycopg.connect(PG_URL)
            conn.execute(
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, originator_id uuid,"
                " originator_version bigint, topic text, state bytea,"
                " UNIQUE(originator_id, originator_version))"
            )
            conn.commit()
            columns = f"{table} (originator_id, originator_version, topic, state)"

            def go() -> None:
                for run in runs:
                    rows = [(e.originator_id, e.originator_version, e.topic, e.state) for e in run]
                    with conn.cursor() as cur:
                        if copy:
                            with cur.copy(f"COPY {columns} FROM STDIN") as c:
                                for row in rows:
                                    c.write_row(row)
                        else:
                            cur.executemany(f"INSERT INTO {columns} VALUES (%s,%s,%s,%s)", rows)
                    conn.commit()

            return go

        return prepare

    def theirs() -> Callable[[], None]:
        schema = f"es{pid}x{next(_names)}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": "test",
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": "5432",
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": "",
            "POSTGRES_SCHEMA": schema,
        }
        return _insert_all(_recorder(env), runs)

    try:
        mine = _rate(ours, events, suite.repeats)
        suite.add(
            f"PostgreSQL import {label} vs psycopg executemany",
            Figure(
                mine,
                "events/s",
                "psycopg executemany, one txn per run",
                _rate(raw(False), events, suite.repeats),
                higher_is_better=True,
            ),
        )
        suite.add(
            f"PostgreSQL import {label} vs psycopg COPY",
            Figure(
                mine,
                "events/s",
                "psycopg COPY, one txn per run",
                _rate(raw(True), events, suite.repeats),
                higher_is_better=True,
            ),
        )
        if with_eventsourcing:
            suite.add(
                f"PostgreSQL import {label} vs eventsourcing.postgres",
                Figure(
                    mine,
                    "events/s",
                    "eventsourcing PostgresApplicationRecorder",
                    _rate(theirs, events, suite.repeats),
                    higher_is_better=True,
                ),
            )
    finally:
        _drop_bench_objects(pid)


def _drop_bench_objects(pid: int) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND (tablename LIKE %s OR tablename LIKE %s)",
            (f"bench{pid}x%", f"raw{pid}x%"),
        ).fetchall()
        for (name,) in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"es{pid}x%",)
        ).fetchall()
        for (name,) in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def rebuild(suite: Suite, doc: dict[str, Any]) -> None:
    """Rebuilding a long run from each store, beside load_history of the same JSON."""
    events = len(doc["events"])

    def load() -> Callable[[], None]:
        def go() -> None:
            load_history(doc)

        return go

    load_rate = _rate(load, events, suite.repeats)
    stores = {
        "memory": "memory://",
        "SQLite": f"sqlite:///{_fresh_dir() / 'rb.db'}",
        "files": f"file://{_fresh_dir()}",
    }
    if pg_available():
        stores["PostgreSQL"] = PG_URL
    pid = os.getpid()
    try:
        for name, url in stores.items():
            env = {"RUNHISTORY_SQL_TABLE_PREFIX": f"bench{pid}x{next(_names)}"}
            app = RunHistory.open(url, **(env if "postgres" in url else {}))
            key = app.import_history(doc).key

            def get(app: RunHistory = app, key: Any = key) -> Callable[[], None]:
                def go() -> None:
                    app.get(key)

                return go

            suite.add(
                f"rebuild a {events}-event run from {name} vs load_history of its JSON",
                Figure(
                    _rate(get, events, suite.repeats),
                    "events/s",
                    "load_history (parse + validate)",
                    load_rate,
                    higher_is_better=True,
                ),
            )
    finally:
        if pg_available():
            _drop_bench_objects(pid)
