"""`chain_links`: the runs this run continues from and continues to.

A workflow id's runs form chains: continue-as-new, workflow retries and cron runs start a new run
from the close of the previous one, and a reset forks a new run from a base run. The links are
in the STARTED attributes (`continued_execution_run_id` + `initiator`), the close event
(`new_execution_run_id`) and a reset run's RESET_WORKFLOW workflow-task failure (`base_run_id`).
A base run's history does not name the runs reset from it (I14).
"""

from __future__ import annotations

from dataclasses import dataclass

from runhistory.domain.enums import ContinueAsNewInitiator, WorkflowTaskFailedCause
from runhistory.domain.run import WorkflowRun
from runhistory.projections._common import E, attr

__all__ = ["ChainLink", "ChainLinks", "chain_links"]


@dataclass(frozen=True, slots=True)
class ChainLink:
    """Another run of the same workflow id: `reason` is continue_as_new, retry, cron or reset;
    `event_id` is the event of this run that names it."""

    run_id: str
    reason: str
    event_id: int


@dataclass(frozen=True, slots=True)
class ChainLinks:
    """`previous`: the runs this one continues from (a chain predecessor, and for a reset run
    its base run); `next`: the run that continues this one, if it closed into a new run."""

    run_id: str
    first_run_id: str
    previous: tuple[ChainLink, ...] = ()
    next: tuple[ChainLink, ...] = ()


_FROM = {
    ContinueAsNewInitiator.WORKFLOW: "continue_as_new",
    ContinueAsNewInitiator.RETRY: "retry",
    ContinueAsNewInitiator.CRON_SCHEDULE: "cron",
}


def chain_links(run: WorkflowRun) -> ChainLinks:
    """Read the chain links out of the run's history."""
    started = run.history[0]
    run_id = run.key.run_id if run.key else str(attr(started, "original_execution_run_id", ""))
    previous: list[ChainLink] = []
    continued = str(attr(started, "continued_execution_run_id", "") or "")
    if continued:
        reason = _FROM.get(attr(started, "initiator"), "continue_as_new")
        previous.append(ChainLink(continued, reason, started.event_id))
    previous += (
        ChainLink(event.attributes.base_run_id, "reset", event.event_id)
        for event in run.history
        if event.event_type == E.WORKFLOW_TASK_FAILED
        and attr(event, "cause") == WorkflowTaskFailedCause.RESET_WORKFLOW
        and attr(event, "new_run_id", "") == run_id
        and attr(event, "base_run_id", "")
    )
    following: list[ChainLink] = []
    close = run.close_event
    new_run = str(attr(close, "new_execution_run_id", "") or "") if close is not None else ""
    if close is not None and new_run:
        if close.event_type == E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            reason = "continue_as_new"
        elif close.event_type == E.WORKFLOW_EXECUTION_COMPLETED or attr(started, "cron_schedule"):
            reason = "cron"
        else:
            reason = "retry"  # FAILED / TIMED_OUT with retries left
        following.append(ChainLink(new_run, reason, close.event_id))
    first = str(attr(started, "first_execution_run_id", "") or run_id)
    return ChainLinks(run_id, first, tuple(previous), tuple(following))
