"""The SQL store under real applications: an eventsourcing Application selecting it by name, a
projection runner following it (subscriptions on SQLite too), and a host application committing
its own rows and a run's events in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.tests import application as es_application
from eventsourcing.utils import Environment

from runhistory.adapters.history_json import load_history
from runhistory.domain.run import WorkflowRun
from runhistory.stores.sql import (
    Factory,
    SQLApplicationRecorder,
    SQLTrackingRecorder,
    create_engine,
)
from runhistory.stores.testing import stored_run, synthesized_history
from tests.test_store_sql_support import SQLStore

MAPPER = "runhistory.adapters.mapper:HistoryMapper"


@pytest.fixture(params=["file", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    opened = SQLStore(request.param)
    yield opened
    opened.close()


def _history(n: int) -> dict[str, Any]:
    return synthesized_history(workflow_id=f"wf-app-{n}", run_id="r", activities=n + 1)


class Runs(Application[UUID]):
    """An application of workflow runs, stored as canonical Temporal JSON."""


def test_an_application_stores_and_replays_runs_through_the_sql_store(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "runhistory.stores.sql")
    monkeypatch.setenv("MAPPER_TOPIC", MAPPER)
    for key, value in store.env.items():
        monkeypatch.setenv(key, value)
    app = Runs()
    assert isinstance(app.factory, Factory)
    run = load_history(_history(3))
    app.save(run)
    replayed: WorkflowRun = app.repository.get(run.id)
    assert isinstance(replayed, WorkflowRun)
    assert replayed.version == run.version
    assert replayed.history == run.history
    store.factories.append(app.factory)


class EventCounts(SQLTrackingRecorder):
    """A view that counts the events of each run it is shown (in memory; tracked in SQL)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts: dict[UUID, int] = {}

    def count(self, originator_id: UUID, tracking: Tracking) -> None:
        self.counts[originator_id] = self.counts.get(originator_id, 0) + 1
        self.insert_tracking(tracking)


class CountEvents(Projection[EventCounts]):
    name = "counts"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.count(domain_event.originator_id, tracking)


def test_a_projection_runner_follows_an_application(store: SQLStore) -> None:
    store.factory()  # drops the runner's tables afterwards
    env = {**store.env, "PERSISTENCE_MODULE": "runhistory.stores.sql", "MAPPER_TOPIC": MAPPER}
    env.pop("RUNHISTORY_SQL_TABLE_PREFIX")
    env["RUNS_RUNHISTORY_SQL_TABLE_PREFIX"] = store.prefix + "_app"
    env["COUNTS_RUNHISTORY_SQL_TABLE_PREFIX"] = store.prefix + "_view"
    with ProjectionRunner(
        application_class=Runs, projection_class=CountEvents, view_class=EventCounts, env=env
    ) as runner:
        runs = [load_history(_history(n)) for n in range(3)]
        expected = {run.id: run.version for run in runs}
        recordings = runner.app.save(*runs)
        runner.projection.view.wait(runner.app.name, recordings[-1].notification.id, timeout=10)
        assert runner.projection.view.counts == expected


def _host_engine(store: SQLStore) -> tuple[sa.Engine, sa.Table]:
    engine = create_engine(store.url)
    orders = sa.Table(
        f"{store.prefix}_orders",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.Text),
    )
    orders.create(engine)
    return engine, orders


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_host_application_commits_and_rolls_back_its_rows_with_a_runs_events(
    store: SQLStore,
) -> None:
    engine, orders = _host_engine(store)
    factory = Factory.from_engine(engine, {"RUNHISTORY_SQL_TABLE_PREFIX": store.prefix})
    store.factories.append(factory)
    recorder = factory.application_recorder()
    run_id, events = stored_run(_history(1))
    other_id, other_events = stored_run(_history(2))

    with pytest.raises(RuntimeError), engine.begin() as conn:  # rolled back: neither is written
        conn.execute(orders.insert().values(note="lost"))
        recorder.insert_events(events, connection=conn)
        raise RuntimeError("the host changes its mind")
    assert _count(engine, orders) == 0
    assert recorder.select_events(run_id) == []
    assert recorder.max_notification_id() is None

    with engine.begin() as conn:  # committed: both are written
        conn.execute(orders.insert().values(note="kept"))
        ids = recorder.insert_events(events, connection=conn)
    assert _count(engine, orders) == 1
    assert recorder.select_events(run_id) == events
    assert ids is not None and len(ids) == len(events)

    with engine.begin() as conn:  # a conflict undoes only the insert's own savepoint
        conn.execute(orders.insert().values(note="also kept"))
        with pytest.raises(IntegrityError):
            recorder.insert_events([*other_events, events[0]], connection=conn)
        recorder.insert_events(other_events, connection=conn)
    assert _count(engine, orders) == 2
    assert recorder.select_events(other_id) == other_events
    engine.dispose()


