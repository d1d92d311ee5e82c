"""The conformance suite for runhistory storage backends: the contract a custom backend meets.

A backend is an eventsourcing persistence module. It conforms when a subclass of each class below
passes, given only how to make a fresh recorder (or, for the factory, its environment):

- `AggregateRecorderConformance`, `TrackingRecorderConformance`, `ProcessRecorderConformance`,
  `InfrastructureFactoryConformance`: eventsourcing's own recorder test cases, unchanged.
- `ApplicationRecorderConformance`: eventsourcing's `ApplicationRecorderTestCase`, its
  (otherwise optional) subscription test and its non-interleaving test, and runhistory's checks:
  1. every real history (the recorded conformance runs, and histories synthesized here), stored
     through `HistoryMapper`, is selected back byte-identical, whole and in slices;
  2. a batch with one conflicting event writes nothing: no event, no notification;
  3. two threads inserting the same run: each batch is won by exactly one, the other gets
     eventsourcing's `IntegrityError`, and nothing is lost or duplicated;
  4. notifications are complete and in order, also for a subscriber reading while several
     writers commit (an id is never skipped and filled in later).

Example (pytest or unittest)::

    class TestMyApplicationRecorder(ApplicationRecorderConformance):
        def create_recorder(self) -> ApplicationRecorder:
            return MyFactory(...).application_recorder()  # fresh, empty storage each call

Real histories are read from `$RUNHISTORY_CONFORMANCE_DIR`, else from `../shared/conformance`
beside the project; when absent those tests are skipped with a message saying so. Override
`extra_histories()` to add your own. Abstract classes here are hidden from pytest (`__test__`).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    JSONTranscoder,
    Notification,
    StoredEvent,
)
from eventsourcing.tests import persistence as es_tests

from runhistory.adapters.history_json import HistorySource, load_history
from runhistory.adapters.mapper import HistoryMapper

__all__ = [
    "AggregateRecorderConformance",
    "ApplicationRecorderConformance",
    "InfrastructureFactoryConformance",
    "ProcessRecorderConformance",
    "TrackingRecorderConformance",
    "conformance_dir",
    "conformance_history_files",
    "stored_run",
    "synthesized_histories",
]

CONFORMANCE_DIR_ENV = "RUNHISTORY_CONFORMANCE_DIR"


def conformance_dir() -> Path | None:
    """The recorded conformance runs: `$RUNHISTORY_CONFORMANCE_DIR`, else `../shared/conformance`
    beside the project (or the working directory)."""
    configured = os.environ.get(CONFORMANCE_DIR_ENV)
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    project = Path(__file__).resolve().parents[2]
    for base in (project, Path.cwd()):
        candidate = base.parent / "shared" / "conformance"
        if candidate.is_dir():
            return candidate
    return None


def conformance_history_files() -> list[Path]:
    """Every recorded history file (`<scenario>/history*.json`), or [] without the directory."""
    root = conformance_dir()
    return sorted(root.glob("*/history*.json")) if root is not None else []


@cache
def _stored_run(source: Any, namespace: str) -> tuple[UUID, tuple[StoredEvent, ...]]:
    run = load_history(source, namespace=namespace)
    mapper = HistoryMapper(transcoder=JSONTranscoder())
    return run.id, tuple(mapper.to_stored_event(e) for e in run.collect_events())


def stored_run(source: HistorySource, namespace: str = "default") -> tuple[UUID, list[StoredEvent]]:
    """A run's id and its events as `HistoryMapper` stores them (cached per path)."""
    key = str(source) if isinstance(source, (str, os.PathLike)) else None
    if key is None:
        run = load_history(source, namespace=namespace)
        mapper = HistoryMapper(transcoder=JSONTranscoder())
        return run.id, [mapper.to_stored_event(e) for e in run.collect_events()]
    run_id, events = _stored_run(key, namespace)
    return run_id, list(events)


