"""`RunHistory.append` enforces Temporal's limits as an import of the whole run would: each new
event's ids and payload fields, and the history length and size of the stored events and the
new ones together. A refused append writes nothing. A run rebuilt from a snapshot is judged
without reading its earlier events back unless it is near a history limit."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any
from uuid import UUID

import orjson
import pytest

from runhistory.adapters.history_json import load_history
from runhistory.app import RunHistory
from runhistory.domain.errors import HistoryError, LimitExceeded
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.limits import NO_LIMITS, TEMPORAL_LIMITS, HistoryLimits
from runhistory.domain.run_key import RunKey
from runhistory.projections.size import history_size_bytes
from runhistory.snapshots import history_loader
from tests.conformance_data import CONFORMANCE

pytestmark = pytest.mark.skipif(
    not (CONFORMANCE / "workflow_terminated").is_dir(), reason="shared/conformance not found"
)


@cache
def _raw(scenario: str) -> bytes:
    return (CONFORMANCE / scenario / "history.json").read_bytes()


def _events(scenario: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = orjson.loads(_raw(scenario))["events"]
    return events


def _stored(
    events: Sequence[dict[str, Any]], *, snapshot_every: int = 0
) -> tuple[RunHistory, RunKey]:
    """A memory store holding `events` (imported without limits): the run to append to."""
    app = RunHistory.open("memory://", RUNHISTORY_SNAPSHOT_INTERVAL=str(snapshot_every))
    key = app.import_history({"events": list(events)}, limits=NO_LIMITS).key
    return app, key


def _exported(app: RunHistory, key: RunKey) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = app.export(key.workflow_id, key.run_id)["events"]
    return events


def _refused(app: RunHistory, key: RunKey, events: Sequence[Any], **kwargs: Any) -> LimitExceeded:
    before = _exported(app, key)
    with pytest.raises(LimitExceeded) as caught:
        app.append(key, events, **kwargs)
    assert _exported(app, key) == before  # nothing written
    assert app.get(key).version == len(before)
    return caught.value


# --- the history length ---------------------------------------------------------------------


def test_an_append_past_the_count_limit_by_a_second_transaction_is_refused_whole() -> None:
    # signals_many_batched: after event 10 the signals are in transactions of one each
    events = _events("signals_many_batched")
    small = HistoryLimits(max_events=10)
    app, key = _stored(events[:10])
    error = _refused(app, key, events[10:], limits=small)
    assert error.limit_name == "limit.historyCount.error" and error.limit == 10
    assert error.event_id == 13 and "passed at event 11" in str(error)
    assert _exported(app, key) == events[:10]  # not even the events before the breach

    assert app.append(key, events[10:11], limits=small) == 1  # the crossing transaction
    error = _refused(app, key, events[11:12], limits=small)  # then only a termination
    assert error.event_id == 12 and "does not terminate the run" in str(error)
    assert _exported(app, key) == events[:11]


def test_the_servers_termination_may_follow_the_crossing_transaction() -> None:
    # workflow_terminated: transactions [1 2] [3] [4 5] [6 TERMINATED]
    events = _events("workflow_terminated")
    app, key = _stored(events[:3])
    limits = HistoryLimits(max_events=3)
    assert app.append(key, events[3:5], limits=limits) == 2  # crosses the limit
    assert app.append(key, events[5:], limits=limits) == 1  # the server's termination
    assert _exported(app, key) == events


def test_the_count_is_of_the_whole_run_not_of_the_batch() -> None:
    events = _events("signals_many_batched")
    app, key = _stored(events[:20])
    limits = HistoryLimits(max_events=15)  # each batch alone is well under it
    _refused(app, key, events[20:25], limits=limits)
    assert _exported(app, key) == events[:20]
    assert app.append(key, events[20:25], limits=HistoryLimits(max_events=25)) == 5


# --- ids and payloads, and the defaults -----------------------------------------------------


def _long_activity_id() -> list[dict[str, Any]]:
    events = copy.deepcopy(_events("one_activity_eager"))
    events[4]["activityTaskScheduledEventAttributes"]["activityId"] = "a" * 1001
    return events


def test_an_event_over_the_id_limit_is_refused_with_imports_message_and_nothing_written() -> None:
    events = _long_activity_id()
    app, key = _stored(events[:4])
    error = _refused(app, key, events[4:])  # strict, so Temporal's limits by default
    assert (error.limit_name, error.event_id, error.actual) == ("limit.maxIDLength", 5, 1001)
    with pytest.raises(LimitExceeded) as imported:
        RunHistory.open("memory://").import_history({"events": events})
    assert str(error) == str(imported.value)


def test_limits_default_as_for_import_and_can_be_changed() -> None:
    events = _long_activity_id()
    _refused(*_stored(events[:4]), events[4:], strict=False, limits=TEMPORAL_LIMITS)
    _refused(*_stored(events[:4]), events[4:], limits=HistoryLimits(max_id_length=1000))
    for kwargs in (
        {"strict": False},  # lenient mode: no limits unless asked for
        {"limits": NO_LIMITS},
        {"limits": HistoryLimits(max_id_length=1001)},
    ):
        app, key = _stored(events[:4])
        assert app.append(key, events[4:], **kwargs) == len(events) - 4
        assert _exported(app, key) == events


def test_a_payload_over_the_limit_refuses_the_whole_batch() -> None:
    events = _events("one_activity_eager")
    app, key = _stored(events[:4])
    error = _refused(app, key, events[4:], limits=HistoryLimits(max_payload_bytes=2))
    assert error.limit_name == "limit.blobSize.error" and (error.event_id or 0) >= 5
    assert _exported(app, key) == events[:4]


def test_an_illegal_event_is_reported_as_such_before_its_limits() -> None:
    events = _long_activity_id()
    app, key = _stored(events[:4])
    illegal = dict(events[4], eventId="6")  # over the id limit, and out of sequence
    with pytest.raises(HistoryError) as caught:
        app.append(key, [illegal])
    assert not isinstance(caught.value, LimitExceeded) and caught.value.event_id == 6
    assert _exported(app, key) == events[:4]


# --- the history size -----------------------------------------------------------------------


def test_the_size_limit_is_of_the_whole_run() -> None:
    events = _events("workflow_terminated")  # [1 2] [3] [4 5] [6 TERMINATED]
    total = history_size_bytes(load_history(_raw("workflow_terminated")), use_checkpoints=False)
    through_3 = history_size_bytes(load_history({"events": events[:3]}), use_checkpoints=False)
    app, key = _stored(events[:3])
    # one byte under events 1-3: event 3 crosses, and two transactions follow it
    error = _refused(app, key, events[3:], limits=HistoryLimits(max_history_bytes=through_3 - 1))
    assert error.limit_name == "limit.historySize.error" and error.actual == total
    assert error.event_id == 6 and "passed at event 3" in str(error)
    assert app.append(key, events[3:], limits=HistoryLimits(max_history_bytes=through_3)) == 3


# --- the same verdict as importing the whole run --------------------------------------------


def _verdict(action: Callable[[], object]) -> tuple[str, int | None] | None:
    try:
        action()
    except LimitExceeded as e:
        return e.limit_name, e.event_id
    return None


@pytest.mark.parametrize("snapshot_every", [0, 3], ids=["replayed", "from-a-snapshot"])
@pytest.mark.parametrize(
    "scenario", ["signals_many_batched", "workflow_terminated", "one_activity_eager", "timers"]
)
def test_append_judges_the_history_limits_as_an_import_of_the_whole_run(
    scenario: str, snapshot_every: int
) -> None:
    events = _events(scenario)
    n = len(events)
    size = history_size_bytes(load_history(_raw(scenario)), use_checkpoints=False)
    limits = [HistoryLimits(max_events=k) for k in sorted({2, 3, n // 2, n - 2, n - 1, n})]
    limits += [
        HistoryLimits(max_history_bytes=b)
        for b in sorted({size // 3, size // 2, size - 200, size - 1, size})
    ]
    refusals = 0
    for limit in limits:
        expected = _verdict(partial(load_history, _raw(scenario), limits=limit))
        for split in sorted({1, 2, 3, n // 2, n - 1}):
            app, key = _stored(events[:split], snapshot_every=snapshot_every)
            got = _verdict(partial(app.append, key, events[split:], limits=limit))
            assert got == expected, (limit, split)
            assert len(_exported(app, key)) == (split if got else n)
            refusals += got is not None
    assert refusals  # the limits chosen do refuse some appends


# --- cost: a run rebuilt from a snapshot is not read whole ----------------------------------


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events each read-back of a run's earlier events loaded."""
    counted: list[int] = []
    original = history_loader

    def counting(events: Any, run_id: UUID) -> Callable[[int], Sequence[HistoryEvent]]:
        load = original(events, run_id)

        def wrapped(upto: int) -> Sequence[HistoryEvent]:
            counted.append(upto)
            return load(upto)

        return wrapped

    monkeypatch.setattr("runhistory.app.history_loader", counting)
    return counted


