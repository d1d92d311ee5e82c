"""The SQL store against eventsourcing's recorder test cases and runhistory's conformance suite,
on SQLite (a file, and in memory) and PostgreSQL."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.utils import Environment

from runhistory.stores import sql
from runhistory.stores.testing import (
    AggregateRecorderConformance,
    ApplicationRecorderConformance,
    InfrastructureFactoryConformance,
    ProcessRecorderConformance,
    TrackingRecorderConformance,
)
from tests.historygen import random_history
from tests.test_store_sql_support import SQLStore


class _OnStore:
    """Each test gets a fresh store of `kind`."""

    __test__: ClassVar[bool] = False
    kind: ClassVar[str]
    store: SQLStore

    def setUp(self) -> None:
        self.store = SQLStore(self.kind)
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        self.store.close()


class _Aggregate(_OnStore, AggregateRecorderConformance):
    __test__ = False

    def create_recorder(self) -> AggregateRecorder:
        return self.store.factory().aggregate_recorder()


class _Snapshots(_OnStore, AggregateRecorderConformance):
    __test__ = False

    def create_recorder(self) -> AggregateRecorder:
        return self.store.factory().aggregate_recorder("snapshots")


class _Application(_OnStore, ApplicationRecorderConformance):
    __test__ = False

    def create_recorder(self) -> ApplicationRecorder:
        return self.store.factory().application_recorder()

    def extra_histories(self) -> list[Any]:
        return [random_history(seed) for seed in range(12)]


class _Tracking(_OnStore, TrackingRecorderConformance):
    __test__ = False

    def create_recorder(self) -> TrackingRecorder:
        return self.store.factory().tracking_recorder()


class _Process(_OnStore, ProcessRecorderConformance):
    __test__ = False

    def create_recorder(self) -> ProcessRecorder:
        return self.store.factory().process_recorder()


class _Factory(_OnStore, InfrastructureFactoryConformance):
    __test__ = False

    def setUp(self) -> None:
        self.store = SQLStore(self.kind)
        self.env = Environment(
            env={**self.store.env, "PERSISTENCE_MODULE": "runhistory.stores.sql"}
        )
        InfrastructureFactoryConformance.setUp(self)
        self.store.factories.append(self.factory)

    def expected_factory_class(self) -> type[sql.Factory]:
        return sql.Factory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return sql.SQLAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return sql.SQLApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return sql.SQLTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _TrackingSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return sql.SQLProcessRecorder


class _TrackingSubclass(sql.SQLTrackingRecorder):
    pass


class TestSQLiteFileAggregateRecorder(_Aggregate):
    kind = "file"


class TestSQLiteFileSnapshotRecorder(_Snapshots):
    kind = "file"


class TestSQLiteFileApplicationRecorder(_Application):
    kind = "file"


class TestSQLiteFileTrackingRecorder(_Tracking):
    kind = "file"


class TestSQLiteFileProcessRecorder(_Process):
    kind = "file"


class TestSQLiteFileFactory(_Factory):
    kind = "file"


class TestSQLiteMemoryAggregateRecorder(_Aggregate):
    kind = "memory"


class TestSQLiteMemoryApplicationRecorder(_Application):
    kind = "memory"


class TestSQLiteMemoryProcessRecorder(_Process):
    kind = "memory"


class TestSQLiteMemoryFactory(_Factory):
    kind = "memory"


class TestPostgresAggregateRecorder(_Aggregate):
    kind = "postgres"


class TestPostgresSnapshotRecorder(_Snapshots):
    kind = "postgres"


class TestPostgresApplicationRecorder(_Application):
    kind = "postgres"


class TestPostgresTrackingRecorder(_Tracking):
    kind = "postgres"


class TestPostgresProcessRecorder(_Process):
    kind = "postgres"


class TestPostgresFactory(_Factory):
    kind = "postgres"
