"""Import and rebuild rates of the stores, beside the raw-driver floor and eventsourcing's own
recorders, with the same rows and the same commit pattern (one transaction per run). Only the
inserts are timed: tables are created before the clock starts.

Each recorder is given the stored events its own application would hand it: ours
`IndexedStoredEvent`s (the SQL store's factory asks `HistoryMapper` for each event's columns),
eventsourcing's and the raw floors plain `StoredEvent`s. Reading the columns then happens in the
mapper, outside the clock, so two more figures put it back: SQLite import end to end (mapping
and insert, each with its own mapper) and the mapping alone with and without the columns."""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder, StoredEvent

from bench.harness import Figure, Suite
from runhistory import RunHistory, load_history
from runhistory.adapters.history_json import gc_paused
from runhistory.adapters.mapper import HistoryMapper
from runhistory.domain.run_key import RunKey
from runhistory.stores.sql.rows import RowBuilder
from runhistory.stores.sql.tables import EVENT_COLUMNS

PG_URL = os.environ.get("RUNHISTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_names = itertools.count()
Prepared = Callable[[], Callable[[], None]]  # set-up (untimed) returning the timed insert
_PREFIX = "runhistory"  # the SQL store's table prefix when the application has no name


@dataclass(frozen=True)
class BenchRuns:
    """Runs as domain events, and stored as our store's mapper (`indexed`) and a plain
    `HistoryMapper` (`plain`, what an application on another store gets) store them."""

    domain: list[Sequence[Any]]
    plain: list[list[StoredEvent]]
    indexed: list[list[StoredEvent]]

    @property
    def events(self) -> int:
        return sum(len(run) for run in self.plain)


def history_mapper(*, store_columns: bool) -> HistoryMapper:
    mapper = HistoryMapper(transcoder=JSONTranscoder())
    mapper.store_columns = store_columns
    return mapper


def stored_runs(docs: Sequence[dict[str, Any]]) -> BenchRuns:
    domain = [load_history(d).collect_events() for d in docs]
    plain, indexed = history_mapper(store_columns=False), history_mapper(store_columns=True)
    return BenchRuns(
        domain,
        [[plain.to_stored_event(e) for e in run] for run in domain],
        [[indexed.to_stored_event(e) for e in run] for run in domain],
    )


def _rate(prepare: Prepared, events: int, repeats: int) -> float:
    """The median rate of `repeats` timed runs, after one warm-up run."""
    return _rates({"": prepare}, events, repeats)[""]


def _rates(prepares: dict[str, Prepared], events: int, repeats: int) -> dict[str, float]:
    """Median rates of several contenders, interleaved (one run of each per round, after a
    warm-up round), so a change in the machine's load hits them alike."""
    rates: dict[str, list[float]] = {name: [] for name in prepares}
    for round_ in range(repeats + 1):
        for name, prepare in prepares.items():
            made = len(_scratch)
            timed = prepare()
            gc.collect()
            _settle_disk()
            start = time.perf_counter()
            timed()
            if round_:  # round 0 is the warm-up
                rates[name].append(events / (time.perf_counter() - start))
            _remove_scratch(made)
    return {name: statistics.median(values) for name, values in rates.items()}


def _settle_disk() -> None:
    """Write back the dirty pages an earlier contender left: the kernel would otherwise flush
    them during the next contender's fsyncs, and charge them to it."""
    os.sync()


def _recorder(env: dict[str, str]) -> Any:
    return InfrastructureFactory.construct(env=env).application_recorder()


def _insert_all(recorder: Any, runs: list[list[StoredEvent]]) -> Callable[[], None]:
    def go() -> None:
        for run in runs:
            recorder.insert_events(run)

    return go


_scratch: list[Path] = []


def _fresh_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="rh-bench-"))
    _scratch.append(path)
    return path


def _remove_scratch(keep: int) -> None:
    """Remove the directories made after the first `keep`: a run of the store figures would
    otherwise leave gigabytes of databases behind."""
    while len(_scratch) > keep:
        shutil.rmtree(_scratch.pop(), ignore_errors=True)


