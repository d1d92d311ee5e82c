"""`RunHistory.append` after a stored non-durable tail (I13) does what importing the longer
history does: the server's durable events, under the tail's ids, replace the tail; a
transient tail at the end of the new events is stored beside the run, not in its stream.
Events that do not continue the run's durable events are refused and nothing is written.
All on real-server recordings: checkpoints fetched while a workflow task was transient, and
the same runs' final histories."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eventsourcing.persistence import IntegrityError

from runhistory.app import RunHistory
from runhistory.domain.errors import EventOutOfSequence, LimitExceeded
from runhistory.domain.limits import HistoryLimits
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from tests.conformance_data import CONFORMANCE

# (scenario, checkpoint): fetched while the run ended in a taskId-less workflow-task tail
TAILED = [
    ("wft_failure_then_fixed", "001"),  # transient attempt 2: [SCHEDULED, STARTED]
    ("wft_failure_then_fixed", "002"),
    ("wft_nondeterminism", "001"),
    ("wft_timeout_start_to_close", "002"),  # [SCHEDULED] alone
]
pytestmark = pytest.mark.skipif(
    not all((CONFORMANCE / s / "checkpoints" / f"{c}.json").is_file() for s, c in TAILED),
    reason="shared/conformance not found",
)
IDS = [f"{s}/{c}" for s, c in TAILED]
E = TypeVar("E", bound=Exception)


def _checkpoint(scenario: str, checkpoint: str) -> list[dict[str, Any]]:
    path = CONFORMANCE / scenario / "checkpoints" / f"{checkpoint}.json"
    events: list[dict[str, Any]] = json.loads(path.read_text())["history"]["events"]
    return events


def _final(scenario: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        (CONFORMANCE / scenario / "history.json").read_text()
    )["events"]
    return events


def _durable(events: list[dict[str, Any]]) -> int:
    """How many events of a checkpoint the server had persisted (those with a taskId)."""
    return sum(1 for e in events if e.get("taskId"))


@dataclass(frozen=True)
class Tailed:
    """A run fetched while it ended in a transient tail, and its final history."""

    fetched: list[dict[str, Any]]
    final: list[dict[str, Any]]

    @property
    def durable(self) -> int:
        return _durable(self.fetched)


@pytest.fixture(params=TAILED, ids=IDS)
def tailed(request: pytest.FixtureRequest) -> Tailed:
    scenario, checkpoint = request.param
    return Tailed(_checkpoint(scenario, checkpoint), _final(scenario))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"


def _open(url: str, snapshot_every: int = 0) -> RunHistory:
    return RunHistory.open(url, RUNHISTORY_SNAPSHOT_INTERVAL=str(snapshot_every))


def _state(app: RunHistory, key: RunKey) -> tuple[list[dict[str, Any]], int, Any]:
    """What is stored of a run: its export, its durable stream's length, and its tail."""
    tail = app._stored_tail(key.aggregate_id)
    return (
        app.export(key.workflow_id, key.run_id)["events"],
        len(app.recorder.select_events(key.aggregate_id)),
        None if tail is None else (tail.after_event_id, tail.events_json),
    )


def _shown(app: RunHistory, key: RunKey) -> tuple[list[dict[str, Any]], int]:
    """What a reader sees of a run: its export and its durable stream's length."""
    export, stream, _ = _state(app, key)
    return export, stream


