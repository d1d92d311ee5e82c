"""The infrastructure factory eventsourcing finds in `runhistory.stores.sql`.

Environment (each key may be prefixed with the application's name, as eventsourcing does):
- `RUNHISTORY_SQL_URL`: `sqlite:///runhistory.db` (default), `sqlite:///:memory:`,
  `postgresql://user@host/db` (the psycopg 3 driver is implied).
- `RUNHISTORY_SQL_TABLE_PREFIX`: tables are `<prefix>_events`, `_runs`, `_tracking`,
  `_snapshots`; default: the application's name in lower case (or `runhistory`).
- `RUNHISTORY_SQL_CREATE_TABLES`: create missing tables on first use (default yes; eventsourcing's
  `CREATE_TABLE` is honoured too).
- `RUNHISTORY_SQL_AUDIT_INDEXES`: also index `event_type` and `event_time` (default no: each
  costs every insert; see docs/sql-schema.md). Switching it on later creates them on first use.
- `RUNHISTORY_SQL_LOCK_TIMEOUT`: seconds a writer waits for the write lock (default 10).
- `RUNHISTORY_SQL_POLL_INTERVAL`: seconds between a subscription's polls (default 0.1 on SQLite,
  1 on PostgreSQL, which also wakes subscribers with NOTIFY).
"""

from __future__ import annotations

from typing import Any, TypeVar

from eventsourcing.domain import TAggregateID
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    Mapper,
    ProcessRecorder,
    Transcoder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool
from sqlalchemy.engine import Connection, Engine

from runhistory.stores.columns import ColumnsMapper
from runhistory.stores.sql.datastore import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_URL,
    SQLDatastore,
    create_engine,
)
from runhistory.stores.sql.recorders import (
    SQLAggregateRecorder,
    SQLApplicationRecorder,
    SQLRecorder,
)
from runhistory.stores.sql.tables import Tables, make_tables
from runhistory.stores.sql.tracking import SQLProcessRecorder, SQLTrackingRecorder

__all__ = ["Factory"]

_R = TypeVar("_R", bound=SQLRecorder)


class Factory(InfrastructureFactory[SQLTrackingRecorder]):
    """Recorders on one SQLAlchemy engine: made from the URL in the environment, or a host
    application's own engine or connection (`Factory.from_engine`)."""

    URL = "RUNHISTORY_SQL_URL"
    TABLE_PREFIX = "RUNHISTORY_SQL_TABLE_PREFIX"
    CREATE_TABLES = "RUNHISTORY_SQL_CREATE_TABLES"
    AUDIT_INDEXES = "RUNHISTORY_SQL_AUDIT_INDEXES"
    LOCK_TIMEOUT = "RUNHISTORY_SQL_LOCK_TIMEOUT"
    POLL_INTERVAL = "RUNHISTORY_SQL_POLL_INTERVAL"

    def __init__(
        self, env: Environment | EnvType | None, *, engine: Engine | Connection | None = None
    ) -> None:
        super().__init__(env)
        lock_timeout = float(self.env.get(self.LOCK_TIMEOUT) or DEFAULT_LOCK_TIMEOUT)
        poll = self.env.get(self.POLL_INTERVAL)
        if engine is None:
            engine = create_engine(self.env.get(self.URL) or DEFAULT_URL, lock_timeout=lock_timeout)
            owns = True
        else:
            owns = False
        self.datastore = SQLDatastore(
            engine,
            owns_engine=owns,
            lock_timeout=lock_timeout,
            poll_interval=float(poll) if poll else None,
        )
        self._tables: Tables | None = None

    @classmethod
    def from_engine(
        cls, engine: Engine | Connection, env: Environment | EnvType | None = None
    ) -> Factory:
        """A factory on a host application's engine, or on one connection whose transactions
        the host controls (recorders then write in savepoints inside them)."""
        return cls(env, engine=engine)

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            prefix = self.env.get(self.TABLE_PREFIX) or self.env.name.lower() or "runhistory"
            audit_indexes = strtobool(self.env.get(self.AUDIT_INDEXES) or "no")
            self._tables = make_tables(prefix, audit_indexes=bool(audit_indexes))
        return self._tables

    def mapper(
        self,
        transcoder: Transcoder | None = None,
        mapper_class: type[Mapper[TAggregateID]] | None = None,
    ) -> Mapper[TAggregateID]:
        """The configured mapper; one that can hand over each history event's columns
        (`ColumnsMapper`, such as `HistoryMapper`) is asked to, so inserts need not parse them."""
        mapper: Any = super().mapper(transcoder, mapper_class)
        if isinstance(mapper, ColumnsMapper):
            mapper.store_columns = True
        return mapper  # type: ignore[no-any-return]

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return self._ready(SQLAggregateRecorder(self.datastore, self.tables, purpose=purpose))

    def application_recorder(self) -> ApplicationRecorder:
        cls = self._recorder_class(self.APPLICATION_RECORDER_TOPIC, SQLApplicationRecorder)
        return self._ready(cls(self.datastore, self.tables))

    def tracking_recorder(
        self, tracking_recorder_class: type[SQLTrackingRecorder] | None = None
    ) -> SQLTrackingRecorder:
        cls: type[SQLTrackingRecorder] = tracking_recorder_class or self._recorder_class(
            self.TRACKING_RECORDER_TOPIC, SQLTrackingRecorder
        )
        return self._ready(cls(self.datastore, self.tables))

    def process_recorder(self) -> ProcessRecorder:
        cls = self._recorder_class(self.PROCESS_RECORDER_TOPIC, SQLProcessRecorder)
        return self._ready(cls(self.datastore, self.tables))

    def _recorder_class(self, key: str, default: type[_R]) -> type[_R]:
        topic = self.env.get(key)
        if not topic:
            return default
        cls = resolve_topic(topic)
        if not (isinstance(cls, type) and issubclass(cls, default)):
            raise TypeError(f"{key}={topic!r} is not a subclass of {default.__qualname__}")
        return cls

    def _ready(self, recorder: _R) -> _R:
        if self._create_tables():
            recorder.create_table()
        return recorder

    def _create_tables(self) -> bool:
        value = self.env.get(self.CREATE_TABLES) or self.env.get("CREATE_TABLE") or "yes"
        return bool(strtobool(value))

    def close(self) -> None:
        self.datastore.close()