def _shaped_rows(
    runs: list[list[StoredEvent]], *, postgres: bool
) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Per run, the rows our store writes (events with their columns, and the run's row),
    built before the clock starts: the raw floor of our row shape times only the database."""
    builder = RowBuilder(uuid_as_hex=not postgres, time_as_datetime=postgres)
    shaped = []
    for run in runs:
        rows, started = builder.build(run)
        shaped.append((rows, [(builder.originator(k), *v) for k, v in started.items()]))
    return shaped


_RUN_COLUMNS = "originator_id, namespace, workflow_id, run_id"


def sqlite_import(suite: Suite, label: str, bench_runs: BenchRuns) -> None:
    """Ours beside: raw sqlite3 of bare rows (what a skeptic would write), raw sqlite3 of our
    row shape into our schema (the database's cost of our rows), eventsourcing's recorder; and
    end to end (mapping and insert) beside eventsourcing's recorder."""
    events = bench_runs.events
    runs = bench_runs.plain

    def ours_env(path: Path) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "runhistory.stores.sql",
            "RUNHISTORY_SQL_URL": f"sqlite:///{path}",
        }

    def ours() -> Callable[[], None]:
        return _insert_all(_recorder(ours_env(_fresh_dir() / "rh.db")), bench_runs.indexed)

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

    shaped = _shaped_rows(runs, postgres=False)

    def raw_shaped() -> Callable[[], None]:
        path = _fresh_dir() / "shaped.db"
        env = ours_env(path)
        factory = InfrastructureFactory.construct(env=env)
        factory.application_recorder()  # our schema: tables, indexes, view
        factory.close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        insert_events = (
            f"INSERT INTO {_PREFIX}_events ({', '.join(EVENT_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        )
        insert_runs = (
            f"INSERT INTO {_PREFIX}_runs ({_RUN_COLUMNS}) VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
        )

        def go() -> None:
            for rows, run_rows in shaped:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert_events, rows)
                conn.executemany(insert_runs, run_rows)
                conn.execute("COMMIT")

        return go

    def theirs_env() -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(_fresh_dir() / "es.db"),
        }

    def theirs() -> Callable[[], None]:
        return _insert_all(_recorder(theirs_env()), runs)

    def ours_mapped() -> Callable[[], None]:
        recorder = _recorder(ours_env(_fresh_dir() / "rh.db"))
        return _map_and_insert(history_mapper(store_columns=True), recorder, bench_runs.domain)

    def theirs_mapped() -> Callable[[], None]:
        recorder = _recorder(theirs_env())
        return _map_and_insert(history_mapper(store_columns=False), recorder, bench_runs.domain)

    rates = _rates(
        {
            "ours": ours,
            "raw": raw,
            "shaped": raw_shaped,
            "theirs": theirs,
            "ours mapped": ours_mapped,
            "theirs mapped": theirs_mapped,
        },
        events,
        suite.repeats,
    )
    anchors = {
        "raw sqlite3 executemany": ("sqlite3 executemany, one txn per run", "raw"),
        "raw sqlite3 executemany of our row shape": (
            "sqlite3 executemany of the same rows into the same schema, rows prebuilt",
            "shaped",
        ),
        "eventsourcing.sqlite": ("eventsourcing SQLiteApplicationRecorder", "theirs"),
    }
    for name, (anchor, key) in anchors.items():
        suite.add(
            f"SQLite import {label} vs {name}",
            Figure(rates["ours"], "events/s", anchor, rates[key], higher_is_better=True),
        )
    suite.add(
        f"SQLite import {label} end to end vs eventsourcing.sqlite",
        Figure(
            rates["ours mapped"],
            "events/s",
            "HistoryMapper without columns + eventsourcing SQLiteApplicationRecorder",
            rates["theirs mapped"],
            higher_is_better=True,
            note="mapping (the columns read by ours) and insert",
        ),
    )


def _map_and_insert(
    mapper: HistoryMapper, recorder: Any, domain: list[Sequence[Any]]
) -> Callable[[], None]:
    def go() -> None:
        to_stored = mapper.to_stored_event
        with gc_paused():  # as RunHistory saves a run
            for run in domain:
                recorder.insert_events([to_stored(e) for e in run])

    return go


