"""Engines and units of work: how the recorders reach SQLite or PostgreSQL.

SQLite is configured so a writing transaction starts with `BEGIN IMMEDIATE` (it holds the write
lock from its first statement, so ids are handed out in commit order and a read-then-write never
fails midway), waits `busy_timeout` for other writers, and uses WAL for file databases so readers
never block writers, and a database it creates gets 8 KiB pages. Threads of one process queue on
a lock rather than on SQLite's busy sleeps.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import NotSupportedError, OperationalError
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from runhistory.stores.sql.errors import translate_errors

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_URL",
    "NEW_PAGE_SIZE",
    "SQLDatastore",
    "configure_sqlite_engine",
    "create_engine",
    "normalise_url",
]

DEFAULT_URL = "sqlite:///runhistory.db"
DEFAULT_LOCK_TIMEOUT = 10.0
# The page size of a database this module creates. History events are stored as JSON of about
# 500 bytes; with SQLite's default 4 KiB pages a run's import spends much of its time splitting
# and writing pages, and 8 KiB pages measured markedly faster for large runs and level for runs
# of ~100 events (bench/README.md, "SQL import"); larger pages would make each small commit of
# a live tail write more to the WAL.
NEW_PAGE_SIZE = 8192
_BEGIN_OPTION = "runhistory_sqlite_begin"
_SQLITE_WRITE_LOCKS: dict[str, threading.Lock] = {}
_SQLITE_WRITE_LOCKS_GUARD = threading.Lock()


def normalise_url(url: str | URL) -> URL:
    """The URL with PostgreSQL's driver set to psycopg 3 (`postgresql://` -> `+psycopg`)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in str(url.query)


