"""What goes where in a files root, and the edges of what each table accepts."""

from __future__ import annotations

import multiprocessing
import zlib
from pathlib import Path
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    StoredEvent,
)

from runhistory.adapters.history_json import load_history
from runhistory.adapters.mapper import HistoryMapper
from runhistory.stores.files import FileAggregateRecorder, FileApplicationRecorder
from tests.conformance_data import CONFORMANCE

TOPIC = "eventsourcing.domain:Aggregate.Event"


def heartbeat_events() -> list[StoredEvent]:
    run = load_history(CONFORMANCE / "activity_heartbeat" / "history.json")
    mapper = HistoryMapper(transcoder=JSONTranscoder())
    return [mapper.to_stored_event(e) for e in run.collect_events()]


def test_other_aggregates_are_json_lines_with_their_state_inline_or_in_base64(
    tmp_path: Path,
) -> None:
    recorder = FileApplicationRecorder(tmp_path)
    originator_id = uuid4()
    json_state, binary_state = b'{"amount":"10.00"}', zlib.compress(b"not json")
    events = [
        StoredEvent(originator_id, 1, TOPIC, json_state),
        StoredEvent(originator_id, 2, TOPIC, binary_state),
    ]
    recorder.insert_events(events)
    lines = (tmp_path / "aggregates" / f"{originator_id}.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {"originatorVersion": 1, "topic": TOPIC, "state": {"amount": "10.00"}},
        {"originatorVersion": 2, "topic": TOPIC, "stateBase64": "eJzLyy9RyCrOzwMADiYDLA=="},
    ]
    assert FileApplicationRecorder(tmp_path).select_events(originator_id) == events


def test_a_run_whose_state_is_not_plain_json_is_stored_as_a_generic_aggregate(
    tmp_path: Path,
) -> None:
    events = [
        StoredEvent(e.originator_id, e.originator_version, e.topic, zlib.compress(e.state))
        for e in heartbeat_events()
    ]
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(events)
    assert not (tmp_path / "runs").exists()
    assert recorder.select_events(events[0].originator_id) == events


def test_a_later_run_event_that_is_not_one_json_object_is_refused_writing_nothing(
    tmp_path: Path,
) -> None:
    events = heartbeat_events()
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(events[:3])
    bad = StoredEvent(events[3].originator_id, 4, events[3].topic, b'{"a":1}\n{"b":2}')
    with pytest.raises(DataError, match="not one JSON object"):
        recorder.insert_events([bad, *events[4:]])
    assert recorder.select_events(events[0].originator_id) == events[:3]


def test_a_second_aggregate_claiming_a_stored_run_key_goes_to_aggregates(tmp_path: Path) -> None:
    events = heartbeat_events()
    impostor = StoredEvent(uuid4(), 1, events[0].topic, events[0].state)
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events([events[0], impostor])
    assert (tmp_path / "aggregates" / f"{impostor.originator_id}.jsonl").exists()
    assert recorder.select_events(impostor.originator_id) == [impostor]
    assert recorder.select_events(events[0].originator_id) == [events[0]]


def test_events_are_appended_without_gaps_and_never_rewritten(tmp_path: Path) -> None:
    recorder = FileAggregateRecorder(tmp_path)
    originator_id = uuid4()
    recorder.insert_events([StoredEvent(originator_id, 1, TOPIC, b"{}")])
    with pytest.raises(IntegrityError, match="gap"):
        recorder.insert_events([StoredEvent(originator_id, 3, TOPIC, b"{}")])
    with pytest.raises(IntegrityError, match="already has version 1"):
        recorder.insert_events([StoredEvent(originator_id, 1, TOPIC, b"{}")])
    assert len(recorder.select_events(originator_id)) == 1


def test_snapshots_may_be_taken_of_earlier_versions(tmp_path: Path) -> None:
    recorder = FileAggregateRecorder(tmp_path, purpose="snapshots")
    originator_id = uuid4()
    snapshots = {v: StoredEvent(originator_id, v, "snap", b'{"v":%d}' % v) for v in (5, 3, 9)}
    for snapshot in snapshots.values():
        recorder.insert_events([snapshot])
    with pytest.raises(IntegrityError):
        recorder.insert_events([snapshots[3]])
    for reader in (recorder, FileAggregateRecorder(tmp_path, purpose="snapshots")):
        assert reader.select_events(originator_id, desc=True, limit=1) == [snapshots[9]]
        assert reader.select_events(originator_id, lte=8, desc=True, limit=1) == [snapshots[5]]
        assert [s.originator_version for s in reader.select_events(originator_id)] == [3, 5, 9]
    assert (tmp_path / "snapshots" / f"{originator_id}.jsonl").exists()


def test_text_originator_ids_keep_their_type_and_share_a_stream_with_equal_uuids(
    tmp_path: Path,
) -> None:
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events([StoredEvent("Order/42", 1, TOPIC, b"{}")])
    uuid = uuid4()
    recorder.insert_events([StoredEvent(uuid, 1, TOPIC, b"{}")])
    recorder.insert_events([StoredEvent(str(uuid), 2, TOPIC, b"{}")])
    reopened = FileApplicationRecorder(tmp_path)
    assert reopened.select_events("Order/42") == [StoredEvent("Order/42", 1, TOPIC, b"{}")]
    assert [e.originator_id for e in reopened.select_events(uuid)] == [uuid, uuid]
    assert (tmp_path / "aggregates" / "!order%2f42.jsonl").exists()


def test_a_closed_recorder_refuses_to_work(tmp_path: Path) -> None:
    recorder = FileApplicationRecorder(tmp_path)
    recorder.close()
    with pytest.raises(InterfaceError):
        recorder.max_notification_id()


def test_an_unknown_purpose_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="purpose"):
        FileAggregateRecorder(tmp_path, purpose="other")


def _insert_in_forked_child(recorder: FileApplicationRecorder, originator_id: UUID) -> None:
    recorder.insert_events([StoredEvent(originator_id, 2, TOPIC, b"{}")])


def test_a_recorder_inherited_by_a_forked_process_takes_its_own_lock(tmp_path: Path) -> None:
    recorder = FileApplicationRecorder(tmp_path)
    originator_id = uuid4()
    recorder.insert_events([StoredEvent(originator_id, 1, TOPIC, b"{}")])
    child = multiprocessing.get_context("fork").Process(
        target=_insert_in_forked_child, args=(recorder, originator_id)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert [e.originator_version for e in recorder.select_events(originator_id)] == [1, 2]
    recorder.insert_events([StoredEvent(originator_id, 3, TOPIC, b"{}")])
    assert recorder.max_notification_id() == 3
