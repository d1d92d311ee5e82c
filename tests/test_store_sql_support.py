"""Shared by the SQL store tests: where the databases are, and fresh, isolated stores in them.

PostgreSQL: `$RUNHISTORY_TEST_POSTGRES_URL`, default `postgresql://postgres@127.0.0.1:5432/test`.
Its tests skip only when no server answers there, and say so. Every store gets its own table
prefix and drops its tables afterwards, so runs (and parallel runs) never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from runhistory.stores.sql import Factory, create_engine

__all__ = [
    "POSTGRES_URL",
    "SQLStore",
    "postgres_unavailable",
    "unique_prefix",
]

POSTGRES_URL = os.environ.get(
    "RUNHISTORY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when a server answers."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as e:  # noqa: BLE001 - any failure means: no server to test against
        return f"no PostgreSQL server reachable at {POSTGRES_URL}: {type(e).__name__}: {e}"
    return None


def unique_prefix(label: str = "t") -> str:
    return f"{label}_{uuid.uuid4().hex[:12]}"


class SQLStore:
    """A fresh store of one kind ("file", "memory" or "postgres"), and its cleanup."""

    def __init__(self, kind: str, **env: str) -> None:
        self.kind = kind
        self.prefix = unique_prefix()
        self.tmp: Path | None = None
        if kind == "file":
            self.tmp = Path(tempfile.mkdtemp(prefix="runhistory-sql-"))
            self.url = f"sqlite:///{self.tmp / 'events.db'}"
        elif kind == "memory":
            self.url = "sqlite:///:memory:"
        else:
            reason = postgres_unavailable()
            if reason is not None:
                raise unittest.SkipTest(reason)
            self.url = POSTGRES_URL
        self.env: dict[str, Any] = {
            "RUNHISTORY_SQL_URL": self.url,
            "RUNHISTORY_SQL_TABLE_PREFIX": self.prefix,
            **env,
        }
        self.factories: list[Factory] = []

    def factory(self, **env: str) -> Factory:
        """A factory on this store (one per call; closed by `close`)."""
        factory = Factory({**self.env, **env})
        self.factories.append(factory)
        return factory

    def close(self) -> None:
        for factory in self.factories:
            if self.kind == "postgres":
                drop_tables(factory.datastore.engine, self.prefix)
            factory.close()
        self.factories.clear()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def drop_tables(engine: sa.Engine, prefix: str) -> None:
    """Drop every table whose name starts with `prefix_`."""
    with engine.begin() as conn:
        names = [
            name for name in sa.inspect(conn).get_table_names() if name.startswith(prefix + "_")
        ]
        for name in names:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}" CASCADE')
