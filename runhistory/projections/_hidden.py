"""The transactions that wrote no event of their own (semantics §3.4 step 4 and §3.5), for
`state_transitions`: buffered arrivals, activity starts, retries and heartbeats, transient
workflow-task attempts, signal-external clean-ups and completion callbacks."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from runhistory.domain.enums import TimeoutType, WorkflowTaskFailedCause
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.transitions import COMMAND_EVENTS, WFT_CLOSE_EVENTS
from runhistory.projections._common import E, attr

__all__ = [
    "ACTIVITY_TERMINAL",
    "EAGER_GAP_NANOS",
    "Kinds",
    "Tally",
    "activity_txns",
    "buffered_arrivals",
    "callback_txns",
    "external_signal_txns",
    "heartbeat_estimate",
    "nexus_txns",
    "workflow_task_txns",
]

# every type's events (a defaultdict: an empty list for a type the run has none of)
Kinds = defaultdict[E, list[HistoryEvent]]

EAGER_GAP_NANOS = 2_000_000
"""An attempt-1 ACTIVITY_TASK_STARTED this close to its SCHEDULED, from the worker that completed
the scheduling workflow task, is taken as an eager start (§3.5 item 3: 0.03-0.5 ms observed for
eager starts, 5 ms and more through matching)."""

_SAME_TIMER_TASK_NANOS = 1_000_000
_MAX_THROTTLE_NANOS = 60_000_000_000  # SDKs' max heartbeat throttle interval

ACTIVITY_TERMINAL = frozenset(
    {
        E.ACTIVITY_TASK_COMPLETED,
        E.ACTIVITY_TASK_FAILED,
        E.ACTIVITY_TASK_TIMED_OUT,
        E.ACTIVITY_TASK_CANCELED,
    }
)
_TRAILING = frozenset(
    {
        E.WORKFLOW_TASK_SCHEDULED,
        E.WORKFLOW_TASK_STARTED,
        E.WORKFLOW_EXECUTION_TERMINATED,
        E.WORKFLOW_EXECUTION_TIMED_OUT,
    }
)
_TIMER_TASK_EVENTS = frozenset({E.TIMER_FIRED, E.ACTIVITY_TASK_TIMED_OUT})


@dataclass
class Tally:
    value: int = 0
    lower: int = 0
    upper: int = 0
    unbounded: bool = False
    reasons: list[str] = field(default_factory=list)

    def add(self, n: int) -> None:
        self.value += n
        self.lower += n
        self.upper += n

    def ambiguous(self, value: int, lower: int, upper: int, reason: str) -> None:
        self.value += value
        self.lower += lower
        self.upper += upper
        self.why(reason)

    def unknown(self, reason: str) -> None:
        self.unbounded = True
        self.why(reason)

    def why(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)


def heartbeat_estimate(
    heartbeat_timeout_nanos: int, run_nanos: int, *, timed_out: bool = False
) -> int:
    """Transactions an attempt that heartbeats throughout `run_nanos` costs: SDKs send the first
    heartbeat at once and then at most one per 0.8 x heartbeat timeout (capped at 60 s), and the
    server's heartbeat timer re-arms (one txn) each time it fires on a live activity (§3.5 1-2).

    With `timed_out` (a HEARTBEAT timeout ended the attempt) the heartbeats stopped between two
    and one heartbeat timeouts before the end: the shortest such heartbeating phase is used."""
    hbt = heartbeat_timeout_nanos
    if hbt <= 0 or run_nanos <= 0:
        return 0
    interval = min(hbt * 4 // 5, _MAX_THROTTLE_NANOS)
    if timed_out:
        if run_nanos < hbt * 3 // 2:
            return 0  # timed out after one timeout: it never heartbeated
        rearms = (run_nanos - hbt + hbt // 2) // hbt  # timer fires that found it alive
        return int(max(run_nanos - 2 * hbt, 0) // interval + 1 + rearms)
    beats = run_nanos // interval + 1
    rearms = 0 if run_nanos <= hbt else (run_nanos - hbt) // interval + 1
    return int(beats + rearms)


def _event(run: WorkflowRun, event_id: int) -> HistoryEvent | None:
    """Event by id: ids are contiguous from 1 (I1), so it is an index."""
    history = run.history
    if 0 < event_id <= len(history):
        event = history[event_id - 1]
        if event.event_id == event_id:
            return event
    return None


def buffered_arrivals(group: Sequence[HistoryEvent], tally: Tally) -> None:
    """4a: events buffered while a workflow task was in flight, flushed by the txn closing it;
    each arrival was its own transaction."""
    i = 0
    if (
        len(group) >= 3
        and group[0].event_type == E.WORKFLOW_TASK_SCHEDULED
        and group[1].event_type == E.WORKFLOW_TASK_STARTED
    ):
        i = 2  # the [SCHEDULED, STARTED] batch of a transient or speculative completion
    close = group[i]
    if close.event_type not in WFT_CLOSE_EVENTS or not attr(close, "started_event_id", 0):
        return
    if attr(close, "cause") == WorkflowTaskFailedCause.RESET_WORKFLOW:
        return  # reapplied events belong to the reset txn itself
    j = i + 1
    if close.event_type == E.WORKFLOW_TASK_COMPLETED:
        while j < len(group) and group[j].event_type in COMMAND_EVENTS:
            j += 1
    end = len(group)
    while end > j and group[end - 1].event_type in _TRAILING:
        end -= 1
    arrivals = group[j:end]
    kinds = [event.event_type for event in arrivals]
    # STARTED is written with its terminal event, TIME_SKIPPING_TRANSITIONED by the same txn
    count = len(kinds) - kinds.count(E.ACTIVITY_TASK_STARTED) - kinds.count(_SKIP)
    if E.ACTIVITY_TASK_CANCELED in kinds:
        requests = {e.event_id for e in group if e.event_type == E.ACTIVITY_TASK_CANCEL_REQUESTED}
        count -= sum(  # the server's own same-txn cancel of a not-started activity
            1
            for e in arrivals
            if e.event_type == E.ACTIVITY_TASK_CANCELED
            and not e.attributes.started_event_id
            and e.attributes.latest_cancel_requested_event_id in requests
        )
    if E.TIMER_FIRED in kinds or E.ACTIVITY_TASK_TIMED_OUT in kinds:
        count -= _fired_together(arrivals, tally)
    tally.add(count)


_SKIP = E.WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED
_TOGETHER = "timers or activity timeouts fired together may share one txn"


def _fired_together(arrivals: Sequence[HistoryEvent], tally: Tally) -> int:
    """Timers (or activity timeouts) fired back to back may come from one timer task, one txn
    (§3.5 item 8): the best estimate merges those within a millisecond; the lower bound merges
    all. Returns how many arrivals were merged away from the plain count."""
    merged = 0
    counted = [e for e in arrivals if e.event_type != E.ACTIVITY_TASK_STARTED]
    for prev, event in itertools.pairwise(counted):
        if event.event_type in _TIMER_TASK_EVENTS and prev.event_type == event.event_type:
            gap = _gap(prev, event)
            close = gap is not None and abs(gap) < _SAME_TIMER_TASK_NANOS
            tally.ambiguous(0 if close else 1, 0, 1, _TOGETHER)
            merged += 1
    return merged


def _gap(a: HistoryEvent, b: HistoryEvent) -> int | None:
    ta, tb = a.event_time, b.event_time
    if ta is None or tb is None:
        return None
    return (tb.seconds - ta.seconds) * 1_000_000_000 + tb.nanos - ta.nanos


def activity_txns(run: WorkflowRun, kinds: Kinds, tally: Tally) -> None:
    """4b: one RecordActivityTaskStarted txn per attempt, one fail/timeout txn per retry, minus an
    eager first start; plus the estimated heartbeats."""
    history = run.history
    size = len(history)
    workflow_queue = _queue_name(attr(history[0], "task_queue"))
    terminals: dict[int, HistoryEvent] = {}
    for kind in ACTIVITY_TERMINAL:
        for event in kinds[kind]:
            terminals[event.attributes.scheduled_event_id] = event
    for event in kinds[E.ACTIVITY_TASK_TIMED_OUT]:
        if not event.attributes.started_event_id:
            tally.unknown("an activity timed out unstarted: its earlier attempts are unknown")
    starts = eager = maybe_eager = beats = retried = 0
    identities: dict[int, str] = {}  # WORKFLOW_TASK_COMPLETED id -> identity
    for event in kinds[E.ACTIVITY_TASK_STARTED]:
        attributes = event.attributes
        scheduled_id = attributes.scheduled_event_id
        attempt = attributes.attempt if attributes.attempt > 1 else 1
        starts += attempt + attempt - 1
        retried += attempt > 1
        scheduled = history[scheduled_id - 1] if 0 < scheduled_id <= size else None
        if scheduled is None or scheduled.event_type != E.ACTIVITY_TASK_SCHEDULED:
            continue
        details = scheduled.attributes
        completed_id = details.workflow_task_completed_event_id
        identity = identities.get(completed_id)
        if identity is None:
            completed = history[completed_id - 1] if 0 < completed_id <= size else None
            identity = identities[completed_id] = str(attr(completed, "identity", ""))
        if identity and identity == attributes.identity:  # the same worker: eager is possible
            maybe_eager += 1
            if attempt == 1:
                gap = _gap(scheduled, event)
                eager += gap is not None and 0 <= gap < EAGER_GAP_NANOS
            else:
                eager += _queue_name(details.task_queue) == workflow_queue
        hbt = details.heartbeat_timeout
        if hbt is not None and (hbt.seconds > 0 or hbt.nanos > 0):
            terminal = terminals.get(scheduled_id)
            if terminal is not None:
                run_nanos = _gap(event, terminal) or 0
                timed_out = _heartbeat_timeout(terminal)
                beats += heartbeat_estimate(hbt.total_nanos, run_nanos, timed_out=timed_out)
    tally.add(starts)
    if maybe_eager:
        tally.ambiguous(-eager, -maybe_eager, 0, _EAGER)
    if beats:
        tally.ambiguous(beats, 0, 0, "heartbeats leave no trace")
    if retried:
        tally.why("earlier activity attempts are known only by count")
    if kinds[E.ACTIVITY_TASK_STARTED]:
        tally.unknown("heartbeats and activity pause/reset/option updates leave no trace")
    for event in kinds[E.ACTIVITY_TASK_SCHEDULED]:
        if event.event_id not in terminals:
            tally.unknown("a pending activity may have started and heartbeated (invisible, I11)")
            break


_EAGER = "a first activity attempt may or may not have been started eagerly (§3.5 item 3)"


def _heartbeat_timeout(terminal: HistoryEvent) -> bool:
    if terminal.event_type != E.ACTIVITY_TASK_TIMED_OUT:
        return False
    info = getattr(attr(terminal, "failure"), "timeout_failure_info", None)
    return getattr(info, "timeout_type", None) == TimeoutType.HEARTBEAT


def _queue_name(queue: object) -> str:
    if queue is None:
        return ""
    return str(getattr(queue, "normal_name", "") or getattr(queue, "name", ""))


def workflow_task_txns(
    run: WorkflowRun,
    kinds: Kinds,
    tail: Sequence[HistoryEvent],
    closed: bool,
    tally: Tally,
) -> None:
    """4c: transient workflow-task attempts: each earlier attempt is a start and a failure txn,
    the last one a start, none of which wrote an event (I10)."""
    failures = [*kinds[E.WORKFLOW_TASK_FAILED], *kinds[E.WORKFLOW_TASK_TIMED_OUT]]
    owed_after = {
        e.event_id for e in failures if attr(e, "cause") != WorkflowTaskFailedCause.RESET_WORKFLOW
    }
    last_failure = max(owed_after, default=0)
    last_scheduled = 0
    for event in kinds[E.WORKFLOW_TASK_SCHEDULED]:
        last_scheduled = event.event_id
        attempt = event.attributes.attempt
        if attempt > 1:
            tally.add(2 * (attempt - 2) + 1)
        elif owed_after and _opens_txn(run, event) and _owed_before(run, event, owed_after):
            tally.unknown("transient workflow-task attempts vanish when new events arrive")
    if tail:
        attempt = max(int(attr(tail[0], "attempt", 1) or 1), 1)
        is_started = any(e.event_type == E.WORKFLOW_TASK_STARTED for e in tail)
        if attempt > 1:
            tally.add(2 * (attempt - 2) + (1 if is_started else 0))
    elif last_failure > last_scheduled and not closed:
        tally.unknown("a transient workflow task may be retrying with no event (I10)")
    durable = len(run.history) - len(tail)
    last = run.history[durable - 1] if durable else None
    if not closed and last is not None and last.event_type == E.WORKFLOW_TASK_STARTED:
        tally.unknown("events buffered behind the in-flight workflow task are not in history yet")


def _opens_txn(run: WorkflowRun, event: HistoryEvent) -> bool:
    previous = _event(run, event.event_id - 1)
    return previous is None or previous.task_id + 1 != event.task_id


def _owed_before(run: WorkflowRun, event: HistoryEvent, owed_after: set[int]) -> bool:
    """Whether the last workflow-task event before this schedule was a failure or timeout."""
    for event_id in range(event.event_id - 1, 0, -1):
        previous = _event(run, event_id)
        if previous is None:
            return False
        if previous.event_type in _WFT_EVENTS:
            return event_id in owed_after
    return False


_WFT_EVENTS = WFT_CLOSE_EVENTS | {E.WORKFLOW_TASK_SCHEDULED, E.WORKFLOW_TASK_STARTED}


def nexus_txns(kinds: Kinds, tally: Tally) -> None:
    """A Nexus operation's failed start (and cancel) attempts are transactions with no event
    (BACKING_OFF, §5.3): any operation leaves the count open-ended."""
    if kinds[E.NEXUS_OPERATION_SCHEDULED]:
        tally.unknown("Nexus operation attempts that failed and were retried leave no trace")


def external_signal_txns(kinds: Kinds, tally: Tally) -> None:
    """4d: a signal from another workflow costs the receiver one more txn (its request-id
    clean-up), unless the run closed before it ran."""
    for event in kinds[E.WORKFLOW_EXECUTION_SIGNALED]:
        if attr(event, "external_workflow_execution"):
            tally.ambiguous(
                1, 0, 1, "a signal-external's clean-up txn is skipped if the run closed first"
            )


def callback_txns(run: WorkflowRun, kinds: Kinds, tally: Tally) -> None:
    """A completion callback is invoked after close: one more txn each (CALLBACK_STATE_*)."""
    count = len(attr(run.history[0], "completion_callbacks", ()) or ())
    for event in kinds[E.WORKFLOW_EXECUTION_OPTIONS_UPDATED]:
        count += len(attr(event, "attached_completion_callbacks", ()) or ())
    if count:
        tally.ambiguous(count, 0, count, "completion callbacks run after close with no event")
