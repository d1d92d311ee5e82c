"""`audit`, `chain_links` and `findings` on recordings that exercise them, and on built runs for
what the recordings lack (principals, sticky timeouts, history limits)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from runhistory.adapters.history_json import load_history
from runhistory.domain import messages as m
from runhistory.domain.enums import EventType as E
from runhistory.domain.enums import TaskQueueKind, TimeoutType
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.projections import DEFAULT_CHECKS, Finding, audit, chain_links, findings
from runhistory.projections import checks as findings_module
from tests.conformance_data import CONFORMANCE
from tests.factory import make_event


def _final(scenario: str, name: str = "history.json") -> WorkflowRun:
    return load_history(CONFORMANCE / scenario / name)


def test_audit_names_who_paused_signalled_and_unpaused() -> None:
    entries = audit(_final("workflow_pause_unpause"))
    assert [(e.action, e.identity, e.reason) for e in entries if e.action != "signaled"] == [
        ("started", "oracle-client", ""),
        ("paused", "oracle-cli", "oracle pause"),
        ("unpaused", "oracle-cli", "oracle unpause"),
    ]
    signals = [e for e in entries if e.action == "signaled"]
    assert [e.event_id for e in signals] == [6, 11]
    assert all(e.request_id for e in signals)


def test_audit_of_a_reset_a_termination_and_updates() -> None:
    (reset,) = [e for e in audit(_final("workflow_reset")) if e.action == "reset"]
    assert reset.event_id == 4 and reset.reason == "root: oracle reset"
    assert "01a200f2-ae82-7bbd-9278-6ce75136d6d1" in reset.detail
    (terminated,) = [e for e in audit(_final("workflow_terminated")) if e.action == "terminated"]
    assert (terminated.identity, terminated.reason) == (
        "oracle-client",
        "terminated by user via frontend",
    )
    updates = [
        e for e in audit(_final("update_accepted_completed")) if e.action.startswith("update")
    ]
    assert [e.action for e in updates] == ["update_accepted"] * 2 + ["update_completed"] * 2 + [
        "update_accepted",
        "update_completed",
    ]
    assert all(e.identity == "oracle-client" for e in updates)
    assert "failed" in updates[-1].detail


def test_audit_of_requests_from_other_workflows_and_option_updates() -> None:
    entries = audit(_final("external_signal_and_cancel", "history-target.json"))
    cancel = next(e for e in entries if e.action == "cancel_requested")
    assert cancel.identity == "history-service" and cancel.detail.startswith("from workflow ")
    options = next(
        e for e in audit(_final("workflow_options_updated")) if e.action == "options_updated"
    )
    assert "versioning override set" in options.detail


def test_audit_reports_the_principal_when_recorded() -> None:
    started = make_event(
        E.WORKFLOW_EXECUTION_STARTED,
        1,
        identity="cli",
        workflow_id="w",
        original_execution_run_id="r",
    )
    fields = dict(started.__dict__)
    fields["principal"] = m.Principal(type="user", name="alice@example.com")
    fields["run_key"] = RunKey("w", "r")
    run = WorkflowRun.start(type(started)(**fields))  # type: ignore[arg-type]
    (entry,) = audit(run)
    assert (entry.action, entry.identity, entry.principal) == (
        "started",
        "cli",
        "user:alice@example.com",
    )


def test_chain_links_follow_continue_as_new_retry_and_reset() -> None:
    first = chain_links(_final("continue_as_new_chain", "history-run1.json"))
    second = chain_links(_final("continue_as_new_chain", "history-run2.json"))
    assert first.previous == ()
    assert [(link.run_id, link.reason) for link in first.next] == [
        (second.run_id, "continue_as_new")
    ]
    assert [(link.run_id, link.reason) for link in second.previous] == [
        (first.run_id, "continue_as_new")
    ]
    assert second.first_run_id == first.run_id
    retried = chain_links(_final("workflow_retry_policy", "history-run1.json"))
    retry = chain_links(_final("workflow_retry_policy"))
    assert [(link.run_id, link.reason) for link in retried.next] == [(retry.run_id, "retry")]
    assert [(link.run_id, link.reason) for link in retry.previous] == [(retried.run_id, "retry")]
    reset = chain_links(_final("workflow_reset"))
    base = chain_links(_final("workflow_reset", "history-original.json"))
    assert [(link.run_id, link.reason, link.event_id) for link in reset.previous] == [
        (base.run_id, "reset", 4)
    ]
    assert base.next == ()  # a base run's history does not name the runs reset from it


def _rules(items: Iterable[Finding]) -> list[str]:
    return [f.rule for f in items]


@pytest.mark.parametrize(
    ("scenario", "rule", "severity"),
    [
        ("wft_nondeterminism", "non-determinism", "error"),
        ("wft_failure_then_fixed", "workflow-task-failed", "warning"),
        ("wft_failure_then_fixed", "workflow-task-retried", "warning"),
        ("wft_timeout_start_to_close", "workflow-task-timed-out", "warning"),
        ("activity_timeout_heartbeat", "activity-timed-out", "warning"),
        ("activity_timeout_start_to_close", "activity-timed-out", "warning"),
        ("signal_unhandled_command", "unhandled-command", "warning"),
    ],
)
def test_findings_on_recordings(scenario: str, rule: str, severity: str) -> None:
    found = [f for f in findings(_final(scenario)) if f.rule == rule]
    assert found and all(f.severity == severity and f.event_ids and f.message for f in found)


def test_a_clean_run_has_no_findings() -> None:
    assert findings(_final("one_activity_eager")) == []


def test_the_refused_close_names_the_signal_that_arrived() -> None:
    (finding,) = [
        f for f in findings(_final("signal_unhandled_command")) if f.rule == "unhandled-command"
    ]
    assert finding.event_ids == (4, 5)  # the failed task and the buffered signal


def test_checks_are_pluggable() -> None:
    def every_signal(run: WorkflowRun) -> Iterable[Finding]:
        for event in run.history:
            if event.event_type == E.WORKFLOW_EXECUTION_SIGNALED:
                yield Finding("signal", "info", "a signal", (event.event_id,))

    run = _final("timers")
    assert _rules(findings(run, checks=[every_signal])) == ["signal"]
    assert findings(run, checks=()) == []
    assert findings(run) == findings(run, checks=DEFAULT_CHECKS)


def test_history_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _final("timers")  # 28 events
    monkeypatch.setattr(findings_module, "EVENTS_WARN", 20)
    assert _rules(findings_module.history_limits(run)) == ["history-count-warn"]
    monkeypatch.setattr(findings_module, "EVENTS_ERROR", 28)
    assert _rules(findings_module.history_limits(run)) == ["history-count-limit"]
    monkeypatch.setattr(findings_module, "SIZE_ERROR", 1000)
    assert "history-size-limit" in _rules(findings_module.history_limits(run))


def test_signals_after_the_last_workflow_task_of_a_terminated_run() -> None:
    q = m.TaskQueue(name="q")
    started = make_event(
        E.WORKFLOW_EXECUTION_STARTED,
        1,
        workflow_id="w",
        original_execution_run_id="r",
        task_queue=q,
    )
    fields = dict(started.__dict__)
    fields["run_key"] = RunKey("w", "r")
    run = WorkflowRun.start(type(started)(**fields))  # type: ignore[arg-type]
    for event in (
        make_event(E.WORKFLOW_TASK_SCHEDULED, 2, task_queue=q, attempt=1),
        make_event(E.WORKFLOW_TASK_STARTED, 3, scheduled_event_id=2),
        make_event(E.WORKFLOW_TASK_COMPLETED, 4, scheduled_event_id=2, started_event_id=3),
        make_event(E.WORKFLOW_EXECUTION_SIGNALED, 5, signal_name="late"),
        make_event(E.WORKFLOW_TASK_SCHEDULED, 6, task_queue=q, attempt=1),
        make_event(E.WORKFLOW_EXECUTION_TERMINATED, 7, reason="stop"),
    ):
        run.record(event)
    (finding,) = [f for f in findings(run) if f.rule == "signal-not-handled"]
    assert finding.event_ids == (5,)


def test_a_sticky_schedule_to_start_timeout() -> None:
    q = m.TaskQueue(name="q")
    sticky = m.TaskQueue(name="host-1", kind=TaskQueueKind.STICKY, normal_name="q")
    started = make_event(
        E.WORKFLOW_EXECUTION_STARTED,
        1,
        workflow_id="w",
        original_execution_run_id="r",
        task_queue=q,
    )
    fields = dict(started.__dict__)
    fields["run_key"] = RunKey("w", "r")
    run = WorkflowRun.start(type(started)(**fields))  # type: ignore[arg-type]
    for event in (
        make_event(E.WORKFLOW_TASK_SCHEDULED, 2, task_queue=q, attempt=1),
        make_event(E.WORKFLOW_TASK_STARTED, 3, scheduled_event_id=2),
        make_event(E.WORKFLOW_TASK_COMPLETED, 4, scheduled_event_id=2, started_event_id=3),
        make_event(E.WORKFLOW_EXECUTION_SIGNALED, 5, signal_name="s"),
        make_event(E.WORKFLOW_TASK_SCHEDULED, 6, task_queue=sticky, attempt=1),
        make_event(
            E.WORKFLOW_TASK_TIMED_OUT,
            7,
            scheduled_event_id=6,
            timeout_type=TimeoutType.SCHEDULE_TO_START,
        ),
    ):
        run.record(event)
    found = findings(run)
    assert _rules(found) == ["sticky-schedule-to-start-timeout"]
    assert found[0].event_ids == (7,)
