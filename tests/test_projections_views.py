"""`pending`, `timeline` and `run_durations` on recordings that exercise them."""

from __future__ import annotations

import json
from typing import Any

from runhistory.adapters.history_json import load_history
from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Duration
from runhistory.projections import pending, run_durations, timeline
from tests.conformance_data import CONFORMANCE


def _final(scenario: str, name: str = "history.json") -> WorkflowRun:
    return load_history(CONFORMANCE / scenario / name)


def _checkpoint(scenario: str, number: int) -> tuple[WorkflowRun, dict[str, Any]]:
    data = json.loads((CONFORMANCE / scenario / "checkpoints" / f"{number:03d}.json").read_text())
    return load_history(data["history"]), data["describe"]


def test_a_closed_run_has_nothing_pending_but_keeps_it_at_close() -> None:
    run = _final("activity_cancel_abandon")
    assert not pending(run)
    at_close = pending(run, at_close=True)
    assert [a.key for a in at_close.activities] == ["1"]
    assert at_close.activities[0].name == "heartbeat_until_cancelled"
    assert at_close.activities[0].state == "SCHEDULED"


def test_a_pending_timer_child_and_nexus_operation() -> None:
    timers, _ = _checkpoint("timers", 1)
    assert [(t.kind, t.key) for t in pending(timers).timers] == [("timer", "4")]
    parent, server = _checkpoint("child_terminated", 1)
    children = pending(parent).children
    assert [(c.key, c.event_id, c.state) for c in children] == [
        (server["pendingChildren"][0]["workflowId"], 5, "STARTED")
    ]
    caller, _ = _checkpoint("nexus_canceled", 1)
    (operation,) = pending(caller).nexus_operations
    assert operation.event_id == 5 and operation.state == "STARTED"


def test_the_workflow_task_in_flight_and_a_transient_one() -> None:
    run, server = _checkpoint("signal_during_workflow_task", 1)
    task = pending(run).workflow_task
    assert task is not None and task.state == "STARTED" and task.attempt == 1
    assert server["pendingWorkflowTask"]["state"].endswith(task.state)
    retrying, server = _checkpoint("wft_timeout_start_to_close", 2)
    task = pending(retrying).workflow_task
    assert task is not None
    assert (task.state, task.attempt) == ("SCHEDULED", server["pendingWorkflowTask"]["attempt"])


def test_an_accepted_update_waits_for_its_completion() -> None:
    run, _ = _checkpoint("update_accepted_completed", 1)
    work = pending(run)
    assert [(u.key, u.state, u.name) for u in work.updates] == [
        ("update-slow-1", "ACCEPTED", "add_slow")
    ]
    assert [a.key for a in work.activities] == ["1"]


def test_cancel_requested_activity_state() -> None:
    run, server = _checkpoint("activity_cancel_wait", 1)
    (activity,) = pending(run).activities
    assert activity.state == "CANCEL_REQUESTED"
    assert server["pendingActivities"][0]["state"].endswith("CANCEL_REQUESTED")


def test_timeline_rows_cover_every_entity_in_order() -> None:
    rows = timeline(_final("update_accepted_completed"))
    kinds = [row.kind for row in rows]
    assert kinds.count("workflow_task") == 6
    assert (
        kinds.count("update") == 3 and kinds.count("activity") == 1 and kinds.count("signal") == 1
    )
    assert [row.event_ids[0] for row in rows] == sorted(row.event_ids[0] for row in rows)
    failing = next(row for row in rows if row.key == "update-failing-1")
    assert failing.outcome == "FAILED" and "handler failed" in failing.failure
    slow = next(row for row in rows if row.key == "update-slow-1")
    assert slow.outcome == "COMPLETED" and slow.event_ids == (8, 20)


def test_an_activity_row_shows_attempts_and_its_last_attempt_times() -> None:
    rows = timeline(_final("activity_retry_then_success"))
    (activity,) = [row for row in rows if row.kind == "activity"]
    assert (activity.key, activity.name, activity.attempts) == ("1", "fail_until_attempt", 4)
    assert activity.outcome == "COMPLETED" and activity.event_ids == (5, 6, 7)
    assert activity.queued is not None and activity.queued.total_nanos > 2_000_000_000  # backoffs
    assert activity.running is not None and activity.running.total_nanos < 1_000_000_000


def test_failures_and_outcomes_are_named() -> None:
    rows = timeline(_final("wft_nondeterminism"))
    failed = [row for row in rows if row.outcome == "FAILED"]
    assert len(failed) == 1 and failed[0].failure.startswith("NON_DETERMINISTIC_ERROR")
    assert rows[-1].kind == "workflow_task" and rows[-1].attempts == 3
    child = next(r for r in timeline(_final("child_start_failed")) if r.kind == "child")
    assert (child.outcome, child.failure) == ("START_FAILED", "WORKFLOW_ALREADY_EXISTS")
    timed_out = next(
        r for r in timeline(_final("activity_timeout_heartbeat")) if r.kind == "activity"
    )
    assert timed_out.outcome == "TIMED_OUT" and "HEARTBEAT" in timed_out.failure
    nexus = next(r for r in timeline(_final("nexus_canceled")) if r.kind == "nexus_operation")
    assert nexus.outcome == "CANCELED" and nexus.event_ids == (5, 6, 15, 16, 20)
    abandoned = next(r for r in timeline(_final("activity_cancel_abandon")) if r.kind == "activity")
    assert abandoned.outcome == "ABANDONED" and abandoned.started is None


def test_timers_and_signals() -> None:
    rows = timeline(_final("timers"))
    timers = {row.key: row.outcome for row in rows if row.kind == "timer"}
    assert timers == {"1": "FIRED", "2": "FIRED", "3": "CANCELED", "4": "CANCELED", "5": "FIRED"}
    (signal,) = [row for row in rows if row.kind == "signal"]
    assert (signal.key, signal.outcome, signal.event_ids) == ("proceed", "RECEIVED", (18,))


def test_run_durations_split_total_into_working_and_waiting() -> None:
    run = _final("timers")
    d = run_durations(run)
    start, close = run.history[0].event_time, run.history[-1].event_time
    assert start is not None and close is not None
    assert d.closed and d.total == close - start and d.execution == d.total
    assert d.waiting is not None and d.total is not None
    assert d.waiting.total_nanos + d.working.total_nanos == d.total.total_nanos
    assert d.working == d.workflow_tasks  # no activities: only workflow tasks worked
    assert d.waiting.total_nanos > 2_000_000_000  # three one-second timers, two in parallel


def test_run_durations_of_a_continued_run_start_after_the_backoff() -> None:
    run = _final("continue_as_new_chain", "history-run2.json")
    d = run_durations(run)
    assert d.total is not None and d.execution is not None
    backoff = Duration(0, 928_262_674)
    assert d.total.total_nanos - d.execution.total_nanos == backoff.total_nanos


def test_activity_time_counts_once_when_activities_overlap() -> None:
    d = run_durations(_final("long_history_activities"))
    assert d.total is not None
    assert 0 < d.activities.total_nanos <= d.working.total_nanos <= d.total.total_nanos