def mapping(suite: Suite, label: str, bench_runs: BenchRuns) -> None:
    """`HistoryMapper.to_stored_event` with the store's columns read (ours) beside without."""

    def mapper(store_columns: bool) -> Prepared:
        def prepare() -> Callable[[], None]:
            to_stored = history_mapper(store_columns=store_columns).to_stored_event

            def go() -> None:
                for run in bench_runs.domain:
                    for event in run:
                        to_stored(event)

            return go

        return prepare

    rates = _rates(
        {"columns": mapper(True), "plain": mapper(False)}, bench_runs.events, suite.repeats
    )
    suite.add(
        f"map {label} with the store's columns vs without",
        Figure(
            rates["columns"],
            "events/s",
            "HistoryMapper.to_stored_event without columns",
            rates["plain"],
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
    suite: Suite, label: str, bench_runs: BenchRuns, *, with_eventsourcing: bool = True
) -> None:
    """Ours beside: psycopg executemany and COPY of bare rows, psycopg COPY (binary) of our row
    shape into our schema, eventsourcing's recorder. `with_eventsourcing=False` leaves out
    eventsourcing's recorder: given one 50k-event call it did not finish in 10 minutes here
    (the client blocked on a huge statement)."""
    if not pg_available():
        print(f"skipping PostgreSQL figures: no server at {PG_URL}")
        return
    import psycopg

    events = bench_runs.events
    runs = bench_runs.plain
    pid = os.getpid()

    def ours_env() -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "runhistory.stores.sql",
            "RUNHISTORY_SQL_URL": PG_URL,
            "RUNHISTORY_SQL_TABLE_PREFIX": f"bench{pid}x{next(_names)}",
        }

    def ours() -> Callable[[], None]:
        return _insert_all(_recorder(ours_env()), bench_runs.indexed)

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

    shaped = _shaped_rows(runs, postgres=True)

    def raw_shaped() -> Callable[[], None]:
        env = ours_env()
        prefix = env["RUNHISTORY_SQL_TABLE_PREFIX"]
        factory = InfrastructureFactory.construct(env=env)
        factory.application_recorder()  # our schema: tables, indexes, view
        factory.close()
        conn = psycopg.connect(PG_URL)
        copy_events = (
            f"COPY {prefix}_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        )
        insert_runs = (
            f"INSERT INTO {prefix}_runs ({_RUN_COLUMNS}) VALUES (%s,%s,%s,%s)"
            " ON CONFLICT DO NOTHING"
        )
        types = ["uuid", "int8", "text", "bytea", "int8", "text", "timestamptz", "text"]

        def go() -> None:
            for rows, run_rows in shaped:
                with conn.cursor() as cur:
                    if run_rows:
                        cur.executemany(insert_runs, run_rows)
                    with cur.copy(copy_events) as c:
                        c.set_types(types)
                        for row in rows:
                            c.write_row(row)
                conn.commit()

        return go

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

    contenders: dict[str, Prepared] = {
        "ours": ours,
        "executemany": raw(False),
        "copy": raw(True),
        "shaped": raw_shaped,
    }
    anchors = {
        "psycopg executemany": ("psycopg executemany, one txn per run", "executemany"),
        "psycopg COPY": ("psycopg COPY, one txn per run", "copy"),
        "psycopg COPY of our row shape": (
            "psycopg binary COPY of the same rows into the same schema, rows prebuilt",
            "shaped",
        ),
    }
    if with_eventsourcing:
        contenders["theirs"] = theirs
        anchors["eventsourcing.postgres"] = ("eventsourcing PostgresApplicationRecorder", "theirs")
    try:
        rates = _rates(contenders, events, suite.repeats)
        for name, (anchor, key) in anchors.items():
            suite.add(
                f"PostgreSQL import {label} vs {name}",
                Figure(rates["ours"], "events/s", anchor, rates[key], higher_is_better=True),
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


SHORT_RUN = 100
"""Events of the short run whose snapshot rebuild the long run's is set beside."""


def rebuild(suite: Suite, doc: dict[str, Any]) -> None:
    """Rebuilding a long run from each store without and with a snapshot, beside load_history
    of the same JSON; and its snapshot rebuild beside a short run's (near constant: ratio ~1)."""
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
            _rebuild_from(suite, name, url, doc, load_rate)
    finally:
        if pg_available():
            _drop_bench_objects(pid)


def _interleaved_seconds(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in turn (after one warm-up round), so that the
    machine's changing load falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats + 1):
        for name, fn in fns.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _rebuild_from(suite: Suite, name: str, url: str, doc: dict[str, Any], load_rate: float) -> None:
    events = len(doc["events"])
    # no automatic snapshot: the rebuild without one is timed first, then one is taken
    env = {"RUNHISTORY_SNAPSHOT_INTERVAL": "0"}
    if "postgres" in url:
        env["RUNHISTORY_SQL_TABLE_PREFIX"] = f"bench{os.getpid()}x{next(_names)}"
    app = RunHistory.open(url, **env)
    try:
        key = app.import_history(doc).key
        short = {"events": doc["events"][:SHORT_RUN]}
        short_key = app.import_history(short, namespace="bench-short").key

        def get(key: RunKey) -> Callable[[], None]:
            def go() -> None:
                app.get(key)

            return go

        replay_rate = _rate(lambda: get(key), events, suite.repeats)
        app.take_snapshot(key.aggregate_id)
        app.take_snapshot(short_key.aggregate_id)
        assert not app.get(key).history_loaded, "the rebuild did not use the snapshot"
        # milliseconds each: many repeats, so that the median is not one scheduler hiccup
        timed = _interleaved_seconds(
            {"long": get(key), "short": get(short_key)}, repeats=max(5, suite.repeats * 5)
        )
        long_s, short_s = timed["long"], timed["short"]
    finally:
        app.close()
    suite.add(
        f"rebuild a {events}-event run from {name} without a snapshot vs load_history of its JSON",
        Figure(
            replay_rate,
            "events/s",
            "load_history (parse + validate)",
            load_rate,
            higher_is_better=True,
        ),
    )
    suite.add(
        f"rebuild a {events}-event run from {name} with a snapshot vs without",
        Figure(
            events / long_s,
            "events/s",
            "the same rebuild without a snapshot",
            replay_rate,
            higher_is_better=True,
            note="the events before the snapshot are loaded when the history is first read",
        ),
    )
    suite.add(
        f"snapshot rebuild of a {events}-event run from {name} vs of a {SHORT_RUN}-event run",
        Figure(
            long_s * 1000,
            "ms",
            f"snapshot rebuild of a {SHORT_RUN}-event run from the same store",
            short_s * 1000,
            note="near constant: a ratio near 1 means the run's length costs nothing (the"
            " cost follows live entities: this short prefix has more open than the closed run)",
        ),
    )
