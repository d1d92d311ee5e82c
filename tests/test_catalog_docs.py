"""Every SQL query in docs/read-model.md runs, on the databases its first line names, against a
catalog of the recorded histories kept beside a SQL store's events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from runhistory.app import RunHistory
from runhistory.projections.catalog import catch_up, open_view
from runhistory.stores.sql import create_engine
from tests.test_catalog_support import checkpoints, real_histories
from tests.test_store_sql_support import POSTGRES_URL, postgres_unavailable, unique_prefix

DOC = Path(__file__).resolve().parent.parent / "docs" / "read-model.md"
_BLOCK = re.compile(r"```sql\n(.*?)```", re.S)


def _queries(dialect: str) -> list[str]:
    found = []
    for block in _BLOCK.findall(DOC.read_text()):
        first, _, _ = block.partition("\n")
        names = {n.strip() for n in first.removeprefix("--").split(",")}
        if dialect in names:
            found.append(block)
    return found


def test_the_document_has_queries_for_both_databases() -> None:
    assert len(_queries("SQLite")) >= 10
    assert len(_queries("PostgreSQL")) == len(_queries("SQLite"))


def _fill(app: RunHistory) -> None:
    for _, doc in checkpoints():
        app.import_history(doc)
    for _, doc in real_histories(long=False):
        app.import_history(doc)


def _run_all(engine: sa.Engine, queries: list[str], rename: dict[str, str]) -> int:
    answered = 0
    with engine.connect() as conn:
        for query in queries:
            for old, new in rename.items():
                query = re.sub(rf"\b{old}_", f"{new}_", query)
            rows = conn.execute(sa.text(query)).fetchall()
            answered += bool(rows)
    return answered


def test_the_queries_run_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    app = RunHistory.open(url)
    _fill(app)
    catch_up(app)
    app.close()
    engine = create_engine(url)
    queries = _queries("SQLite")
    assert _run_all(engine, queries, {}) >= len(queries) - 3  # the time-relative ones may not
    engine.dispose()


@pytest.fixture
def pg_prefix() -> Iterator[str]:
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    prefix = unique_prefix("doc")
    yield prefix
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith(prefix):
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def test_the_queries_run_on_postgresql(pg_prefix: str) -> None:
    app = RunHistory.open(POSTGRES_URL, RUNHISTORY_SQL_TABLE_PREFIX=pg_prefix + "_rh")
    _fill(app)
    with open_view(app=app, prefix=pg_prefix + "_cat") as view:
        catch_up(app, view)
    app.close()
    engine = create_engine(POSTGRES_URL)
    queries = _queries("PostgreSQL")
    rename = {"catalog": pg_prefix + "_cat", "runhistory": pg_prefix + "_rh"}
    assert _run_all(engine, queries, rename) >= len(queries) - 3
    engine.dispose()
