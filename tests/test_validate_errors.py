"""What an IllegalTransition says: the event id and type, the entity and its key, the state the
entity was found in, the events that state allows, and the rule (temporal-semantics.md §2.2).
Each case is a small hand-written history, checked in strict mode and as collect-all's first
error, on the exception's attributes and on its message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from runhistory import (
    EventOutOfSequence,
    HistoryError,
    IllegalTransition,
    InvalidHistory,
    UnknownEventType,
    dump_history,
    load_history,
)

Json = dict[str, Any]
P = "EVENT_TYPE_"
WFT_CLOSES = ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_TIMED_OUT")


class History:
    """A canonical JSON history written event by event; ids, times and task ids are automatic
    (one transaction per `txn()`)."""

    def __init__(self) -> None:
        self.events: list[Json] = []
        self.task = 1_048_576

    def txn(self) -> History:
        self.task += 5
        return self

    def add(self, etype: str, attrs: Json | None = None, **extra: Any) -> int:
        event_id = len(self.events) + 1
        words = etype.lower().split("_")
        key = words[0] + "".join(w.capitalize() for w in words[1:]) + "EventAttributes"
        event: Json = {
            "eventId": str(event_id),
            "eventTime": f"2026-11-22T01:{event_id // 60:02d}:{event_id % 60:02d}.123456789Z",
            "eventType": P + etype,
            "taskId": str(self.task),
            key: attrs or {},
            **extra,
        }
        self.task += 1
        self.events.append(event)
        return event_id

    def doc(self) -> Json:
        return {"events": list(self.events)}

    # common shapes

    def started(self) -> History:
        self.txn().add(
            "WORKFLOW_EXECUTION_STARTED",
            {
                "workflowType": {"name": "Flow"},
                "taskQueue": {"name": "tq", "kind": "TASK_QUEUE_KIND_NORMAL"},
                "workflowTaskTimeout": "10s",
                "originalExecutionRunId": "0f4c1d7e-7a0b-4c55-9a57-6f4f6c2f0b11",
                "firstExecutionRunId": "0f4c1d7e-7a0b-4c55-9a57-6f4f6c2f0b11",
                "attempt": 1,
                "workflowId": "wf-errors",
            },
        )
        return self

    def wft_scheduled(self, attempt: int = 1) -> int:
        return self.add(
            "WORKFLOW_TASK_SCHEDULED",
            {
                "taskQueue": {"name": "tq", "kind": "TASK_QUEUE_KIND_NORMAL"},
                "startToCloseTimeout": "10s",
                "attempt": attempt,
            },
        )

    def wft_started(self, scheduled: int) -> int:
        return self.add(
            "WORKFLOW_TASK_STARTED",
            {"scheduledEventId": str(scheduled), "identity": "w", "requestId": "r"},
        )

    def wft_completed(self, scheduled: int, started: int) -> int:
        return self.add(
            "WORKFLOW_TASK_COMPLETED",
            {"scheduledEventId": str(scheduled), "startedEventId": str(started), "identity": "w"},
        )

    def completing(self) -> int:
        """[WFT_SCHEDULED] [WFT_STARTED] [WFT_COMPLETED ...]: returns the completion's id, the
        transaction stays open for command events."""
        scheduled = self.txn().wft_scheduled()
        started = self.txn().wft_started(scheduled)
        return self.txn().wft_completed(scheduled, started)

    def activity(self, completed: int, activity_id: str = "a1") -> int:
        return self.add(
            "ACTIVITY_TASK_SCHEDULED",
            {
                "activityId": activity_id,
                "activityType": {"name": "charge"},
                "taskQueue": {"name": "tq", "kind": "TASK_QUEUE_KIND_NORMAL"},
                "startToCloseTimeout": "5s",
                "workflowTaskCompletedEventId": str(completed),
            },
        )

    def timer(self, completed: int, timer_id: str = "t1") -> int:
        return self.add(
            "TIMER_STARTED",
            {
                "timerId": timer_id,
                "startToFireTimeout": "1s",
                "workflowTaskCompletedEventId": str(completed),
            },
        )


def refusal(doc: Json, **kwargs: Any) -> HistoryError:
    with pytest.raises(HistoryError) as info:
        load_history(doc, **kwargs)
    return info.value


def check(
    doc: Json,
    *,
    event_id: int,
    event_type: str,
    entity: str,
    key: object,
    state: str,
    allowed: Sequence[str],
    rule: str,
    reason: str = "",
) -> IllegalTransition:
    """Strict mode raises exactly this IllegalTransition, its message names every part of it,
    and collect-all reports the same error first."""
    error = refusal(doc)
    assert isinstance(error, IllegalTransition), repr(error)
    assert not isinstance(error, EventOutOfSequence)
    assert error.event_id == event_id
    assert error.event_type == event_type
    assert error.entity == entity
    assert error.key == key
    assert error.state == state
    assert error.allowed == tuple(allowed)
    assert error.rule == rule
    message = str(error)
    assert message.startswith(f"event {event_id} {event_type}: ")
    assert f"{entity} {key}" in message
    assert f" is {state}," in message
    for name in allowed:
        assert name in message
    if not allowed:
        assert "where nothing may follow" in message
    if rule:
        assert f"[{rule}]" in message
    assert reason in error.reason and reason in message
    collected = refusal(doc, collect_all=True)
    assert isinstance(collected, InvalidHistory)
    first = collected.errors[0]
    assert isinstance(first, IllegalTransition)
    assert (first.event_id, first.event_type, first.entity, first.key, first.state) == (
        event_id,
        event_type,
        entity,
        key,
        state,
    )
    assert str(first) == message
    assert collected.event_id == event_id
    return error


# --- the cases ----------------------------------------------------------------------------


def test_activity_completed_without_starting() -> None:
    h = History().started()
    completed = h.completing()
    scheduled = h.activity(completed)
    h.txn().add(
        "ACTIVITY_TASK_COMPLETED",
        {"scheduledEventId": str(scheduled), "startedEventId": str(scheduled + 1)},
    )
    check(
        h.doc(),
        event_id=6,
        event_type="ACTIVITY_TASK_COMPLETED",
        entity="activity",
        key=scheduled,
        state="SCHEDULED",
        allowed=[
            "ACTIVITY_TASK_STARTED",
            "ACTIVITY_TASK_TIMED_OUT",
            "ACTIVITY_TASK_CANCEL_REQUESTED",
        ],
        rule="",
        reason="not allowed when the activity is SCHEDULED",
    )


def test_activity_completed_after_start_is_legal() -> None:
    """The control case for the one above: with its ACTIVITY_TASK_STARTED it loads."""
    h = History().started()
    completed = h.completing()
    scheduled = h.activity(completed)
    h.txn()
    started = h.add("ACTIVITY_TASK_STARTED", {"scheduledEventId": str(scheduled), "attempt": 1})
    h.add(
        "ACTIVITY_TASK_COMPLETED",
        {"scheduledEventId": str(scheduled), "startedEventId": str(started)},
    )
    h.wft_scheduled()
    run = load_history(h.doc())
    assert dump_history(run) == h.doc()
    assert run.status == "RUNNING"


def test_activity_completed_quoting_the_wrong_start() -> None:
    h = History().started()
    completed = h.completing()
    scheduled = h.activity(completed)
    h.txn()
    started = h.add("ACTIVITY_TASK_STARTED", {"scheduledEventId": str(scheduled), "attempt": 1})
    h.add("ACTIVITY_TASK_COMPLETED", {"scheduledEventId": str(scheduled), "startedEventId": "3"})
    check(
        h.doc(),
        event_id=started + 1,
        event_type="ACTIVITY_TASK_COMPLETED",
        entity="activity",
        key=scheduled,
        state="STARTED",
        allowed=[
            "ACTIVITY_TASK_COMPLETED",
            "ACTIVITY_TASK_FAILED",
            "ACTIVITY_TASK_TIMED_OUT",
            "ACTIVITY_TASK_CANCEL_REQUESTED",
        ],
        rule="I11",
        reason=f"startedEventId 3 is not the started event {started}",
    )


def test_timer_fired_twice() -> None:
    h = History().started()
    completed = h.completing()
    timer = h.timer(completed, "t1")
    h.txn().add("TIMER_FIRED", {"timerId": "t1", "startedEventId": str(timer)})
    h.wft_scheduled()
    second = h.txn().add("TIMER_FIRED", {"timerId": "t1", "startedEventId": str(timer)})
    check(
        h.doc(),
        event_id=second,
        event_type="TIMER_FIRED",
        entity="timer",
        key="t1",
        state="ABSENT",
        allowed=["TIMER_STARTED"],
        rule="",
    )


def test_timer_canceled_after_it_fired() -> None:
    """I18: a timer is fired or canceled, never both."""
    h = History().started()
    completed = h.completing()
    timer = h.timer(completed, "t9")
    h.txn().add("TIMER_FIRED", {"timerId": "t9", "startedEventId": str(timer)})
    scheduled = h.wft_scheduled()
    started = h.txn().wft_started(scheduled)
    later = h.txn().wft_completed(scheduled, started)
    canceled = h.add(
        "TIMER_CANCELED",
        {"timerId": "t9", "startedEventId": str(timer), "workflowTaskCompletedEventId": str(later)},
    )
    check(
        h.doc(),
        event_id=canceled,
        event_type="TIMER_CANCELED",
        entity="timer",
        key="t9",
        state="ABSENT",
        allowed=["TIMER_STARTED"],
        rule="",
    )


def test_command_event_outside_a_completion() -> None:
    h = History().started()
    scheduled = h.wft_scheduled()
    timer = h.txn().add(
        "TIMER_STARTED",
        {"timerId": "t1", "startToFireTimeout": "1s", "workflowTaskCompletedEventId": "2"},
    )
    check(
        h.doc(),
        event_id=timer,
        event_type="TIMER_STARTED",
        entity="workflow task",
        key=scheduled,
        state="not completing",
        allowed=["WORKFLOW_TASK_COMPLETED"],
        rule="I6",
        reason="command events are written only right after their WORKFLOW_TASK_COMPLETED",
    )


def test_command_event_after_the_command_run_ended() -> None:
    """I6: the command events are one contiguous run; a signal ends it."""
    h = History().started()
    completed = h.completing()
    h.activity(completed)
    h.add("WORKFLOW_EXECUTION_SIGNALED", {"signalName": "s"})
    marker = h.add(
        "MARKER_RECORDED",
        {"markerName": "m", "workflowTaskCompletedEventId": str(completed)},
    )
    check(
        h.doc(),
        event_id=marker,
        event_type="MARKER_RECORDED",
        entity="workflow task",
        key=2,
        state="not completing",
        allowed=["WORKFLOW_TASK_COMPLETED"],
        rule="I6",
    )


def test_command_event_quoting_another_completion() -> None:
    h = History().started()
    completed = h.completing()
    marker = h.add("MARKER_RECORDED", {"markerName": "m", "workflowTaskCompletedEventId": "3"})
    check(
        h.doc(),
        event_id=marker,
        event_type="MARKER_RECORDED",
        entity="workflow task",
        key=2,
        state=f"completed by {completed}",
        allowed=[],
        rule="I6",
        reason=f"workflowTaskCompletedEventId 3 is not the completion {completed} it follows",
    )


def test_event_between_a_started_workflow_task_and_its_close() -> None:
    h = History().started()
    scheduled = h.wft_scheduled()
    started = h.txn().wft_started(scheduled)
    signal = h.txn().add("WORKFLOW_EXECUTION_SIGNALED", {"signalName": "late"})
    h.txn().wft_completed(scheduled, started)
    check(
        h.doc(),
        event_id=signal,
        event_type="WORKFLOW_EXECUTION_SIGNALED",
        entity="workflow task",
        key=scheduled,
        state="STARTED",
        allowed=sorted(WFT_CLOSES),
        rule="I5",
        reason=f"workflow task {scheduled} started at event {started} must close before",
    )


def test_workflow_task_completion_quoting_the_wrong_start() -> None:
    h = History().started()
    scheduled = h.wft_scheduled()
    started = h.txn().wft_started(scheduled)
    completed = h.txn().wft_completed(scheduled, 1)
    check(
        h.doc(),
        event_id=completed,
        event_type="WORKFLOW_TASK_COMPLETED",
        entity="workflow task",
        key=scheduled,
        state="STARTED",
        allowed=list(WFT_CLOSES),
        rule="I5",
        reason=f"startedEventId 1 is not the started event {started}",
    )


def test_duplicate_activity_id_among_pending() -> None:
    h = History().started()
    completed = h.completing()
    first = h.activity(completed, "pay")
    second = h.activity(completed, "pay")
    check(
        h.doc(),
        event_id=second,
        event_type="ACTIVITY_TASK_SCHEDULED",
        entity="activity",
        key=second,
        state="ABSENT",
        allowed=["ACTIVITY_TASK_SCHEDULED"],
        rule="I17",
        reason=f"activity id 'pay' is still pending from event {first}",
    )


def test_activity_id_may_be_reused_once_closed() -> None:
    """I17's other half: after the first `pay` timed out the id is free again."""
    h = History().started()
    completed = h.completing()
    first = h.activity(completed, "pay")
    h.txn().add(
        "ACTIVITY_TASK_TIMED_OUT",
        {
            "failure": {
                "message": "activity ScheduleToStart timeout",
                "timeoutFailureInfo": {"timeoutType": "TIMEOUT_TYPE_SCHEDULE_TO_START"},
            },
            "scheduledEventId": str(first),
        },
    )
    scheduled = h.wft_scheduled()
    started = h.txn().wft_started(scheduled)
    again = h.txn().wft_completed(scheduled, started)
    h.activity(again, "pay")
    run = load_history(h.doc())
    assert dump_history(run) == h.doc()


