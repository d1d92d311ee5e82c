"""`state_transitions` on built histories whose transactions are known by construction, and on
the recordings that show each hidden term of semantics §3.4."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runhistory.adapters.history_json import load_history
from runhistory.domain import messages as m
from runhistory.domain.enums import EventType as E
from runhistory.domain.enums import TimeoutType, WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.domain.timeval import Timestamp
from runhistory.projections import state_transitions
from runhistory.projections.transitions import heartbeat_estimate, transaction_groups
from tests.conformance_data import CONFORMANCE
from tests.factory import make_event

WF = "wf"
RUN = "run-1"
Q = m.TaskQueue(name="q")


def _started(task_id: int) -> HistoryEvent:
    event = make_event(
        E.WORKFLOW_EXECUTION_STARTED,
        1,
        task_id=task_id,
        workflow_id=WF,
        original_execution_run_id=RUN,
        task_queue=Q,
        workflow_type=m.WorkflowType(name="W"),
    )
    fields = dict(event.__dict__)
    fields["run_key"] = RunKey(WF, RUN)
    return type(event)(**fields)


def _build(*specs: tuple[E, int, dict[str, Any]]) -> WorkflowRun:
    """A validated run from (type, task id, attributes); event ids count up from 1."""
    first, *rest = specs
    run = WorkflowRun.start(_started(first[1]))  # type: ignore[arg-type]
    for event_id, (kind, task_id, attrs) in enumerate(rest, start=2):
        event = make_event(kind, event_id, task_id=task_id, **attrs)
        if task_id == 0:  # the factory fills in a task id; the transient tail has none
            fields = dict(event.__dict__)
            fields["task_id"] = 0
            event = type(event)(**fields)
        run.record(event)
    return run


Spec = tuple[E, int, dict[str, Any]]
START: Spec = (E.WORKFLOW_EXECUTION_STARTED, 100, {})
SCHED: Spec = (E.WORKFLOW_TASK_SCHEDULED, 101, {"task_queue": Q, "attempt": 1})


def _wft(scheduled: int, task_id: int) -> list[tuple[E, int, dict[str, Any]]]:
    """[STARTED] alone, then [COMPLETED ..] starting the next transaction."""
    return [
        (E.WORKFLOW_TASK_STARTED, task_id, {"scheduled_event_id": scheduled}),
        (
            E.WORKFLOW_TASK_COMPLETED,
            task_id + 5,
            {"scheduled_event_id": scheduled, "started_event_id": scheduled + 1},
        ),
    ]


def test_consecutive_task_ids_are_one_transaction() -> None:
    run = _build(
        START,
        SCHED,
        *_wft(2, 110),
        (E.WORKFLOW_EXECUTION_COMPLETED, 116, {"workflow_task_completed_event_id": 4}),
    )
    groups = transaction_groups(run.history)
    assert [[e.event_id for e in g] for g in groups] == [[1, 2], [3], [4, 5]]
    stc = state_transitions(run)
    assert stc.value == stc.visible == 3
    assert stc.lower == 3
    assert not stc.exact and stc.upper is None  # closed: a later reset would add one


def test_an_open_run_with_nothing_unknown_is_exact() -> None:
    run = _build(
        START,
        SCHED,
        *_wft(2, 110),
        (E.TIMER_STARTED, 116, {"timer_id": "t", "workflow_task_completed_event_id": 4}),
    )
    stc = state_transitions(run)
    assert stc.exact and stc.value == stc.lower == stc.upper == 3
    assert stc.reasons == ()


def test_a_signal_buffered_during_the_workflow_task_was_its_own_transaction() -> None:
    run = _build(
        START,
        SCHED,
        (E.WORKFLOW_TASK_STARTED, 110, {"scheduled_event_id": 2}),
        (E.WORKFLOW_TASK_COMPLETED, 120, {"scheduled_event_id": 2, "started_event_id": 3}),
        (E.TIMER_STARTED, 121, {"timer_id": "t", "workflow_task_completed_event_id": 4}),
        (E.WORKFLOW_EXECUTION_SIGNALED, 122, {"signal_name": "s"}),  # flushed buffer
        (E.WORKFLOW_TASK_SCHEDULED, 123, {"task_queue": Q, "attempt": 1}),
    )
    stc = state_transitions(run)
    assert stc.visible == 3
    assert stc.value == stc.lower == 4


def test_a_transient_tail_adds_its_silent_attempts() -> None:
    run = _build(
        START,
        SCHED,
        (E.WORKFLOW_TASK_STARTED, 110, {"scheduled_event_id": 2}),
        (
            E.WORKFLOW_TASK_FAILED,
            120,
            {
                "scheduled_event_id": 2,
                "started_event_id": 3,
                "cause": WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE,
            },
        ),
        # attempts 2 and 3 failed without events; attempt 4 is started: the task_id = 0 tail
        (E.WORKFLOW_TASK_SCHEDULED, 0, {"task_queue": Q, "attempt": 4}),
        (E.WORKFLOW_TASK_STARTED, 0, {"scheduled_event_id": 5}),
    )
    stc = state_transitions(run)
    assert stc.visible == 3
    assert stc.value == 3 + 2 * (4 - 2) + 1


def test_a_failing_workflow_task_with_no_tail_leaves_the_count_open() -> None:
    run = _build(
        START,
        SCHED,
        (E.WORKFLOW_TASK_STARTED, 110, {"scheduled_event_id": 2}),
        (
            E.WORKFLOW_TASK_TIMED_OUT,
            120,
            {
                "scheduled_event_id": 2,
                "started_event_id": 3,
                "timeout_type": TimeoutType.START_TO_CLOSE,
            },
        ),
    )
    stc = state_transitions(run)
    assert stc.value == stc.lower == 3
    assert stc.upper is None and not stc.exact


def test_an_in_flight_workflow_task_may_hide_buffered_arrivals() -> None:
    run = _build(START, SCHED, (E.WORKFLOW_TASK_STARTED, 110, {"scheduled_event_id": 2}))
    stc = state_transitions(run)
    assert stc.value == 2 and stc.upper is None
    assert any("buffered" in reason for reason in stc.reasons)


def test_a_reset_run_counts_its_rebuild_and_reset_as_two() -> None:
    prefix = [START, SCHED, (E.WORKFLOW_TASK_STARTED, 103, {"scheduled_event_id": 2})]
    reset = (
        E.WORKFLOW_TASK_FAILED,
        500,
        {
            "scheduled_event_id": 2,
            "started_event_id": 3,
            "cause": WorkflowTaskFailedCause.RESET_WORKFLOW,
            "base_run_id": "base",
            "new_run_id": RUN,
        },
    )
    run = _build(
        *prefix,
        reset,
        (E.WORKFLOW_TASK_SCHEDULED, 501, {"task_queue": Q, "attempt": 1}),
        (E.WORKFLOW_TASK_STARTED, 510, {"scheduled_event_id": 5}),
    )
    stc = state_transitions(run)
    # groups [1,2] [3] (copied from the base run) are not this run's; [4,5] counts 2; [6] 1
    assert stc.value == 3


def test_the_recorded_reset_runs() -> None:
    for name, want in (("workflow_reset", 10), ("workflow_reset_running", 13)):
        run = load_history(CONFORMANCE / name / "history.json")
        assert state_transitions(run).value == want


@pytest.mark.parametrize(
    ("scenario", "want"), [("one_activity_eager", 6), ("one_activity_no_eager", 7)]
)
def test_eleven_events_are_six_or_seven_transitions(scenario: str, want: int) -> None:
    stc = state_transitions(load_history(CONFORMANCE / scenario / "history.json"))
    assert stc.visible == 6
    assert stc.value == want
    assert stc.lower <= 6 and stc.upper is None
    assert any("eager" in reason for reason in stc.reasons)


def test_activity_retries_cost_a_start_per_attempt_and_a_failure_per_retry() -> None:
    run = load_history(CONFORMANCE / "activity_retry_then_success" / "history.json")
    stc = state_transitions(run)
    assert stc.visible == 6
    assert stc.value == 6 + 4 + 3 - 1  # attempt 4; the first attempt was started eagerly
    assert any("known only by count" in reason for reason in stc.reasons)


def test_a_signal_from_another_workflow_costs_the_receiver_one_more() -> None:
    run = load_history(CONFORMANCE / "external_signal_and_cancel" / "history-target.json")
    stc = state_transitions(run)
    assert stc.value == stc.visible + 1
    assert stc.lower == stc.visible


def test_heartbeat_estimate() -> None:
    second = 1_000_000_000
    assert heartbeat_estimate(0, 5 * second) == 0
    # heartbeats at 0, 1.6 s; the 2 s heartbeat timer fires once on a live activity
    assert heartbeat_estimate(2 * second, int(2.42 * second)) == 3
    # heartbeats at 0, 0.8, 1.6 s; the 1 s timer re-arms once
    assert heartbeat_estimate(second, int(1.62 * second)) == 4
    # a heartbeat timeout after one early heartbeat: that heartbeat and one re-arm
    assert heartbeat_estimate(second, int(2.003 * second), timed_out=True) == 2
    assert heartbeat_estimate(second, int(1.001 * second), timed_out=True) == 0


def test_the_server_count_is_kept() -> None:
    run = load_history(CONFORMANCE / "timers" / "history.json")
    assert state_transitions(run, server_count=15).server == 15
    assert state_transitions(run).server is None


def test_histories_without_usable_task_ids_are_never_exact() -> None:
    run = _build(
        (E.WORKFLOW_EXECUTION_STARTED, 9, {}),
        (E.WORKFLOW_TASK_SCHEDULED, 3, {"task_queue": Q, "attempt": 1}),
        (E.WORKFLOW_TASK_STARTED, 4, {"scheduled_event_id": 2}),
    )
    stc = state_transitions(run)
    assert not stc.exact and stc.upper is None
    assert stc.value >= 2


def test_a_started_event_time_is_what_the_eager_heuristic_reads() -> None:
    doc = load_history(CONFORMANCE / "one_activity_eager" / "history.json")
    scheduled, started = doc.history[4], doc.history[5]
    assert isinstance(scheduled.event_time, Timestamp) and isinstance(started.event_time, Timestamp)
    assert (started.event_time - scheduled.event_time).total_nanos < 1_000_000


@pytest.mark.parametrize(
    "path",
    sorted(CONFORMANCE.glob("*/describe*.json")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_without_task_ids_the_bounds_still_hold(path: Any) -> None:
    doc = json.loads(path.with_name(path.name.replace("describe", "history")).read_text())
    for event in doc["events"]:
        event.pop("taskId", None)  # as an old server or an importer would leave it
    stc = state_transitions(load_history(doc))
    want = int(json.loads(path.read_text())["workflowExecutionInfo"]["stateTransitionCount"])
    assert not stc.exact
    assert stc.lower <= want and stc.upper is None
    assert any("task ids" in reason for reason in stc.reasons)