def create_engine(
    url: str | URL = DEFAULT_URL, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **kwargs: Any
) -> Engine:
    """An engine for `url`, configured for event storage (see the module docstring)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    connect_args = {"check_same_thread": False, "timeout": lock_timeout}
    connect_args.update(kwargs.pop("connect_args", {}))
    if _is_sqlite_memory(parsed):
        # One in-memory database needs one connection; the datastore serialises its use.
        kwargs.setdefault("poolclass", StaticPool)
    engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
    configure_sqlite_engine(engine, wal=not _is_sqlite_memory(parsed), lock_timeout=lock_timeout)
    return engine


def configure_sqlite_engine(
    engine: Engine, *, wal: bool = True, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions, with `BEGIN IMMEDIATE` unless
    a connection's `runhistory_sqlite_begin` option says otherwise ("" = autocommit reads)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
        # Takes effect only while the database is empty (then WAL fixes it): see NEW_PAGE_SIZE.
        cursor.execute(f"PRAGMA page_size = {NEW_PAGE_SIZE}")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get(_BEGIN_OPTION)
        if begin is None:  # a host's connection: SQLAlchemy wraps any error as usual
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif begin:  # a recorder's: its unit of work translates driver errors itself
            connection.connection.driver_connection.execute(begin)  # type: ignore[union-attr]


class SQLDatastore:
    """An engine (or a host's connection) and the units of work the recorders run in."""

    def __init__(
        self,
        bind: Engine | Connection,
        *,
        owns_engine: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        poll_interval: float | None = None,
    ) -> None:
        self.bound: Connection | None = bind if isinstance(bind, Connection) else None
        self.engine: Engine = bind.engine if isinstance(bind, Connection) else bind
        self.dialect_name = self.engine.dialect.name
        if self.dialect_name not in ("sqlite", "postgresql"):
            raise NotSupportedError(
                f"runhistory's SQL store supports SQLite and PostgreSQL, not {self.dialect_name}"
            )
        self.is_sqlite = self.dialect_name == "sqlite"
        self.is_memory = self.is_sqlite and _is_sqlite_memory(self.engine.url)
        self.lock_timeout = lock_timeout
        self.poll_interval = (
            poll_interval if poll_interval is not None else (0.1 if self.is_sqlite else 1.0)
        )
        self._owns_engine = owns_engine
        # Its own engine (made by `create_engine`): the recorders' plain inserts run on one held
        # driver connection, without SQLAlchemy's (and the pool's ping's) work per transaction.
        self.driver_writes = owns_engine and self.bound is None
        self._driver_writer: Any = None
        # PostgreSQL: the held connection is in autocommit mode and the writer sends `BEGIN` in
        # its first statement's round trip; this process's writers queue on a lock for it.
        self.begin_in_first_statement = self.driver_writes and not self.is_sqlite
        self._driver_lock = threading.Lock()
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        # A shared connection (in-memory SQLite, or a host's) is used by one thread at a time.
        self._serial: AbstractContextManager[Any] = (
            threading.RLock() if self.is_memory or self.bound is not None else nullcontext()
        )
        self._write_lock = self._sqlite_write_lock() if self.is_sqlite else None
        self._listeners: dict[str, set[threading.Event]] = {}
        self._listeners_guard = threading.Lock()
        self._reader: Engine
        self._writer: Engine
        if self.is_sqlite:
            self._reader = self.engine.execution_options(**{_BEGIN_OPTION: ""})
            self._writer = self.engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        else:
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self._writer = self.engine

    def _sqlite_write_lock(self) -> threading.Lock:
        key = (
            "memory:" + str(id(self))
            if self.is_memory
            else os.path.realpath(self.engine.url.database or "")
        )
        with _SQLITE_WRITE_LOCKS_GUARD:
            return _SQLITE_WRITE_LOCKS.setdefault(key, threading.Lock())

    @contextmanager
    def transaction(
        self, *, write: bool, connection: Connection | None = None
    ) -> Iterator[Connection]:
        """One unit of work. On a given (or bound) connection it is a savepoint inside the
        caller's open transaction, so the caller's commit or rollback decides for both."""
        conn = connection if connection is not None else self.bound
        with translate_errors(self._driver_error):
            if conn is not None:
                with self._serial if connection is None else nullcontext():
                    scope = conn.begin_nested() if conn.in_transaction() else conn.begin()
                    with scope:
                        yield conn
                return
            with self._exclusive(write), self._serial:
                if write:
                    with self._writer.begin() as conn:
                        yield conn
                else:
                    with self._reader.connect() as conn:
                        yield conn

    @contextmanager
    def driver_write(self) -> Iterator[Any]:
        """One write transaction on the held driver connection (`driver_writes`): on SQLite
        `BEGIN IMMEDIATE`, on PostgreSQL the caller's first statement begins it
        (`begin_in_first_statement`); then the caller's statements, then `COMMIT`, or `ROLLBACK`
        if it raises. Errors are raised as eventsourcing's, as `transaction` does."""
        with (
            translate_errors(self._driver_error),
            self._exclusive(True),
            self._serial,
            self._driver_locked(),
        ):
            fairy = self._driver_writer
            if fairy is not None and getattr(fairy.driver_connection, "broken", False):
                self._driver_writer = None
                fairy.invalidate()
                fairy = None
            if fairy is None:
                fairy = self._driver_writer = self.engine.raw_connection()
            driver: Any = fairy.driver_connection
            if not self.is_sqlite and not driver.autocommit:
                driver.autocommit = True
            if self.is_sqlite:
                driver.execute("BEGIN IMMEDIATE")
            try:
                yield driver
                driver.execute("COMMIT")
            except BaseException:
                try:
                    if self.is_sqlite:
                        driver.rollback()  # a no-op if SQLite already rolled it back
                    else:
                        driver.execute("ROLLBACK")  # a warning only if none is open
                except Exception:  # noqa: BLE001 - the connection is unusable: open another
                    self._driver_writer = None
                    fairy.invalidate()
                raise

    @contextmanager
    def _driver_locked(self) -> Iterator[None]:
        if self.is_sqlite:  # `_exclusive` already serialises this process's SQLite writers
            yield
            return
        with self._holding(self._driver_lock):
            yield

    def _release_driver_writer(self) -> None:
        fairy, self._driver_writer = self._driver_writer, None
        if fairy is not None:
            if not self.is_sqlite:
                try:  # back to the pool as SQLAlchemy's other connections are
                    fairy.driver_connection.autocommit = False
                except Exception:  # noqa: BLE001 - broken: the pool discards it
                    fairy.invalidate()
                    return
            fairy.close()

    @contextmanager
    def _exclusive(self, write: bool) -> Iterator[None]:
        if not write or self._write_lock is None:
            yield
            return
        with self._holding(self._write_lock):
            yield

    @contextmanager
    def _holding(self, lock: threading.Lock) -> Iterator[None]:
        """Hold `lock`, waiting at most the lock timeout, then raise OperationalError."""
        if not lock.acquire(timeout=self.lock_timeout):
            raise OperationalError(
                f"timed out after {self.lock_timeout}s waiting to write to {self.engine.url!r}"
            )
        try:
            yield
        finally:
            lock.release()

    def listen(self, table: str, wake: threading.Event) -> None:
        with self._listeners_guard:
            self._listeners.setdefault(table, set()).add(wake)

    def unlisten(self, table: str, wake: threading.Event) -> None:
        with self._listeners_guard:
            self._listeners.get(table, set()).discard(wake)

    def notify(self, table: str) -> None:
        """Wake this process's subscriptions to `table` (after a commit)."""
        with self._listeners_guard:
            wakes = list(self._listeners.get(table, ()))
        for wake in wakes:
            wake.set()

    def close(self) -> None:
        if self._owns_engine:
            with self._serial:  # a shared connection may still be in use by another thread
                self._release_driver_writer()
                self.engine.dispose()
