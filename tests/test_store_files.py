"""The files store passes runhistory's conformance suite for stores (`runhistory.stores.testing`:
eventsourcing's own recorder and factory test cases plus runhistory's checks) and eventsourcing's
example application, each on fresh temporary roots, and runs a system of process applications."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from unittest import TestCase
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.system import ProcessApplication, SingleThreadedRunner, System
from eventsourcing.tests.application import ExampleApplicationTestCase
from eventsourcing.utils import Environment

from runhistory.stores import testing as conformance
from runhistory.stores.files import (
    Factory,
    FileAggregateRecorder,
    FileApplicationRecorder,
    FileProcessRecorder,
    FileRecorder,
    FileTrackingRecorder,
)

MODULE = "runhistory.stores.files"
_R = TypeVar("_R", bound=FileRecorder)


class _TempRoots(TestCase):
    """A fresh, empty root directory for each recorder made, all closed and removed after."""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self._recorders: list[FileRecorder] = []
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        for recorder in self._recorders:
            recorder.close()
        self._tmp.cleanup()

    def _fresh_root(self) -> Path:
        return Path(self._tmp.name) / f"store-{len(self._recorders)}"

    def _made(self, recorder: _R) -> _R:
        self._recorders.append(recorder)
        return recorder


class TestFileAggregateRecorder(_TempRoots, conformance.AggregateRecorderConformance):
    def create_recorder(self) -> AggregateRecorder:
        return self._made(FileAggregateRecorder(self._fresh_root()))


class TestFileSnapshotRecorder(_TempRoots, conformance.AggregateRecorderConformance):
    def create_recorder(self) -> AggregateRecorder:
        return self._made(FileAggregateRecorder(self._fresh_root(), purpose="snapshots"))


class TestFileApplicationRecorder(_TempRoots, conformance.ApplicationRecorderConformance):
    def create_recorder(self) -> ApplicationRecorder:
        return self._made(FileApplicationRecorder(self._fresh_root()))


class TestFileTrackingRecorder(_TempRoots, conformance.TrackingRecorderConformance):
    def create_recorder(self) -> TrackingRecorder:
        return self._made(FileTrackingRecorder(self._fresh_root()))


class TestFileProcessRecorder(_TempRoots, conformance.ProcessRecorderConformance):
    def create_recorder(self) -> ProcessRecorder:
        return self._made(FileProcessRecorder(self._fresh_root()))


class _CustomTrackingRecorder(FileTrackingRecorder):
    pass


class TestFilesFactory(conformance.InfrastructureFactoryConformance):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.env = Environment(
            "TestCase",
            {"PERSISTENCE_MODULE": MODULE, Factory.RUNHISTORY_FILES_PATH: self._tmp.name},
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self._tmp.cleanup()

    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return FileAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return FileApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return FileTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return FileProcessRecorder

    def test_create_snapshot_recorder(self) -> None:
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        self.assertIsInstance(recorder, FileAggregateRecorder)

    def test_a_file_url_names_the_root(self) -> None:
        env = {"PERSISTENCE_MODULE": MODULE, "RUNHISTORY_FILES_PATH": f"file://{self._tmp.name}/u"}
        factory = Factory.construct(env)
        self.assertIsInstance(factory, Factory)
        assert isinstance(factory, Factory)
        self.assertEqual(factory.root, Path(self._tmp.name) / "u")
        factory.close()

    def test_a_missing_root_setting_is_an_environment_error(self) -> None:
        with self.assertRaises(OSError):
            Factory.construct({"PERSISTENCE_MODULE": MODULE})


class _AppEnvironment(TestCase):
    """Point eventsourcing's applications at a fresh root through os.environ."""

    keys: ClassVar[tuple[str, ...]] = ("PERSISTENCE_MODULE", "RUNHISTORY_FILES_PATH")

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self._saved = {k: os.environ.get(k) for k in self.keys}
        os.environ["PERSISTENCE_MODULE"] = MODULE
        os.environ["RUNHISTORY_FILES_PATH"] = self._tmp.name
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._tmp.cleanup()


class TestFilesExampleApplication(_AppEnvironment, ExampleApplicationTestCase):
    expected_factory_topic = "runhistory.stores.files.factory:Factory"


del ExampleApplicationTestCase  # a base class: run only through the subclass above


class Dog(Aggregate):
    class TrickAdded(Aggregate.Event):
        trick: str

    def __init__(self, name: str) -> None:
        self.name = name

    @event(TrickAdded)
    def add_trick(self, trick: str) -> None:
        pass


class TrickCount(Aggregate):
    def __init__(self, trick: str) -> None:
        self.count = 0

    @staticmethod
    def create_id(trick: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/tricks/{trick}")

    @event("Counted")
    def increment(self) -> None:
        self.count += 1


class Dogs(Application[UUID]):
    def teach(self, dog_id: UUID | None, trick: str) -> UUID:
        dog = Dog("fido") if dog_id is None else self.repository.get(dog_id)
        dog.add_trick(trick)
        self.save(dog)
        return dog.id


class Tricks(ProcessApplication[UUID]):
    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        if isinstance(domain_event, Dog.TrickAdded):
            trick_id = TrickCount.create_id(domain_event.trick)
            try:
                counter: TrickCount = self.repository.get(trick_id)
            except AggregateNotFoundError:
                counter = TrickCount(domain_event.trick)
                counter._id = trick_id
            counter.increment()
            processing_event.collect_events(counter)

    def count(self, trick: str) -> int:
        counter: TrickCount = self.repository.get(TrickCount.create_id(trick))
        return counter.count


class TestFilesProcessApplication(_AppEnvironment):
    keys = ("PERSISTENCE_MODULE", "DOGS_RUNHISTORY_FILES_PATH", "TRICKS_RUNHISTORY_FILES_PATH")

    def test_a_process_application_records_its_events_and_position_together(self) -> None:
        os.environ["DOGS_RUNHISTORY_FILES_PATH"] = f"{self._tmp.name}/dogs"
        os.environ["TRICKS_RUNHISTORY_FILES_PATH"] = f"{self._tmp.name}/tricks"
        runner: SingleThreadedRunner[UUID] = SingleThreadedRunner(System(pipes=[[Dogs, Tricks]]))
        runner.start()
        dogs, tricks = runner.get(Dogs), runner.get(Tricks)
        dog_id = dogs.teach(None, "roll")
        for trick in ("sit", "roll"):
            dogs.teach(dog_id, trick)
        assert (tricks.count("roll"), tricks.count("sit")) == (2, 1)
        assert tricks.recorder.max_tracking_id("Dogs") == 4
        runner.stop()
        tracking = Path(self._tmp.name, "tricks", "tracking", "!dogs.jsonl").read_bytes()
        assert len(tracking.splitlines()) == 4
