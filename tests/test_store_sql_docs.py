"""Every SQL example in docs/sql-schema.md runs, on the databases its first comment line names,
against a store of the recorded histories (moved to the last day, so "last week" finds them)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from runhistory.stores.sql import Factory, create_engine
from runhistory.stores.testing import conformance_history_files, stored_run
from tests.test_store_sql_support import POSTGRES_URL, SQLStore, postgres_unavailable

DOC = Path(__file__).resolve().parent.parent / "docs" / "sql-schema.md"
DIALECTS = {"SQLite": "sqlite", "PostgreSQL": "postgresql"}


def doc_queries() -> list[tuple[str, str]]:
    """(dialect, query) for every fenced sql block, by the dialects its first line names."""
    found = []
    for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL):
        first, _, _ = block.partition("\n")
        names = [name.strip() for name in first.removeprefix("--").split(",")]
        assert first.startswith("--") and set(names) <= set(DIALECTS), f"unlabelled: {first}"
        found += [(DIALECTS[name], block) for name in names]
    return found


def _recent(path: Path) -> dict[str, Any]:
    """The history with its event times moved so that it ended an hour ago."""
    doc = orjson.loads(path.read_bytes())
    last = datetime.fromisoformat(doc["events"][-1]["eventTime"][:19] + "+00:00")
    shift = datetime.now(UTC) - timedelta(hours=1) - last
    for event in doc["events"]:
        text = event["eventTime"]
        moved = datetime.fromisoformat(text[:19] + "+00:00") + shift
        event["eventTime"] = moved.strftime("%Y-%m-%dT%H:%M:%S") + text[19:]
    return doc  # type: ignore[no-any-return]


def _load(dialect: str) -> Iterator[sa.Engine]:
    files = conformance_history_files()
    if not files:
        pytest.skip("no recorded histories (../shared/conformance or RUNHISTORY_CONFORMANCE_DIR)")
    schema = f"docs_{uuid.uuid4().hex[:10]}"
    store: SQLStore | None = None
    if dialect == "sqlite":
        store = SQLStore("file")
        engine = create_engine(store.url)
    else:
        reason = postgres_unavailable()
        if reason is not None:
            pytest.skip(reason)
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        engine = create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    factory = Factory.from_engine(engine, {"RUNHISTORY_SQL_TABLE_PREFIX": "runhistory"})
    recorder = factory.application_recorder()
    for path in files:
        recorder.insert_events(stored_run(_recent(path))[1])
    yield engine
    engine.dispose()
    if store is not None:
        store.close()
    else:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(scope="module")
def loaded_sqlite() -> Iterator[sa.Engine]:
    yield from _load("sqlite")


@pytest.fixture(scope="module")
def loaded_postgresql() -> Iterator[sa.Engine]:
    yield from _load("postgresql")


@pytest.mark.parametrize(
    ("dialect", "query"),
    doc_queries(),
    ids=[f"{dialect}-{n}" for n, (dialect, _) in enumerate(doc_queries())],
)
def test_every_doc_query_runs(request: pytest.FixtureRequest, dialect: str, query: str) -> None:
    engine: sa.Engine = request.getfixturevalue(f"loaded_{dialect}")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(query)
        assert rows.fetchall(), "every example finds something in the recorded histories"


@pytest.mark.parametrize("dialect", DIALECTS.values())
def test_the_failed_activities_query_says_which_and_why(
    request: pytest.FixtureRequest, dialect: str
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"loaded_{dialect}")
    query = next(q for d, q in doc_queries() if d == dialect and "failed_at" in q)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(query).mappings().all()
    found = {(row["workflow_id"], row["activity_type"], row["message"]) for row in rows}
    expected = ("oracle-activity_non_retryable_failure", "fail_nonretryable", "permanent failure")
    assert expected in found
    assert any(row["event_type"] == "ACTIVITY_TASK_TIMED_OUT" for row in rows)


def test_the_doc_has_queries_for_both_databases() -> None:
    dialects = [dialect for dialect, _ in doc_queries()]
    assert dialects.count("sqlite") >= 5
    assert dialects.count("postgresql") >= 5
