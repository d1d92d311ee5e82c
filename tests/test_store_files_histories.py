"""Real Temporal histories in the files store: stored and read back byte for byte, browsable as
plain Temporal event streams, usable by the application and by tracked projections."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import JSONTranscoder, StoredEvent, Tracking
from eventsourcing.projection import Projection, ProjectionRunner

from runhistory.adapters.history_json import dump_history, load_history
from runhistory.adapters.mapper import HistoryMapper
from runhistory.app import RunHistory
from runhistory.domain.run import WorkflowRun
from runhistory.stores.files import FileApplicationRecorder, FileTrackingRecorder
from tests.conformance_data import final_histories

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
LONG_HISTORY = SHARED / "bench" / "long-history-50k.json.gz"
MAPPER_TOPIC = "runhistory.adapters.mapper:HistoryMapper"
HISTORIES = list(final_histories())


def stored(run: WorkflowRun) -> list[StoredEvent]:
    mapper = HistoryMapper(transcoder=JSONTranscoder())
    return [mapper.to_stored_event(e) for e in run.collect_events()]


def run_file_of(root: Path, run: WorkflowRun) -> Path:
    key = run.key
    assert key is not None
    (path,) = [
        p
        for p in root.glob("runs/*/*/*.meta.json")
        if orjson.loads(p.read_bytes())["originatorId"] == str(key.aggregate_id)
    ]
    return path.with_name(path.name.removesuffix(".meta.json") + ".jsonl")


def test_every_recorded_history_round_trips_byte_for_byte(tmp_path: Path) -> None:
    recorder = FileApplicationRecorder(tmp_path)
    expected = {}
    for _, path in HISTORIES:
        events = stored(load_history(path))
        recorder.insert_events(events)
        expected[events[0].originator_id] = events

    reopened = FileApplicationRecorder(tmp_path)
    for originator_id, events in expected.items():
        assert reopened.select_events(originator_id) == events
    assert reopened.max_notification_id() == sum(len(e) for e in expected.values())
    assert not (tmp_path / "aggregates").exists()  # every run went to its own run file


@pytest.mark.parametrize(("label", "path"), HISTORIES[:12], ids=[h[0] for h in HISTORIES[:12]])
def test_a_run_file_is_the_temporal_history_itself(tmp_path: Path, label: str, path: Path) -> None:
    run = load_history(path)
    FileApplicationRecorder(tmp_path).insert_events(stored(run))
    run_file = run_file_of(tmp_path, run)
    key = run.key
    assert key is not None
    assert run_file.parent.name == key.workflow_id  # ordinary ids are readable as they are
    lines = run_file.read_bytes().splitlines()
    history = {"events": [orjson.loads(line) for line in lines]}
    assert history == dump_history(run)  # no runKey, nothing added: `cat` shows Temporal's JSON
    assert dump_history(load_history(history, namespace=key.namespace)) == history
    meta = orjson.loads(run_file.with_name(run_file.stem + ".meta.json").read_bytes())
    assert meta["runKey"] == {
        "namespace": key.namespace,
        "workflowId": key.workflow_id,
        "runId": key.run_id,
    }


def test_the_application_stores_and_replays_runs_on_files(tmp_path: Path) -> None:
    app = RunHistory.open(f"file://{tmp_path}")
    runs = [load_history(path) for _, path in HISTORIES[:10]]
    for _, path in HISTORIES[:10]:
        assert app.import_history(path).created
    for (_, path), run in zip(HISTORIES[:10], runs, strict=True):
        key = run.key
        assert key is not None
        assert dump_history(app.get(key)) == dump_history(run)
        assert app.export(key.workflow_id, key.run_id, key.namespace) == orjson.loads(
            orjson.dumps(dump_history(run))
        )
        assert app.import_history(path).appended == 0  # idempotent
    assert len(app.runs()) == 10
    app.close()


class EventTypeCounts(FileTrackingRecorder):
    """A view counting events by type; its position is tracked in the files store."""

    def __init__(self, root: Any, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.counts: Counter[str] = Counter()

    def count(self, event_type: str, tracking: Tracking) -> None:
        self.insert_tracking(tracking)
        self.counts[event_type] += 1


class CountEventTypes(Projection[EventTypeCounts]):
    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.count(type(domain_event).__name__, tracking)


class Runs(Application[UUID]):
    pass


def test_a_projection_follows_runs_stored_in_files(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": "runhistory.stores.files",
        "MAPPER_TOPIC": MAPPER_TOPIC,
        "RUNS_RUNHISTORY_FILES_PATH": str(tmp_path / "runs-app"),
        "COUNTEVENTTYPES_RUNHISTORY_FILES_PATH": str(tmp_path / "view"),
        "RUNHISTORY_FILES_POLL_INTERVAL": "0.05",
    }
    runs = [load_history(path) for _, path in HISTORIES[:5]]
    with ProjectionRunner(
        application_class=Runs,
        projection_class=CountEventTypes,
        view_class=EventTypeCounts,
        env=env,
    ) as runner:
        recordings = [r for run in runs for r in runner.app.save(run)]
        runner.projection.view.wait("Runs", recordings[-1].notification.id, timeout=10)
        expected = Counter(type(e).__name__ for run in runs for e in run.history)
        assert runner.projection.view.counts == expected
        assert runner.projection.view.max_tracking_id("Runs") == len(recordings)


def test_the_fifty_thousand_event_history_in_batches_of_five_hundred(tmp_path: Path) -> None:
    if not LONG_HISTORY.exists():
        pytest.skip(f"{LONG_HISTORY} is not here")
    events = stored(load_history(LONG_HISTORY))
    recorder = FileApplicationRecorder(tmp_path)
    started = time.perf_counter()
    for i in range(0, len(events), 500):
        recorder.insert_events(events[i : i + 500])
    inserted = time.perf_counter()
    back = recorder.select_events(events[0].originator_id)
    read = time.perf_counter()
    reopened = FileApplicationRecorder(tmp_path)
    opened = time.perf_counter()
    assert back == events
    assert reopened.max_notification_id() == len(events)
    print(
        f"\n{len(events)} events: insert {len(events) / (inserted - started):,.0f}/s, "
        f"read {len(events) / (read - inserted):,.0f}/s, reopen {opened - read:.2f}s"
    )