def test_second_cancel_request() -> None:
    h = History().started()
    h.wft_scheduled()
    first = h.txn().add("WORKFLOW_EXECUTION_CANCEL_REQUESTED", {"identity": "client"})
    second = h.txn().add("WORKFLOW_EXECUTION_CANCEL_REQUESTED", {"identity": "client"})
    error = check(
        h.doc(),
        event_id=second,
        event_type="WORKFLOW_EXECUTION_CANCEL_REQUESTED",
        entity="run",
        key="",
        state="RUNNING",
        allowed=[
            "WORKFLOW_EXECUTION_COMPLETED",
            "WORKFLOW_EXECUTION_FAILED",
            "WORKFLOW_EXECUTION_TIMED_OUT",
            "WORKFLOW_EXECUTION_CANCELED",
            "WORKFLOW_EXECUTION_TERMINATED",
            "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
            "WORKFLOW_EXECUTION_PAUSED",
            "WORKFLOW_EXECUTION_CANCEL_REQUESTED",
            "WORKFLOW_EXECUTION_SIGNALED",
            "MARKER_RECORDED",
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
            "WORKFLOW_PROPERTIES_MODIFIED",
            "WORKFLOW_EXECUTION_OPTIONS_UPDATED",
            "WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED",
        ],
        rule="I17",
        reason=f"cancel was already requested by event {first}",
    )
    assert error.code == "illegal-transition"


