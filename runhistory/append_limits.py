"""Temporal's limits for `RunHistory.append`: the verdict an import of the whole run would give.

An append is judged as importing the longer history (the stored events, then the new ones)
would be judged by `load_history`: `field_checker` checks each new event's ids and payload
fields as it is recorded, and `check_history_limits` then checks the history length and size
of the whole run with `LimitChecker.finish`.

`finish` reads every event of the run. A run rebuilt from a snapshot holds only the events
after it, so before reading the rest back `check_history_limits` judges it from what is at
hand: its version bounds its event count, and the server's own running size totals in its last
stored events give its size. Only a run that these put near a limit is read whole.

Part of the service layer, beside `app.py`: it reads stored events and sizes them with the
projections, as the JSON adapter's limit checker does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import EventStore

from runhistory.adapters.history_json import gc_paused, limit_checker
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.limits import HistoryLimits, LimitChecker
from runhistory.domain.run import WorkflowRun, non_durable_tail
from runhistory.projections.size import checkpoints, event_size, varint_len

__all__ = ["check_history_limits", "field_checker"]

_SIZE_WINDOWS = (16, 128, 1024)
"""How many of a run's last stored events are read back, in turn, to find the server's running
history size in them before giving up and reading the whole run."""


def field_checker(limits: HistoryLimits) -> LimitChecker | None:
    """A checker of each event's ids and payload fields alone (the history limits are the whole
    run's, checked after), or None when neither limit is on."""
    if limits.max_id_length is None and limits.max_payload_bytes is None:
        return None
    return LimitChecker(dataclasses.replace(limits, max_events=None, max_history_bytes=None))


def check_history_limits(
    events: EventStore[UUID],
    run: WorkflowRun,
    stored: int,
    new: Sequence[HistoryEvent],
    limits: HistoryLimits,
) -> None:
    """The history length and size of `run` (its `stored` events, kept in `events`, then `new`)
    against `limits`, by `LimitChecker.finish`, as an import of the whole run checks them. A
    run rebuilt from a snapshot is read whole only when its version puts it past the count
    limit, or the server's size totals in its last events put it past half the size limit (the
    trust `load_history` gives the same totals), or it has no such totals. Raises
    `LimitExceeded`."""
    if limits.max_events is None and limits.max_history_bytes is None:
        return
    if not run.history_loaded and not _near_history_limits(events, run, stored, new, limits):
        return
    limit_checker(limits).finish(run)


def _near_history_limits(
    events: EventStore[UUID],
    run: WorkflowRun,
    stored: int,
    new: Sequence[HistoryEvent],
    limits: HistoryLimits,
) -> bool:
    # every stored event counted, durable or not: an upper bound of the durable count
    if limits.max_events is not None and stored + len(new) > limits.max_events:
        return True
    if limits.max_history_bytes is None:
        return False
    size = _recent_history_bytes(events, run.id, stored, new)
    return size is None or size > limits.max_history_bytes // 2


def _recent_history_bytes(
    events: EventStore[UUID], run_id: UUID, stored: int, new: Sequence[HistoryEvent]
) -> int | None:
    """The server's historySizeBytes of the run's `stored` events followed by `new`, from the
    server's running totals as `history_size_bytes` uses them: the last WORKFLOW_TASK_STARTED
    written alone holds the size of every event before it, so only the events from the one such
    event before it are read back and sized, and the span between the two must size to exactly
    the difference of their totals. None when the run's last stored events (see
    `_SIZE_WINDOWS`) hold no two such totals that agree."""
    stored_events: list[HistoryEvent] = []
    high = stored
    for window in _SIZE_WINDOWS:
        low = max(stored - window, 0)
        with gc_paused():  # only the events not read yet, before those that were
            older = events.get(run_id, gt=low, lte=high)
            stored_events[:0] = [e for e in older if isinstance(e, HistoryEvent)]
        high = low
        recent = [*stored_events, *new]
        recent = recent[: len(recent) - non_durable_tail(recent)]
        marks = checkpoints(recent)
        if len(marks) == 2:
            (last, last_total), (prev, prev_total) = marks
            if _framed_bytes(recent[prev:last]) != last_total - prev_total:
                return None
            return last_total + _framed_bytes(recent[last:])
        if low == 0:
            return None
    return None


def _framed_bytes(events: Sequence[HistoryEvent]) -> int:
    """What the events add to the server's historySizeBytes: each one's framed proto3 size."""
    total = 0
    for event in events:
        size = event_size(event)
        total += 1 + varint_len(size) + size
    return total
