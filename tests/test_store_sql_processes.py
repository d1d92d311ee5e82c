"""Two OS processes inserting the same run at once, event by event, into one SQLite file or one
PostgreSQL database: each event is won by exactly one of them, the other is told so with
eventsourcing's IntegrityError, and the run ends up whole, once, in commit order."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from runhistory.stores.sql import Factory
from runhistory.stores.testing import stored_run, synthesized_history
from tests.test_store_sql_support import SQLStore


def _insert_each(
    env: dict[str, str], events: list[StoredEvent], start: Any, results: Any, who: int
) -> None:
    """In a child process: insert every event on its own; report which ones this process won."""
    factory = Factory(env)
    recorder = factory.application_recorder()
    won: list[int] = []
    lost: list[int] = []
    failed: list[str] = []
    start.wait()
    for stored in events:
        try:
            recorder.insert_events([stored])
            won.append(stored.originator_version)
        except IntegrityError:
            lost.append(stored.originator_version)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the test
            failed.append(f"{stored.originator_version}: {type(e).__name__}: {e}")
    factory.close()
    results.put((who, won, lost, failed))


@pytest.fixture(params=["file", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    opened = SQLStore(request.param)
    yield opened
    opened.close()


def test_two_processes_inserting_one_run_win_each_event_once(store: SQLStore) -> None:
    recorder = store.factory().application_recorder()  # creates the tables first
    run_id, events = stored_run(
        synthesized_history(workflow_id="wf-procs", run_id="r", activities=25)
    )
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    env = {key: str(value) for key, value in store.env.items()}
    processes = [
        context.Process(target=_insert_each, args=(env, events, start, results, who))
        for who in (0, 1)
    ]
    for process in processes:
        process.start()
    reports = sorted(results.get(timeout=180) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    versions = [e.originator_version for e in events]
    assert [failed for *_, failed in reports] == [[], []]
    won = reports[0][1] + reports[1][1]
    lost = reports[0][2] + reports[1][2]
    assert sorted(won) == versions, "every event is won exactly once"
    assert sorted(lost) == versions, "and lost exactly once"
    assert recorder.select_events(run_id) == events
    notifications = recorder.select_notifications(None, 10_000)
    assert [n.originator_version for n in notifications] == versions
    assert [n.id for n in notifications] == sorted({n.id for n in notifications})


def _insert_runs(env: dict[str, str], runs: list[list[StoredEvent]], start: Any) -> None:
    """In a child process: insert each run in one transaction."""
    factory = Factory(env)
    recorder = factory.application_recorder()
    start.wait()
    for events in runs:
        recorder.insert_events(events)
    factory.close()


def test_a_subscriber_sees_what_another_process_inserts(store: SQLStore) -> None:
    """SQLite has no way to tell another process: its subscriptions poll. PostgreSQL NOTIFYs."""
    recorder = store.factory().application_recorder()
    runs = [
        stored_run(synthesized_history(workflow_id=f"wf-sub-{n}", run_id="r", activities=n))[1]
        for n in range(1, 6)
    ]
    expected = [(e.originator_id, e.originator_version) for events in runs for e in events]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    env = {key: str(value) for key, value in store.env.items()}
    child = context.Process(target=_insert_runs, args=(env, runs, start))
    child.start()
    seen = []
    with recorder.subscribe(gt=None) as subscription:
        start.wait()
        for notification in subscription:
            seen.append((notification.originator_id, notification.originator_version))
            if len(seen) == len(expected):
                break
    child.join(timeout=60)
    assert child.exitcode == 0
    assert seen == expected
