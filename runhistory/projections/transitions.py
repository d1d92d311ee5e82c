"""`state_transitions`: the server's `stateTransitionCount` as far as a history can tell.

The server adds one per persisted transaction on the run's mutable state, not one per event
(semantics §3). Transactions that wrote events are recovered from `task_id` runs (Rule T, §3.3);
the ones that wrote none (buffered arrivals, activity starts and retries, transient workflow-task
attempts, signal-external clean-up, a reset's rebuild) are added from what the events imply
(§3.4). What history cannot know (heartbeats, eager activity starts, resets after close, …, §3.5)
widens `[lower, upper]` and is named in `reasons`. See docs/state-transitions.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from runhistory.domain.enums import WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.transitions import COMMAND_EVENTS, WFT_CLOSE_EVENTS
from runhistory.projections._common import E, attr
from runhistory.projections._hidden import (
    ACTIVITY_TERMINAL,
    EAGER_GAP_NANOS,
    Kinds,
    Tally,
    activity_txns,
    buffered_arrivals,
    callback_txns,
    external_signal_txns,
    heartbeat_estimate,
    nexus_txns,
    workflow_task_txns,
)
from runhistory.projections._index import Index, index

__all__ = [
    "EAGER_GAP_NANOS",
    "StateTransitions",
    "heartbeat_estimate",
    "state_transitions",
    "transaction_groups",
    "transitions_from",
]


@dataclass(frozen=True, slots=True)
class StateTransitions:
    """The derived count: `value` is the best estimate; the server's count lies in
    `[lower, upper]` (`upper` None = unbounded); `exact` only when history leaves nothing
    unknown, else `reasons` says why. `server` is the server's own count when one was given."""

    value: int
    exact: bool
    lower: int
    upper: int | None
    reasons: tuple[str, ...] = ()
    server: int | None = None
    visible: int = 0  # transactions that wrote at least one event


def transaction_groups(events: Sequence[HistoryEvent]) -> list[list[HistoryEvent]]:
    """Split durable events into transactions by Rule T: consecutive task ids = one txn."""
    groups: list[list[HistoryEvent]] = []
    prev = None
    for event in events:
        if prev is None or event.task_id != prev + 1:
            groups.append([])
        groups[-1].append(event)
        prev = event.task_id
    return groups


def state_transitions(run: WorkflowRun, *, server_count: int | None = None) -> StateTransitions:
    """Derive the run's state-transition count (semantics §3.4) with its bounds (§3.5)."""
    return transitions_from(index(run), server_count=server_count)


def transitions_from(idx: Index, *, server_count: int | None = None) -> StateTransitions:
    """`state_transitions` from a shared index."""
    run = idx.run
    tally = Tally()
    groups = idx.groups
    if not idx.rule_t:
        tally.unknown("task ids do not mark transactions (old server, Cadence or imported)")
        groups = _semantic_groups(idx.events)
    kinds: Kinds = idx.by_type
    reset_at = _reset_group(groups, kinds, run.key.run_id if run.key else "")
    if reset_at is None:
        scan = groups
        tally.add(len(groups))
    else:
        scan = groups[reset_at + 1 :]
        tally.add(2 + len(scan))  # rebuild snapshot + reset txn, then the run's own txns
        first_id = scan[0][0].event_id if scan else len(idx.events) + 1
        kinds = defaultdict(
            list,
            {kind: [e for e in bucket if e.event_id >= first_id] for kind, bucket in kinds.items()},
        )
    visible = tally.value
    closed = run.is_closed
    for group in scan:
        if group[0].event_type in _MAY_CLOSE_WFT:
            buffered_arrivals(group, tally)
    activity_txns(run, kinds, tally)
    workflow_task_txns(run, kinds, idx.tail, closed, tally)
    external_signal_txns(kinds, tally)
    nexus_txns(kinds, tally)
    if closed:
        callback_txns(run, kinds, tally)
        tally.unknown(
            "a closed run may still be reset: each reset adds a transaction with no event"
        )
    value, lower = tally.value, tally.lower
    if not idx.rule_t:
        lower = min(lower, _semantic_lower(scan))
    upper = None if tally.unbounded else tally.upper
    exact = not tally.reasons and lower == value == upper
    return StateTransitions(
        value=value,
        exact=exact,
        lower=lower,
        upper=upper,
        reasons=tuple(tally.reasons),
        server=server_count,
        visible=visible,
    )


_MAY_CLOSE_WFT = WFT_CLOSE_EVENTS | {E.WORKFLOW_TASK_SCHEDULED}


def _semantic_groups(events: Sequence[HistoryEvent]) -> list[list[HistoryEvent]]:
    """Without Rule T: a new txn at every event that cannot share the previous one's (I6, I7).
    A guess: the count built on it is never called exact, and its lower bound is taken from
    workflow-task closes instead (see `_semantic_lower`)."""
    groups: list[list[HistoryEvent]] = []
    follows = {E.WORKFLOW_TASK_SCHEDULED, *COMMAND_EVENTS, *ACTIVITY_TERMINAL}
    batch = False  # inside a transient completion batch [SCHEDULED(attempt>1), STARTED, close]
    for i, event in enumerate(events):
        kind = event.event_type
        prev = events[i - 1].event_type if i else None
        if kind == E.WORKFLOW_TASK_STARTED and prev == E.WORKFLOW_TASK_SCHEDULED:
            batch = int(attr(events[i - 1], "attempt", 1) or 1) > 1
            joins = batch
        elif kind in WFT_CLOSE_EVENTS and prev == E.WORKFLOW_TASK_STARTED:
            joins, batch = batch, False
        else:
            joins = prev is not None and (
                kind in follows or (prev in WFT_CLOSE_EVENTS and kind != E.WORKFLOW_TASK_STARTED)
            )
        if not joins:
            groups.append([])
        groups[-1].append(event)
    return groups


def _semantic_lower(scan: Sequence[Sequence[HistoryEvent]]) -> int:
    """A sure minimum without Rule T: the start, and one txn per workflow-task close (a txn
    closes at most one workflow task)."""
    closes = sum(1 for group in scan for e in group if e.event_type in WFT_CLOSE_EVENTS)
    return 1 + closes


def _reset_group(groups: Sequence[Sequence[HistoryEvent]], kinds: Kinds, run_id: str) -> int | None:
    """Index of the group holding this run's RESET_WORKFLOW failure (I14), if it is a reset run."""
    reset_id = 0
    for event in kinds[E.WORKFLOW_TASK_FAILED]:
        if attr(event, "cause") == WorkflowTaskFailedCause.RESET_WORKFLOW and (
            not run_id or attr(event, "new_run_id") == run_id
        ):
            reset_id = event.event_id
    if not reset_id:
        return None
    for position, group in enumerate(groups):
        if group[0].event_id <= reset_id <= group[-1].event_id:
            return position
    return None