@pytest.mark.parametrize(
    ("late_type", "late_attrs"),
    [
        ("WORKFLOW_EXECUTION_SIGNALED", {"signalName": "late"}),
        ("WORKFLOW_TASK_SCHEDULED", {"attempt": 1}),
        ("WORKFLOW_EXECUTION_TERMINATED", {"reason": "again"}),
        ("WORKFLOW_EXECUTION_COMPLETED", {"workflowTaskCompletedEventId": "4"}),
    ],
)
def test_anything_after_a_close_command(late_type: str, late_attrs: Json) -> None:
    h = History().started()
    completed = h.completing()
    h.add("WORKFLOW_EXECUTION_COMPLETED", {"workflowTaskCompletedEventId": str(completed)})
    late = h.txn().add(late_type, late_attrs)
    check(
        h.doc(),
        event_id=late,
        event_type=late_type,
        entity="run",
        key="",
        state="CLOSED",
        allowed=[],
        rule="I2",
        reason="nothing follows a close event",
    )


def test_close_command_not_last_in_its_completion() -> None:
    """I3: a close command is the last command; a command event after it is refused (I2)."""
    h = History().started()
    completed = h.completing()
    h.add("WORKFLOW_EXECUTION_COMPLETED", {"workflowTaskCompletedEventId": str(completed)})
    timer = h.timer(completed)
    check(
        h.doc(),
        event_id=timer,
        event_type="TIMER_STARTED",
        entity="run",
        key="",
        state="CLOSED",
        allowed=[],
        rule="I2",
    )