def _imported(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """What importing `events` whole into an empty store shows."""
    app = RunHistory.open("memory://")
    return _shown(app, app.import_history({"events": events}).key)


@pytest.mark.parametrize("snapshot_every", [0, 3], ids=["replayed", "from-a-snapshot"])
def test_the_durable_continuation_replaces_the_stored_tail(
    store: str, tailed: Tailed, snapshot_every: int
) -> None:
    fetched, final, durable = tailed.fetched, tailed.final, tailed.durable
    app = _open(store, snapshot_every)
    key = app.import_history({"events": fetched}).key
    run = app.get(key)
    assert run.history_loaded == (not snapshot_every)  # or rebuilt from a snapshot
    assert len(run.history) == len(fetched)  # the tail is shown on the run

    assert app.append(key, final[durable:]) == len(final) - durable

    assert _shown(app, key) == _imported(final) == (final, len(final))
    run = app.get(key)
    assert run.version == len(final) and run.status == "COMPLETED"
    if store.startswith("sqlite"):
        assert _shown(_open(store), key) == (final, len(final))  # as another process reads it


def test_appended_one_event_at_a_time_each_step_is_the_import_of_that_prefix(
    store: str, tailed: Tailed
) -> None:
    fetched, final, durable = tailed.fetched, tailed.final, tailed.durable
    app = _open(store)
    key = app.import_history({"events": fetched}).key
    for n in range(durable + 1, len(final) + 1):
        assert app.append(key, final[n - 1 : n]) == 1
        # the stored tail no longer continues the run, so it is not shown
        assert _shown(app, key) == _imported(final[:n]) == (final[:n], n)


def test_a_transient_tail_appended_is_stored_beside_the_run_as_an_import_stores_it(
    store: str, tailed: Tailed
) -> None:
    fetched, final, durable = tailed.fetched, tailed.final, tailed.durable
    app = _open(store)
    key = app.import_history({"events": final[:durable]}).key
    assert app.append(key, fetched[durable:]) == len(fetched) - durable

    assert _shown(app, key) == _imported(fetched) == (fetched, durable)  # not in the stream
    assert app.get(key).durable_length == durable
    imported = RunHistory.open("memory://")
    imported.import_history({"events": fetched})
    assert _state(app, key) == _state(imported, key)  # the same tail aggregate, too

    # the next fetch's tail replaces it, and then the server's durable events do
    newer = copy.deepcopy(fetched[durable:])
    newer[0]["eventTime"] = "2030-01-01T00:00:00Z"
    assert app.append(key, newer) == len(newer)
    assert _shown(app, key) == ([*final[:durable], *newer], durable)
    assert app.append(key, final[durable:]) == len(final) - durable
    assert _shown(app, key) == (final, len(final))


def _refused_whole(
    app: RunHistory, key: RunKey, events: list[dict[str, Any]], error: type[E], **kwargs: Any
) -> E:
    before = _state(app, key)
    with pytest.raises(error) as caught:
        app.append(key, events, **kwargs)
    assert _state(app, key) == before  # nothing written: not the events, not the tail
    assert len(app.get(key).history) == len(before[0])  # and the run still rebuilds
    return caught.value


def test_events_that_do_not_continue_the_durable_events_are_refused_and_nothing_written(
    store: str, tailed: Tailed
) -> None:
    fetched, final, durable = tailed.fetched, tailed.final, tailed.durable
    app = _open(store)
    key = app.import_history({"events": fetched}).key

    # over the last durable event, changed or not: append only grows a run
    changed = copy.deepcopy(final[durable - 1 :])
    changed[0]["eventTime"] = "2030-01-01T00:00:00Z"
    for events in (final[durable - 1 :], changed):
        error = _refused_whole(app, key, events, EventOutOfSequence)
        assert error.event_id == durable

    # after the stored tail: its events are not durable, so nothing can be built on them
    error = _refused_whole(app, key, final[len(fetched) :], EventOutOfSequence)
    assert error.event_id == len(fetched) + 1
    assert f"expected event id {durable + 1}," in str(error)

    # a continuation whose last event the run refuses: none of it is written
    broken = copy.deepcopy(final[durable:])
    broken[-1]["eventId"] = str(len(final) + 1)
    error = _refused_whole(app, key, broken, EventOutOfSequence)
    assert error.event_id == len(final) + 1

    assert app.append(key, final[durable:]) == len(final) - durable  # the right ones still go
    assert _shown(app, key) == (final, len(final))


def test_a_limit_breach_refuses_the_continuation_as_it_refuses_the_import(store: str) -> None:
    fetched, final = _checkpoint(*TAILED[0]), _final(TAILED[0][0])
    durable = _durable(fetched)
    # crossed by the last durable event stored; the continuation does not terminate the run
    limits = HistoryLimits(max_events=durable - 1)
    with pytest.raises(LimitExceeded) as imported:
        RunHistory.open("memory://").import_history({"events": final}, limits=limits)
    app = _open(store)
    key = app.import_history({"events": fetched}).key
    error = _refused_whole(app, key, final[durable:], LimitExceeded, limits=limits)
    assert str(error) == str(imported.value)


def test_the_events_and_the_tail_are_written_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer stores event 11 between this append's read and its write: the append's
    events are refused by the store, and so is the new tail they end with."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    fetched, final = _checkpoint(*TAILED[0]), _final(TAILED[0][0])
    durable = _durable(fetched)
    mine, other = _open(url), _open(url)
    key = mine.import_history({"events": fetched}).key
    stored_tail = _state(mine, key)[2]
    # the server's event 11, then a transient STARTED of it (a new non-durable tail)
    transient = {k: v for k, v in final[durable + 1].items() if k != "taskId"}
    events = [final[durable], transient]

    rebuild = mine._rebuild

    def racing(k: RunKey, version: int | None = None) -> WorkflowRun:
        run = rebuild(k, version)
        other.append(k, final[durable : durable + 1])
        return run

    monkeypatch.setattr(mine, "_rebuild", racing)
    with pytest.raises(IntegrityError):
        mine.append(key, events)
    assert _state(mine, key) == (final[: durable + 1], durable + 1, stored_tail)

    monkeypatch.undo()
    mine2 = _open(url)
    assert mine2.append(key, events[1:]) == 1  # a clean retry on top of the other writer's
    assert _shown(mine2, key) == ([*final[: durable + 1], transient], durable + 1)