def _payloads(raw: bytes) -> dict[str, Any]:
    data = base64.b64encode(raw).decode()
    return {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": data}]}


def synthesized_history(
    *, workflow_id: str, run_id: str, activities: int = 1, payload: bytes = b'"hi"'
) -> dict[str, Any]:
    """A legal history of `activities` activities run one after another, then completion."""
    events: list[dict[str, Any]] = []
    queue = {"name": f"q-{workflow_id}", "kind": "TASK_QUEUE_KIND_NORMAL"}

    def add(kind: str, **attrs: Any) -> str:
        event_id = len(events) + 1
        words = kind.lower().split("_")
        key = words[0] + "".join(w.capitalize() for w in words[1:]) + "EventAttributes"
        seconds, nanos = divmod(1_790_000_000_000_000_000 + event_id * 1_234_567_891, 10**9)
        clock = (
            f"2026-09-21T{(seconds // 3600) % 24:02}:{(seconds // 60) % 60:02}:{seconds % 60:02}"
        )
        events.append(
            {
                "eventId": str(event_id),
                "eventTime": f"{clock}.{nanos:09}Z",
                "eventType": f"EVENT_TYPE_{kind}",
                "taskId": str(1_048_576 + 4 * event_id),
                key: attrs,
            }
        )
        return str(event_id)

    def workflow_task() -> str:
        scheduled = add(
            "WORKFLOW_TASK_SCHEDULED", taskQueue=queue, startToCloseTimeout="10s", attempt=1
        )
        started = add("WORKFLOW_TASK_STARTED", scheduledEventId=scheduled, identity="w\"k'r\\")
        return add("WORKFLOW_TASK_COMPLETED", scheduledEventId=scheduled, startedEventId=started)

    add(
        "WORKFLOW_EXECUTION_STARTED",
        workflowType={"name": "Synthesized"},
        taskQueue=queue,
        input=_payloads(payload),
        workflowTaskTimeout="10s",
        originalExecutionRunId=run_id,
        firstExecutionRunId=run_id,
        attempt=1,
        workflowId=workflow_id,
    )
    for number in range(1, activities + 1):
        completed = workflow_task()
        scheduled = add(
            "ACTIVITY_TASK_SCHEDULED",
            activityId=str(number),
            activityType={"name": "step"},
            taskQueue=queue,
            input=_payloads(payload),
            startToCloseTimeout="30s",
            workflowTaskCompletedEventId=completed,
        )
        started = add("ACTIVITY_TASK_STARTED", scheduledEventId=scheduled, attempt=1)
        add(
            "ACTIVITY_TASK_COMPLETED",
            result=_payloads(payload),
            scheduledEventId=scheduled,
            startedEventId=started,
        )
    add(
        "WORKFLOW_EXECUTION_COMPLETED",
        result=_payloads(payload),
        workflowTaskCompletedEventId=workflow_task(),
    )
    return {"events": events}


def synthesized_histories() -> list[dict[str, Any]]:
    """Histories no recording has: odd names and payloads, a large payload, a long run."""
    return [
        synthesized_history(
            workflow_id="wf-ünïcødé-🚀-\u2028-'\"", run_id="run-é-1", payload="ø€🚀".encode()
        ),
        synthesized_history(
            workflow_id="wf-large-payload", run_id="run-2", payload=os.urandom(300_000)
        ),
        synthesized_history(workflow_id="wf-long", run_id="run-3", activities=400),
        synthesized_history(workflow_id="wf/with/slashes and spaces", run_id="run-4", activities=3),
    ]


class _Conformance:
    """Hidden from pytest unless concrete: a subclass that implements every abstract method runs
    (unless it sets `__test__ = False` itself, as a base of other test classes)."""

    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = not any(
                getattr(getattr(cls, name, None), "__isabstractmethod__", False)
                for name in dir(cls)
            )


class AggregateRecorderConformance(_Conformance, es_tests.AggregateRecorderTestCase):
    """eventsourcing's aggregate recorder cases."""


class TrackingRecorderConformance(_Conformance, es_tests.TrackingRecorderTestCase):
    """eventsourcing's tracking recorder cases."""


class ProcessRecorderConformance(_Conformance, es_tests.ProcessRecorderTestCase):
    """eventsourcing's process recorder cases."""


class InfrastructureFactoryConformance(_Conformance, es_tests.InfrastructureFactoryTestCase[Any]):
    """eventsourcing's infrastructure factory cases (set `env` and the expected classes)."""


class ApplicationRecorderConformance(
    _Conformance, es_tests.ApplicationRecorderTestCase[ApplicationRecorder]
):
    """eventsourcing's application recorder cases plus runhistory's (see the module docstring)."""

    insert_num = 1000  # events per writer in the non-interleaving test
    create_stack = es_tests.NonInterleavingNotificationIDsBaseCase.create_stack

    def extra_histories(self) -> list[Any]:
        """More histories (anything `load_history` reads) for the round-trip check."""
        return []

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def test_non_interleaving_notification_ids(self) -> None:
        es_tests.NonInterleavingNotificationIDsBaseCase.test(self)  # type: ignore[arg-type]

    def _assert_run_stored(
        self, recorder: ApplicationRecorder, run_id: UUID, events: Sequence[StoredEvent]
    ) -> None:
        selected = recorder.select_events(run_id)
        self.assertEqual(len(selected), len(events), f"run {run_id}")
        for expected, actual in zip(events, selected, strict=True):
            self.assertEqual(
                (actual.originator_id, actual.originator_version, actual.topic),
                (expected.originator_id, expected.originator_version, expected.topic),
            )
            self.assertIsInstance(actual.state, bytes)
            self.assertEqual(
                actual.state, expected.state, f"run {run_id} event {expected.originator_version}"
            )

    def _round_trip(self, sources: Sequence[Any]) -> None:
        recorder = self.create_recorder()
        seen: set[UUID] = set()
        for source in sources:
            run_id, events = stored_run(source)
            if run_id in seen:
                continue
            seen.add(run_id)
            recorder.insert_events(events)
            self._assert_run_stored(recorder, run_id, events)
            middle = len(events) // 2
            self.assertEqual(
                list(recorder.select_events(run_id, gt=middle, limit=2)),
                events[middle : middle + 2],
            )
            self.assertEqual(
                list(recorder.select_events(run_id, lte=middle, desc=True, limit=1)),
                [events[middle - 1]],
            )

    def test_real_histories_come_back_byte_identical(self) -> None:
        files = conformance_history_files()
        if not files:
            configured = os.environ.get(CONFORMANCE_DIR_ENV)
            where = (
                f"{CONFORMANCE_DIR_ENV}={configured} is not a directory"
                if configured
                else (f"set {CONFORMANCE_DIR_ENV}, or put shared/conformance beside the project")
            )
            self.skipTest(f"no recorded histories: {where}")
        self._round_trip(files)

    def test_synthesized_histories_come_back_byte_identical(self) -> None:
        self._round_trip([*synthesized_histories(), *self.extra_histories()])

    def test_a_batch_with_one_conflict_writes_nothing(self) -> None:
        recorder = self.create_recorder()
        run_id, events = stored_run(
            synthesized_history(workflow_id="wf-conflict", run_id="r", activities=3)
        )
        recorder.insert_events(events[:5])
        before = recorder.max_notification_id()
        for batch in ([*events[5:], events[4]], [events[4], *events[5:]], [*events[5:], events[6]]):
            with self.assertRaises(IntegrityError):
                recorder.insert_events(batch)
            self._assert_run_stored(recorder, run_id, events[:5])
            self.assertEqual(recorder.max_notification_id(), before)
            self.assertEqual(len(recorder.select_notifications(None, 1000)), 5)
        recorder.insert_events(events[5:])
        self._assert_run_stored(recorder, run_id, events)

    def test_two_threads_inserting_one_run_each_batch_is_won_once(self) -> None:
        recorder = self.create_recorder()
        run_id, events = stored_run(
            synthesized_history(workflow_id="wf-race", run_id="r", activities=20)
        )
        batches = [events[i : i + 3] for i in range(0, len(events), 3)]
        wins: list[list[int]] = [[], []]
        losses: list[list[int]] = [[], []]
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def insert(who: int) -> None:
            start.wait()
            for number, batch in enumerate(batches):
                try:
                    recorder.insert_events(batch)
                    wins[who].append(number)
                except IntegrityError:
                    losses[who].append(number)
                except BaseException as e:  # noqa: BLE001 - reported by the test thread
                    errors.append(e)

        _join(_start_threads([partial(insert, 0), partial(insert, 1)]))
        self.assertEqual(errors, [])
        self.assertEqual(sorted(wins[0] + wins[1]), list(range(len(batches))))
        self.assertEqual(sorted(losses[0] + losses[1]), list(range(len(batches))))
        self._assert_run_stored(recorder, run_id, events)
        notified = [
            n for n in recorder.select_notifications(None, 10_000) if n.originator_id == run_id
        ]
        self.assertEqual(
            [n.originator_version for n in notified], [e.originator_version for e in events]
        )

    def test_notifications_are_complete_and_in_order_while_writers_commit(self) -> None:
        recorder = self.create_recorder()
        start = recorder.max_notification_id() or 0
        runs = [
            stored_run(synthesized_history(workflow_id=f"wf-{n}", run_id="r", activities=n % 4 + 1))
            for n in range(12)
        ]
        expected = {(run_id, e.originator_version) for run_id, events in runs for e in events}
        received: list[Notification] = []
        errors: list[BaseException] = []

        def write(mine: list[tuple[UUID, list[StoredEvent]]]) -> None:
            try:
                for _, events in mine:
                    for i in range(0, len(events), 4):
                        recorder.insert_events(events[i : i + 4])
            except BaseException as e:  # noqa: BLE001 - reported by the test thread
                errors.append(e)

        with recorder.subscribe(gt=start) as subscription:
            writers = _start_threads([partial(write, runs[k::3]) for k in range(3)])
            for notification in subscription:
                received.append(notification)
                if len(received) == len(expected) or errors:
                    break
            _join(writers)
        self.assertEqual(errors, [])
        ids = [n.id for n in received]
        self.assertEqual(ids, sorted(set(ids)), "subscriber saw ids out of order or twice")
        self.assertEqual({(n.originator_id, n.originator_version) for n in received}, expected)
        paged: list[Notification] = []
        position = start
        while page := recorder.select_notifications(position, 7, inclusive_of_start=False):
            paged.extend(page)
            position = page[-1].id
        self.assertEqual([n.id for n in paged], ids)


def _start_threads(targets: Sequence[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    return threads


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=120)