def test_an_append_far_from_the_history_limits_does_not_read_the_run_back(
    loads: list[int],
) -> None:
    events = _events("long_history_activities")  # 2,235 events, the server's size totals in it
    app, key = _stored(events[:2000], snapshot_every=500)
    assert not app.get(key).history_loaded  # rebuilt from its snapshot
    for start in range(2000, len(events), 50):
        end = min(start + 50, len(events))
        assert app.append(key, events[start:end]) == end - start  # Temporal's limits
    assert loads == []
    assert _exported(app, key) == events


def test_near_a_history_limit_a_run_from_a_snapshot_is_read_and_judged_whole(
    loads: list[int],
) -> None:
    events = _events("long_history_activities")
    run = load_history(_raw("long_history_activities"))
    size = history_size_bytes(run, use_checkpoints=False)
    app, key = _stored(events[:2000], snapshot_every=500)
    error = _refused(app, key, events[2000:], limits=HistoryLimits(max_history_bytes=size // 2))
    assert error.limit_name == "limit.historySize.error" and error.actual == size
    assert loads  # the whole run was read to find where it crossed
    loads.clear()
    error = _refused(app, key, events[2000:], limits=HistoryLimits(max_events=2100))
    assert error.limit_name == "limit.historyCount.error"
    assert loads
    loads.clear()
    assert app.append(key, events[2000:], limits=HistoryLimits(max_history_bytes=size)) == 235