def test_an_application_saves_inside_a_host_transaction(store: SQLStore) -> None:
    engine, orders = _host_engine(store)

    class HostedRuns(Application[UUID]):
        def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
            return Factory.from_engine(engine, env)

    app = HostedRuns(env={"RUNHISTORY_SQL_TABLE_PREFIX": store.prefix, "MAPPER_TOPIC": MAPPER})
    assert isinstance(app.factory, Factory)
    store.factories.append(app.factory)
    run = load_history(_history(2))
    with engine.connect() as conn:
        conn.execute(orders.insert().values(note="with the run"))
        app.save(run, connection=conn)
        conn.rollback()
    assert _count(engine, orders) == 0
    assert app.recorder.max_notification_id() is None
    run = load_history(_history(2))
    with engine.begin() as conn:
        conn.execute(orders.insert().values(note="with the run"))
        app.save(run, connection=conn)
    assert _count(engine, orders) == 1
    assert app.repository.get(run.id).version == run.version
    engine.dispose()


def test_a_factory_can_be_bound_to_one_host_connection(store: SQLStore) -> None:
    engine, orders = _host_engine(store)
    run_id, events = stored_run(_history(1))
    with engine.connect() as conn:
        factory = Factory.from_engine(conn, {"RUNHISTORY_SQL_TABLE_PREFIX": store.prefix})
        recorder = factory.application_recorder()
        conn.commit()  # the tables
        conn.execute(orders.insert().values(note="bound"))
        recorder.insert_events(events)
        assert recorder.select_events(run_id) == events  # visible inside the transaction
        conn.rollback()
        assert recorder.select_events(run_id) == []
        conn.execute(orders.insert().values(note="bound"))
        recorder.insert_events(events)
        conn.commit()
    assert _count(engine, orders) == 1
    check = Factory.from_engine(engine, {"RUNHISTORY_SQL_TABLE_PREFIX": store.prefix})
    store.factories.append(check)
    assert check.application_recorder().select_events(run_id) == events
    engine.dispose()


class _ExampleApplication(es_application.ExampleApplicationTestCase):
    """eventsourcing's example application (with snapshots), on this store."""

    __test__ = False
    kind = "file"
    expected_factory_topic = "runhistory.stores.sql.factory:Factory"

    def setUp(self) -> None:
        self.store = SQLStore(self.kind)
        self.store.factory()
        self.patch = pytest.MonkeyPatch()
        self.patch.setenv("PERSISTENCE_MODULE", "runhistory.stores.sql")
        for key, value in self.store.env.items():
            self.patch.setenv(key, value)

    def tearDown(self) -> None:
        self.patch.undo()
        self.store.close()


class TestExampleApplicationOnSQLite(_ExampleApplication):
    __test__ = True


class TestExampleApplicationOnPostgres(_ExampleApplication):
    __test__ = True
    kind = "postgres"


class AuditedRecorder(SQLApplicationRecorder):
    """A recorder that writes a row of its own in each insert's transaction."""

    def _before_insert(self, conn: sa.Connection, **kwargs: Any) -> None:
        table = f"{self.tables.prefix}_audited"  # dropped with the store's tables
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {table} (n INTEGER)"))
        conn.execute(sa.text(f"INSERT INTO {table} (n) VALUES (1)"))


def test_a_recorder_subclass_writes_in_each_inserts_transaction(store: SQLStore) -> None:
    """Inserts without a host connection take a faster path on SQLite; a subclass that hooks
    the transaction still gets it, and a batch that fails takes the subclass's row with it."""
    topic = f"{__name__}:AuditedRecorder"
    factory = store.factory(APPLICATION_RECORDER_TOPIC=topic)
    recorder = factory.application_recorder()
    assert isinstance(recorder, AuditedRecorder)
    _, events = stored_run(_history(1))
    recorder.insert_events(events[:2])
    with pytest.raises(IntegrityError):
        recorder.insert_events(events[1:])
    with factory.datastore.engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {store.prefix}_audited")).scalar()
    assert count == 1
