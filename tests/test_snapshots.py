"""Snapshots of runs: their state only, on every store, rebuilt runs indistinguishable from
replayed ones, and a snapshot that cannot be trusted costing speed, never correctness."""

from __future__ import annotations

import copy
import gzip
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from runhistory import RunHistory, load_history
from runhistory.adapters.history_json import dump_history
from runhistory.app import DEFAULT_SNAPSHOT_INTERVAL, RunConflict
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import HistoryNotLoaded, WorkflowRun, non_durable_tail
from runhistory.domain.run_key import RunKey
from runhistory.domain.snapshot import FORMAT, HistoryMark, RunSnapshot, SnapshotError
from runhistory.domain.transitions import Entity
from runhistory.projections.describe_json import describe
from runhistory.stores.testing import synthesized_history
from tests.conformance_data import checkpoint_histories, final_histories
from tests.test_store_sql_support import (
    POSTGRES_URL,
    drop_tables,
    postgres_unavailable,
    unique_prefix,
)

LONG_HISTORY = Path(__file__).resolve().parents[2] / "shared" / "bench" / "long-history-50k.json.gz"
LONG = bool(os.environ.get("RUNHISTORY_LONG"))
STORES = ["memory", "sqlite", "files", "postgres"]


class Store:
    """A fresh store of one kind; `open` gives applications on it (several share it, except
    memory)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tmp = Path(tempfile.mkdtemp(prefix="rh-snap-"))
        self.env: dict[str, str] = {}
        self.apps: list[RunHistory] = []
        if kind == "memory":
            self.url = "memory://"
        elif kind == "sqlite":
            self.url = f"sqlite:///{self.tmp / 'runs.db'}"
        elif kind == "files":
            self.url = f"file://{self.tmp}"
        else:
            reason = postgres_unavailable()
            if reason is not None:
                pytest.skip(reason)
            self.url = POSTGRES_URL
            self.env["RUNHISTORY_SQL_TABLE_PREFIX"] = unique_prefix("snap")

    def open(self, **env: str) -> RunHistory:
        app = RunHistory.open(self.url, **{**self.env, **env})
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            if self.kind == "postgres":
                datastore = app.factory.datastore  # type: ignore[attr-defined]
                drop_tables(datastore.engine, self.env["RUNHISTORY_SQL_TABLE_PREFIX"])
            app.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    opened = Store(request.param)
    yield opened
    opened.close()


@pytest.fixture
def memory() -> Iterator[Store]:
    opened = Store("memory")
    yield opened
    opened.close()


def _long(activities: int = 120, workflow_id: str = "wf-long") -> dict[str, Any]:
    return synthesized_history(workflow_id=workflow_id, run_id="r", activities=activities)


def _replayed(app: RunHistory, key: RunKey) -> WorkflowRun:
    """The run replayed from all its stored events, no snapshot involved."""
    run: Any = None
    for event in app.events.get(key.aggregate_id):
        assert isinstance(event, HistoryEvent)
        run = event.mutate(run)
    assert isinstance(run, WorkflowRun)
    return run


def _snapshots(app: RunHistory, key: RunKey) -> list[StoredEvent]:
    assert app.snapshots is not None
    return list(app.snapshots.recorder.select_events(key.aggregate_id))


def _assert_same_run(rebuilt: WorkflowRun, reference: WorkflowRun) -> None:
    """Everything a caller can see of a run, the cheap properties first (before the history of
    a snapshot-rebuilt run is loaded), then everything that reads the history."""
    lazy = not rebuilt.history_loaded
    assert rebuilt.id == reference.id
    assert rebuilt.version == reference.version
    assert rebuilt.key == reference.key
    assert rebuilt.created_on == reference.created_on
    assert rebuilt.modified_on == reference.modified_on
    assert rebuilt.status == reference.status
    assert rebuilt.is_closed == reference.is_closed
    assert rebuilt.durable_length == reference.durable_length
    for entity in Entity:
        assert list(rebuilt.pending(entity)) == list(reference.pending(entity))
    assert rebuilt.snapshot_state()["state"] == reference.snapshot_state()["state"]
    assert rebuilt.history_loaded != lazy  # none of the above needed the earlier events
    assert describe(rebuilt) == describe(reference)
    assert dump_history(rebuilt) == dump_history(reference)
    assert list(rebuilt.history) == list(reference.history)
    assert rebuilt.close_event == reference.close_event


# -- the snapshot itself ------------------------------------------------------------------------


def test_a_snapshot_round_trips_exactly_through_every_store(store: Store) -> None:
    app = store.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    key = app.import_history(_long()).key
    [stored] = _snapshots(app, key)
    head = _replayed(app, key).version
    assert stored.topic == "runhistory:WorkflowRun.Snapshot"
    assert stored.originator_version == head
    taken = RunSnapshot.take(app.get(key, version=head - 1))
    assert app.snapshots is not None
    app.snapshots.put([taken])
    [read] = app.snapshots.get(key.aggregate_id, lte=head - 1, desc=True, limit=1)
    assert type(read) is RunSnapshot
    assert read.originator_id == taken.originator_id
    assert read.originator_version == taken.originator_version
    assert read.timestamp == taken.timestamp
    assert read.topic == taken.topic == "runhistory:WorkflowRun"
    assert read.state == taken.state
    assert read.state["format"] == FORMAT
    assert read.mutate(None).snapshot_state() == taken.state


def test_a_snapshot_holds_the_state_and_not_the_events() -> None:
    run = load_history(_long(activities=400))
    snapshot = RunSnapshot.take(run)
    encoded = json.dumps(snapshot.state)
    assert len(encoded) < 2_000  # 2,400 events; the state is the few live entities
    assert "activityTaskCompletedEventAttributes" not in encoded
    assert set(snapshot.state) == {"format", "digest", "key", "createdOn", "modifiedOn"} | {
        "state",
        "history",
    }


def test_a_run_rebuilt_from_a_snapshot_loads_its_history_once_through_its_loader() -> None:
    run = load_history(_long())
    events = list(run.history)
    rebuilt = RunSnapshot.take(run).mutate(None)
    assert not rebuilt.history_loaded
    assert rebuilt.status == "COMPLETED" and rebuilt.durable_length == len(events)
    assert not rebuilt.history_loaded  # the cheap properties did not need the events
    with pytest.raises(HistoryNotLoaded, match="no loader"):
        _ = rebuilt.history
    calls: list[int] = []

    def load(upto: int) -> list[HistoryEvent]:
        calls.append(upto)
        return events[:upto]

    rebuilt.attach_history(load)
    assert rebuilt.close_event == events[-1]  # the close event is before the snapshot: loads
    assert rebuilt.history_loaded
    assert list(rebuilt.history) == events
    assert list(rebuilt.history) == events
    assert calls == [len(events)]
    assert rebuilt.history_loaded


def test_a_loader_that_gives_other_events_is_refused() -> None:
    run = load_history(_long())
    events = list(run.history)
    short = RunSnapshot.take(run).mutate(None)
    short.attach_history(lambda upto: events[: upto - 1])
    with pytest.raises(HistoryNotLoaded, match="do not match"):
        _ = short.history
    changed = _long()
    changed["events"][-1]["eventTime"] = "2031-01-01T00:00:00Z"
    other = list(load_history(changed).history)
    wrong = RunSnapshot.take(run).mutate(None)
    wrong.attach_history(lambda upto: other[:upto])
    with pytest.raises(HistoryNotLoaded, match="do not match"):
        _ = wrong.history


def test_a_snapshot_state_that_was_altered_or_is_of_another_format_is_refused() -> None:
    run = load_history(_long())
    state = RunSnapshot.take(run).state
    assert WorkflowRun.from_snapshot_state(run.id, run.version, state).status == "COMPLETED"
    altered = copy.deepcopy(state)
    assert altered["state"]["entities"][0][1][0][:2] == [0, "CLOSED"]  # the run's record
    altered["state"]["entities"][0][1][0][1] = "RUNNING"
    with pytest.raises(SnapshotError, match="digest"):
        WorkflowRun.from_snapshot_state(run.id, run.version, altered)
    older = {**state, "format": "0:old"}
    with pytest.raises(SnapshotError, match="format"):
        WorkflowRun.from_snapshot_state(run.id, run.version, older)
    with pytest.raises(SnapshotError, match="stands for"):
        WorkflowRun.from_snapshot_state(run.id, run.version + 1, state)


# -- rebuilt runs are the replayed runs ---------------------------------------------------------


HISTORIES = dict(final_histories())


@pytest.mark.skipif(not HISTORIES, reason="shared/conformance not found")
def test_every_conformance_run_rebuilt_from_a_snapshot_is_the_replayed_run(
    memory: Store,
) -> None:
    # interval 1: every import that writes events snapshots the run at its new head
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="1")
    keys: list[RunKey] = []
    for _, checkpoint in checkpoint_histories():  # shorter versions first, tails included
        keys.append(app.import_history(checkpoint["history"]).key)
    for _, path in final_histories():
        keys.append(app.import_history(json.loads(path.read_text())).key)
    for key in dict.fromkeys(keys):
        assert _snapshots(app, key)
        rebuilt = app.get(key)
        assert not rebuilt.history_loaded
        # the stored events and the stored non-durable tail, validated afresh
        reference = load_history(app.export(key.workflow_id, key.run_id))
        _assert_same_run(rebuilt, reference)


def test_a_snapshot_from_the_import_equals_one_from_a_replay(store: Store) -> None:
    app = store.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    doc = _long()
    key = app.import_history(doc).key
    [stored] = _snapshots(app, key)
    from_import = app.mapper.to_domain_event(stored)
    assert isinstance(from_import, RunSnapshot)
    assert from_import.state == RunSnapshot.take(_replayed(app, key)).state
    assert from_import.state == RunSnapshot.take(load_history(doc)).state


def test_a_run_from_a_snapshot_is_the_replayed_run_on_every_store(store: Store) -> None:
    app = store.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    doc = _long()
    key = app.import_history(doc).key
    rebuilt = app.get(key)
    assert not rebuilt.history_loaded
    _assert_same_run(rebuilt, load_history(doc))
    assert app.export(key.workflow_id, key.run_id) == doc


def _long_history_prefix(events: int | None) -> dict[str, Any]:
    if not LONG_HISTORY.exists():
        pytest.skip(f"{LONG_HISTORY} not found")
    doc: dict[str, Any] = json.loads(gzip.decompress(LONG_HISTORY.read_bytes()))
    return {"events": doc["events"][:events]} if events else doc


def test_the_50k_history_rebuilt_from_a_snapshot_is_the_replayed_run(memory: Store) -> None:
    # its first 3,000 events: an open run; RUNHISTORY_LONG=1 takes all 50,132
    doc = _long_history_prefix(None if LONG else 3_000)
    app = memory.open()
    key = app.import_history(doc).key
    assert [s.originator_version for s in _snapshots(app, key)] == [len(doc["events"])]
    rebuilt = app.get(key)
    assert not rebuilt.history_loaded
    _assert_same_run(rebuilt, load_history(doc))


# -- the application: when snapshots are taken, and what still works ----------------------------


def test_a_snapshot_is_taken_when_the_stored_history_passes_a_multiple_of_the_interval(
    memory: Store,
) -> None:
    assert DEFAULT_SNAPSHOT_INTERVAL == 1000
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="500")
    doc = _long(activities=400)  # 2,4xx events
    total = len(doc["events"])
    key = app.import_history({"events": doc["events"][:499]}).key
    assert _snapshots(app, key) == []
    app.import_history({"events": doc["events"][:499]})  # nothing new: nothing taken
    app.import_history({"events": doc["events"][:700]})
    assert [s.originator_version for s in _snapshots(app, key)] == [700]
    app.import_history({"events": doc["events"][:999]})
    assert len(_snapshots(app, key)) == 1
    assert app.import_history(doc).appended == total - 999
    assert [s.originator_version for s in _snapshots(app, key)] == [700, total]
    assert app.import_history(doc).appended == 0
    assert len(_snapshots(app, key)) == 2
    _assert_same_run(app.get(key), load_history(doc))


def test_appending_takes_snapshots_and_grows_a_run_rebuilt_from_one(memory: Store) -> None:
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    doc = _long(activities=60)  # 3xx events
    events = doc["events"]
    key = app.import_history({"events": events[:150]}).key
    assert [s.originator_version for s in _snapshots(app, key)] == [150]
    assert app.append(key, events[150:210]) == 60
    assert [s.originator_version for s in _snapshots(app, key)] == [150, 210]
    assert app.append(key, events[210:]) == len(events) - 210
    assert _snapshots(app, key)[-1].originator_version == len(events)
    _assert_same_run(app.get(key), load_history(doc))


def test_a_version_before_the_snapshot_is_replayed_without_it(store: Store) -> None:
    app = store.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    doc = _long()
    key = app.import_history(doc).key
    for version in (1, 57, len(doc["events"]) - 1, len(doc["events"])):
        old = app.get(key, version=version)
        assert old.version == version
        assert old.history_loaded == (version < len(doc["events"]))
        _assert_same_run(old, load_history({"events": doc["events"][:version]}))


def test_a_conflicting_import_is_still_refused_after_a_snapshot(memory: Store) -> None:
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    doc = _long()
    key = app.import_history(doc).key
    changed = copy.deepcopy(doc)
    changed["events"][4]["eventTime"] = "2030-01-01T00:00:00Z"
    with pytest.raises(RunConflict):
        app.import_history(changed)
    assert len(_snapshots(app, key)) == 1
    _assert_same_run(app.get(key), load_history(doc))


def test_a_run_with_a_non_durable_tail_is_snapshotted_without_it(memory: Store) -> None:
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="1")
    tailed = [c["history"] for _, c in checkpoint_histories() if _has_tail(c["history"])]
    if not tailed:
        pytest.skip("no checkpoint with a non-durable tail")
    for doc in tailed:
        key = app.import_history(doc).key
        stored_length = len(app.recorder.select_events(key.aggregate_id))
        assert _snapshots(app, key)[-1].originator_version == stored_length
        run = app.get(key)
        assert run.version == len(doc["events"]) > stored_length
        assert run.durable_length == stored_length
        assert not run.history_loaded
        assert dump_history(run) == doc


def _has_tail(doc: dict[str, Any]) -> bool:
    return str(doc["events"][-1].get("taskId", "0")) == "0" and any(
        str(e.get("taskId", "0")) != "0" for e in doc["events"]
    )


def test_snapshotting_can_be_turned_off_or_made_rarer(memory: Store) -> None:
    off = memory.open(IS_SNAPSHOTTING_ENABLED="n")
    assert off.snapshots is None
    key = off.import_history(_long(activities=400)).key
    assert off.get(key).history_loaded
    never = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="0")
    key = never.import_history(_long(activities=400)).key
    assert _snapshots(never, key) == []
    with pytest.raises(ValueError, match="RUNHISTORY_SNAPSHOT_INTERVAL"):
        memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="often")


def test_a_cached_run_from_a_snapshot_copies_without_copying_the_application(
    memory: Store,
) -> None:
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="100", AGGREGATE_CACHE_MAXSIZE="10")
    doc = _long()
    key = app.import_history(doc).key
    first, second = app.get(key), app.get(key)
    assert first is not second
    _assert_same_run(first, load_history(doc))
    _assert_same_run(second, load_history(doc))


# -- a snapshot that cannot be trusted: speed lost, never correctness ---------------------------


def test_a_failed_snapshot_write_leaves_the_import_whole(
    memory: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    assert app.snapshots is not None

    def fail(*_: Any, **__: Any) -> None:
        raise OperationalError("disk full")

    monkeypatch.setattr(app.snapshots, "put", fail)
    doc = _long()
    with caplog.at_level(logging.WARNING):
        result = app.import_history(doc)
    assert result.appended == len(doc["events"])
    assert "disk full" in caplog.text
    assert _snapshots(app, result.key) == []
    run = app.get(result.key)
    assert run.history_loaded
    _assert_same_run(run, load_history(doc))


def _put_raw(app: RunHistory, stored: StoredEvent) -> None:
    assert app.snapshots is not None
    app.snapshots.recorder.insert_events([stored])


def _bad_snapshots(good: StoredEvent, later: StoredEvent) -> dict[str, StoredEvent]:
    """Snapshots a reader must not use, each newer than `good` (so it would be chosen)."""
    v = later.originator_version
    state = json.loads(later.state)
    altered = copy.deepcopy(state)
    altered["state"]["state"]["entities"][0][1][0][1] = "RUNNING"
    other_format = copy.deepcopy(state)
    other_format["state"]["format"] = "0:older"
    return {
        "unreadable bytes": StoredEvent(good.originator_id, v, good.topic, b"\x00garbage{"),
        "not an object": StoredEvent(good.originator_id, v, good.topic, b"[1, 2]"),
        "unknown topic": StoredEvent(good.originator_id, v, "nowhere:Snapshot", later.state),
        "altered state": StoredEvent(
            good.originator_id, v, good.topic, json.dumps(altered).encode()
        ),
        "another format": StoredEvent(
            good.originator_id, v, good.topic, json.dumps(other_format).encode()
        ),
    }


@pytest.mark.parametrize(
    "damage",
    ["unreadable bytes", "not an object", "unknown topic", "altered state", "another format"],
)
def test_a_corrupt_snapshot_is_skipped_for_an_older_good_one_or_a_replay(
    memory: Store, damage: str
) -> None:
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="100")
    doc = _long()
    events = doc["events"]
    key = app.import_history({"events": events[:150]}).key
    app.import_history(doc)
    good, later = _snapshots(app, key)
    # a good snapshot, and a newer damaged one: the good one serves
    fresh = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="0")
    fresh.import_history(doc)
    _put_raw(fresh, good)
    _put_raw(fresh, _bad_snapshots(good, later)[damage])
    run = fresh.get(key)
    assert not run.history_loaded and run.version == len(events)
    _assert_same_run(run, load_history(doc))
    # and with no good one at all, a full replay
    alone = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="0")
    alone.import_history(doc)
    _put_raw(alone, _bad_snapshots(good, later)[damage])
    run = alone.get(key)
    assert run.history_loaded
    _assert_same_run(run, load_history(doc))


@pytest.mark.parametrize("changed", [0, -1], ids=["first event", "last event"])
def test_a_snapshot_of_other_events_is_never_used(store: Store, changed: int) -> None:
    # the same run key, other events: as if the run's events had been replaced behind the
    # application's back while its snapshot stayed
    doc = _long()
    variant = copy.deepcopy(doc)
    variant["events"][changed]["eventTime"] = "2031-01-01T00:00:00.000000001Z"
    source = RunHistory.open("memory://", RUNHISTORY_SNAPSHOT_INTERVAL="1")
    key = source.import_history(doc).key
    [snapshot] = _snapshots(source, key)
    app = store.open(RUNHISTORY_SNAPSHOT_INTERVAL="0")
    assert app.import_history(variant).key == key
    _put_raw(app, snapshot)
    run = app.get(key)
    assert run.history_loaded  # replayed: the snapshot was not used
    _assert_same_run(run, load_history(variant))


def test_a_snapshot_beyond_the_stored_events_is_never_used(memory: Store) -> None:
    doc = _long()
    app = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="0")
    short = {"events": doc["events"][:200]}
    key = app.import_history(short).key
    source = memory.open(RUNHISTORY_SNAPSHOT_INTERVAL="1")
    source.import_history(doc)
    [snapshot] = _snapshots(source, key)
    _put_raw(app, snapshot)  # a snapshot of events the store does not have (any more)
    run = app.get(key)
    assert run.history_loaded and run.version == 200
    _assert_same_run(run, load_history(short))


def test_the_summary_of_unloaded_events_composes_like_the_whole_history() -> None:
    # every split of histories with and without a non-durable tail, and with no task ids at all
    docs = [c["history"] for _, c in checkpoint_histories()]
    docs.append(_long(activities=3))
    no_task_ids = copy.deepcopy(_long(activities=3))
    for event in no_task_ids["events"]:
        event.pop("taskId", None)
    docs.append(no_task_ids)
    for doc in docs:
        events = list(load_history(doc).history)
        whole = HistoryMark().extend(events)
        assert whole.non_durable_tail == non_durable_tail(events)
        assert whole.length == len(events)
        for k in range(len(events) + 1):
            assert HistoryMark().extend(events[:k]).extend(events[k:]) == whole, k