def test_update_rejected_is_never_written() -> None:
    h = History().started()
    completed = h.completing()
    rejected = h.add(
        "WORKFLOW_EXECUTION_UPDATE_REJECTED",
        {
            "protocolInstanceId": "u1",
            "rejectedRequestMessageId": "u1/request",
            "failure": {"message": "rejected by validator"},
        },
    )
    assert rejected == completed + 1
    check(
        h.doc(),
        event_id=rejected,
        event_type="WORKFLOW_EXECUTION_UPDATE_REJECTED",
        entity="run",
        key="",
        state="RUNNING",
        allowed=[],
        rule="§1",
        reason="the Temporal server never writes this event type",
    )


def test_update_completed_before_it_was_accepted() -> None:
    h = History().started()
    h.completing()
    done = h.add(
        "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
        {"meta": {"updateId": "u7"}, "outcome": {"success": {}}, "acceptedEventId": "3"},
    )
    check(
        h.doc(),
        event_id=done,
        event_type="WORKFLOW_EXECUTION_UPDATE_COMPLETED",
        entity="update",
        key="u7",
        state="ABSENT",
        allowed=["WORKFLOW_EXECUTION_UPDATE_ADMITTED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED"],
        rule="",
    )


def test_transient_attempt_without_a_failure() -> None:
    """I10: WORKFLOW_TASK_SCHEDULED with attempt > 1 only after a failed attempt."""
    h = History().started()
    scheduled = h.wft_scheduled(attempt=3)
    check(
        h.doc(),
        event_id=scheduled,
        event_type="WORKFLOW_TASK_SCHEDULED",
        entity="workflow task",
        key=0,
        state="ABSENT",
        allowed=["WORKFLOW_TASK_SCHEDULED"],
        rule="I4",
        reason="attempt 3 may only be scheduled after a failure",
    )


