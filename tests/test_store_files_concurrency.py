"""Processes share a root safely: each version of a run is won by exactly one writer, the others
get IntegrityError, and every process sees what the others committed."""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import IntegrityError

from runhistory.stores.files import FileApplicationRecorder
from tests.test_store_files_durability import generic_events, history_events, run_child

RACE_SCENARIO = "long_history_activities"


def race(root: str, start_at: str) -> None:
    """Child: try to append every event of the run one at a time; print the versions won."""
    events = history_events(RACE_SCENARIO)
    recorder = FileApplicationRecorder(root)
    time.sleep(max(0.0, float(start_at) - time.time()))
    won = []
    for event in events:
        try:
            recorder.insert_events([event])
        except IntegrityError:
            continue
        won.append(event.originator_version)
    print(orjson.dumps(won).decode(), flush=True)


def test_two_processes_appending_one_run_each_win_distinct_versions(tmp_path: Path) -> None:
    start_at = str(time.time() + 3.0)
    children = [run_child(race, str(tmp_path), start_at) for _ in range(2)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    won = [set(orjson.loads(out)) for out in outputs]

    events = history_events(RACE_SCENARIO)
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == {e.originator_version for e in events}
    recorder = FileApplicationRecorder(tmp_path)
    assert recorder.select_events(events[0].originator_id) == events  # nothing lost or doubled
    notifications = recorder.select_notifications(None, len(events) + 10)
    assert [n.id for n in notifications] == list(range(1, len(events) + 1))
    assert [n.originator_version for n in notifications] == [e.originator_version for e in events]


def insert_after(root: str, originator_id: str, delay: str) -> None:
    """Child: after `delay` seconds, insert three events."""
    recorder = FileApplicationRecorder(root)
    time.sleep(float(delay))
    recorder.insert_events(generic_events(UUID(originator_id), 1, 3))


def test_a_subscription_sees_what_another_process_commits(tmp_path: Path) -> None:
    recorder = FileApplicationRecorder(tmp_path, poll_interval=0.05)
    originator_id = UUID(int=42)
    child = run_child(insert_after, str(tmp_path), str(originator_id), "1.0")
    received = []
    with recorder.subscribe(gt=None) as subscription:
        for notification in subscription:
            received.append(notification)
            if len(received) == 3:
                break
    child.communicate(timeout=60)
    assert [n.originator_version for n in received] == [1, 2, 3]
    assert [n.state for n in received] == [e.state for e in generic_events(originator_id, 1, 3)]


def test_two_recorders_on_one_root_see_each_others_commits(tmp_path: Path) -> None:
    first, second = FileApplicationRecorder(tmp_path), FileApplicationRecorder(tmp_path)
    originator_id = UUID(int=7)
    events = generic_events(originator_id, 1, 4)
    assert first.insert_events(events[:2]) == [1, 2]
    assert second.select_events(originator_id) == events[:2]
    assert second.insert_events(events[2:3]) == [3]
    with pytest.raises(IntegrityError):
        first.insert_events(events[2:3])
    assert first.insert_events(events[3:]) == [4]
    assert second.max_notification_id() == 4
    assert [n.id for n in second.select_notifications(None, 10)] == [1, 2, 3, 4]
