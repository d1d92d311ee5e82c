"""runhistory's SQL store: an eventsourcing persistence module on SQLAlchemy Core.

Select it with `PERSISTENCE_MODULE=runhistory.stores.sql` and `RUNHISTORY_SQL_URL` (SQLite by
default, or PostgreSQL through psycopg 3); see `Factory` for the other settings, and
`docs/sql-schema.md` for the tables and how to query them. A host application can pass its own
engine or connection: `Factory.from_engine(engine)`, and `insert_events(..., connection=conn)`
(or `app.save(run, connection=conn)`) to commit events together with its own rows.
"""

from runhistory.stores.sql.datastore import (
    DEFAULT_URL,
    SQLDatastore,
    configure_sqlite_engine,
    create_engine,
    normalise_url,
)
from runhistory.stores.sql.factory import Factory
from runhistory.stores.sql.recorders import SQLAggregateRecorder, SQLApplicationRecorder
from runhistory.stores.sql.subscription import SQLSubscription
from runhistory.stores.sql.tables import Tables, make_tables
from runhistory.stores.sql.tracking import SQLProcessRecorder, SQLTrackingRecorder

__all__ = [
    "DEFAULT_URL",
    "Factory",
    "SQLAggregateRecorder",
    "SQLApplicationRecorder",
    "SQLDatastore",
    "SQLProcessRecorder",
    "SQLSubscription",
    "SQLTrackingRecorder",
    "Tables",
    "configure_sqlite_engine",
    "create_engine",
    "make_tables",
    "normalise_url",
]