def test_transient_schedule_not_followed_by_its_start() -> None:
    """I10: the [SCHEDULED(attempt N), STARTED] batch of a transient task is written together."""
    h = History().started()
    scheduled = h.wft_scheduled()
    started = h.txn().wft_started(scheduled)
    h.txn().add(
        "WORKFLOW_TASK_TIMED_OUT",
        {
            "scheduledEventId": str(scheduled),
            "startedEventId": str(started),
            "timeoutType": "TIMEOUT_TYPE_START_TO_CLOSE",
        },
    )
    transient = h.txn().wft_scheduled(attempt=2)
    signal = h.add("WORKFLOW_EXECUTION_SIGNALED", {"signalName": "s"})
    check(
        h.doc(),
        event_id=signal,
        event_type="WORKFLOW_EXECUTION_SIGNALED",
        entity="workflow task",
        key=transient,
        state="SCHEDULED_T",
        allowed=["WORKFLOW_TASK_STARTED"],
        rule="I10",
    )


def test_history_not_starting_with_workflow_execution_started() -> None:
    h = History()
    h.txn().wft_scheduled()
    check(
        h.doc(),
        event_id=1,
        event_type="WORKFLOW_TASK_SCHEDULED",
        entity="run",
        key="",
        state="ABSENT",
        allowed=["WORKFLOW_EXECUTION_STARTED"],
        rule="I1",
        reason="a history starts with WORKFLOW_EXECUTION_STARTED",
    )


def test_event_id_gap_names_the_expected_id() -> None:
    h = History().started()
    h.wft_scheduled()
    h.events[1]["eventId"] = "3"
    error = refusal(h.doc())
    assert isinstance(error, EventOutOfSequence)
    assert error.event_id == 3
    assert error.event_type == "WORKFLOW_TASK_SCHEDULED"
    assert (error.entity, error.key, error.rule) == ("run", "event ids", "I1")
    assert error.allowed == ("event 2",)
    assert error.state == "at event 1"
    assert "expected event id 2, got 3" in str(error)
    assert error.code == "out-of-sequence"


def test_unknown_event_type_in_strict_mode() -> None:
    h = History().started()
    h.wft_scheduled()
    h.events[1]["eventType"] = "EVENT_TYPE_SOMETHING_NEW"
    error = refusal(h.doc())
    assert isinstance(error, UnknownEventType)
    assert (error.event_id, error.event_type) == (2, "EVENT_TYPE_SOMETHING_NEW")
    assert "event 2" in str(error) and "EVENT_TYPE_SOMETHING_NEW" in str(error)
    assert "workerMayIgnore" in str(error)


def test_collect_all_names_every_error_in_event_order() -> None:
    """Two independent problems: collect-all reports both, by event id, strict only the first."""
    h = History().started()
    completed = h.completing()
    scheduled = h.activity(completed)
    h.txn().add("TIMER_FIRED", {"timerId": "nope", "startedEventId": "2"})
    h.txn().add(
        "ACTIVITY_TASK_FAILED",
        {"scheduledEventId": str(scheduled), "startedEventId": "6", "failure": {"message": "x"}},
    )
    strict = refusal(h.doc())
    assert strict.event_id == 6
    collected = refusal(h.doc(), collect_all=True)
    assert isinstance(collected, InvalidHistory)
    assert [e.event_id for e in collected.errors] == [6, 7]
    assert [e.event_type for e in collected.errors] == ["TIMER_FIRED", "ACTIVITY_TASK_FAILED"]
    assert str(collected).startswith(str(strict))
    assert "(and 1 more)" in str(collected)
    assert collected.code == "invalid-history"


# --- pauses and transient attempts -----------------------------------------------------------

_PAUSE_CAUSE = "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED"


def test_no_workflow_task_is_scheduled_while_paused() -> None:
    h = History().started()
    scheduled = h.wft_scheduled()
    h.txn().add("WORKFLOW_TASK_FAILED", {"scheduledEventId": str(scheduled), "cause": _PAUSE_CAUSE})
    h.add("WORKFLOW_EXECUTION_PAUSED", {"identity": "ops"}, workerMayIgnore=True)
    h.txn().add("WORKFLOW_EXECUTION_SIGNALED", {"signalName": "s"})
    again = h.wft_scheduled()
    assert refusal(h.doc()).event_id == again


def test_pause_fails_a_scheduled_workflow_task_first() -> None:
    h = History().started()
    h.wft_scheduled()
    paused = h.txn().add("WORKFLOW_EXECUTION_PAUSED", {"identity": "ops"}, workerMayIgnore=True)
    assert refusal(h.doc()).event_id == paused


def test_a_transient_attempt_is_written_only_when_it_completes() -> None:
    h = History().started()
    scheduled = h.wft_scheduled()
    started = h.txn().wft_started(scheduled)
    cause = "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE"
    h.txn().add(
        "WORKFLOW_TASK_FAILED",
        {"scheduledEventId": str(scheduled), "startedEventId": str(started), "cause": cause},
    )
    transient = h.txn().wft_scheduled(attempt=2)
    transient_started = h.wft_started(transient)
    failed = h.add(
        "WORKFLOW_TASK_FAILED",
        {
            "scheduledEventId": str(transient),
            "startedEventId": str(transient_started),
            "cause": cause,
        },
    )
    assert refusal(h.doc()).event_id == failed
