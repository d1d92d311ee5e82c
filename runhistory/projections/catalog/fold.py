"""The per-event maintenance of a run's row, read straight off the stored canonical JSON.

Every history event is stored as canonical Temporal event JSON (`runhistory.adapters.mapper`),
so a row can be kept up to date without decoding events into domain objects: one `orjson`
parse and a few dictionary look-ups per event. What each column means follows the pure
projections exactly (`describe`, `pending(at_close=True)`, `chain_links`, `audit`); the tests
check every column against them on every recorded history.

Only audit events (a handful per run) are decoded, through `EventCodec`, so that their rows are
made by `audit_log`'s own per-event function and cannot drift from `audit()`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from runhistory.adapters.codec import EventCodec
from runhistory.adapters.mapper import RUN_KEY_FIELD
from runhistory.domain.schema import ATTRIBUTES
from runhistory.projections.audit_log import AuditEntry, _entry

__all__ = [
    "AUDIT_TYPES",
    "CLOSE_STATUS",
    "LIGHT_HANDLERS",
    "LIGHT_TYPES",
    "OPEN_STATUSES",
    "AuditRecord",
    "RunAcc",
    "apply_event",
    "apply_light",
    "apply_tail",
    "audit_record",
    "attributes_key",
    "parse_time",
    "tail_state",
]

_P = "EVENT_TYPE_"

CLOSE_STATUS = {
    _P + "WORKFLOW_EXECUTION_COMPLETED": "COMPLETED",
    _P + "WORKFLOW_EXECUTION_FAILED": "FAILED",
    _P + "WORKFLOW_EXECUTION_TIMED_OUT": "TIMED_OUT",
    _P + "WORKFLOW_EXECUTION_CANCELED": "CANCELED",
    _P + "WORKFLOW_EXECUTION_TERMINATED": "TERMINATED",
    _P + "WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "CONTINUED_AS_NEW",
}
OPEN_STATUSES = ("RUNNING", "PAUSED")

_ATTRS = {
    _P + kind.name: "".join(
        part if i == 0 else part.capitalize() for i, part in enumerate(name.split("_"))
    )
    for kind, (name, _, _) in ATTRIBUTES.items()
}


def attributes_key(event_type: str) -> str:
    """The JSON key of an event type's attributes (`activityTaskScheduledEventAttributes`)."""
    return _ATTRS.get(event_type, "")


_INITIATORS = {
    "CONTINUE_AS_NEW_INITIATOR_WORKFLOW": "continue_as_new",
    "CONTINUE_AS_NEW_INITIATOR_RETRY": "retry",
    "CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE": "cron",
}
_RESET_CAUSE = "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW"

# Events whose audit entry `audit_log._entry` may make (a workflow-task failure only if a reset).
AUDIT_TYPES = frozenset(
    _P + name
    for name in (
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
        "WORKFLOW_EXECUTION_UPDATE_ADMITTED",
        "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
        "WORKFLOW_EXECUTION_CANCEL_REQUESTED",
        "WORKFLOW_EXECUTION_TERMINATED",
        "WORKFLOW_TASK_FAILED",
        "WORKFLOW_EXECUTION_OPTIONS_UPDATED",
        "WORKFLOW_EXECUTION_PAUSED",
        "WORKFLOW_EXECUTION_UNPAUSED",
    )
)


def parse_time(value: Any) -> datetime | None:
    """A canonical `eventTime` (`2026-11-22T01:50:10.773338919Z`) as an aware UTC datetime,
    truncated to microseconds like the SQL store's `event_time`; datetimes pass through."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    text = str(value)
    try:
        head, _, frac = text.rstrip("Zz").partition(".")
        when = datetime.fromisoformat(head)
    except ValueError:
        return None
    micros = int((frac + "000000")[:6]) if frac.isdigit() else 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.replace(microsecond=micros).astimezone(UTC)


class RunAcc:
    """One run's row while a batch is applied: the `APPLIED_COLUMNS` plus bookkeeping."""

    __slots__ = (
        "cancel_requested",
        "close_time",
        "closed_now",
        "continued_from_reason",
        "continued_from_run_id",
        "cron_schedule",
        "first_run_id",
        "history_length",
        "last_event_id",
        "last_event_time",
        "last_task_id",
        "namespace",
        "next_reason",
        "next_run_id",
        "originator",
        "parent_run_id",
        "parent_workflow_id",
        "paused",
        "pending_activities",
        "pending_children",
        "pending_external_cancels",
        "pending_external_signals",
        "pending_nexus_operations",
        "pending_timers",
        "reset_from_run_id",
        "run_id",
        "start_time",
        "status",
        "tail_after_event_id",
        "tail_id",
        "tail_state",
        "task_queue",
        "updates",
        "wft_scheduled_id",
        "wft_state",
        "workflow_id",
        "workflow_type",
    )

    def __init__(self, originator: UUID, namespace: str, workflow_id: str, run_id: str) -> None:
        self.originator = originator
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type: str | None = None
        self.task_queue: str | None = None
        self.status = "RUNNING"
        self.start_time: Any = None
        self.close_time: Any = None
        self.history_length = 0
        self.last_event_id = 0
        self.last_task_id = 0
        self.last_event_time: Any = None
        self.pending_activities = 0
        self.pending_timers = 0
        self.pending_children = 0
        self.pending_nexus_operations = 0
        self.pending_external_signals = 0
        self.pending_external_cancels = 0
        self.cancel_requested = False
        self.parent_workflow_id: str | None = None
        self.parent_run_id: str | None = None
        self.cron_schedule: str | None = None
        self.first_run_id: str | None = None
        self.continued_from_run_id: str | None = None
        self.continued_from_reason: str | None = None
        self.reset_from_run_id: str | None = None
        self.next_run_id: str | None = None
        self.next_reason: str | None = None
        self.wft_scheduled_id: int | None = None
        self.wft_state: str | None = None
        self.paused = False
        self.updates: dict[str, bool] | None = None
        self.tail_id: UUID | None = None
        self.tail_after_event_id: int | None = None
        self.tail_state: str | None = None
        self.closed_now = False  # closed by an event of the batch being applied

    @property
    def closed(self) -> bool:
        return self.status not in OPEN_STATUSES

    @classmethod
    def from_row(cls, row: Any) -> RunAcc:
        """From a `<prefix>_runs` row (a mapping of its columns)."""
        acc = cls(row["originator_id"], row["namespace"], row["workflow_id"], row["run_id"])
        for name in _ROW_FIELDS:
            setattr(acc, name, row[name])
        acc.cancel_requested = bool(row["cancel_requested"])
        acc.paused = bool(row["paused"])
        text = row["updates_json"]
        acc.updates = orjson.loads(text) if text else None
        return acc

    def to_row(self) -> dict[str, Any]:
        """The `APPLIED_COLUMNS` (and the key), as written."""
        closed = self.closed
        updates = self.updates
        return {
            "originator_id": self.originator,
            "namespace": self.namespace,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": self.workflow_type,
            "task_queue": self.task_queue,
            "status": self.status,
            "start_time": parse_time(self.start_time),
            "close_time": parse_time(self.close_time),
            "history_length": self.history_length,
            "last_event_id": self.last_event_id,
            "last_task_id": self.last_task_id,
            "last_event_time": parse_time(self.last_event_time),
            "pending_activities": self.pending_activities,
            "pending_timers": self.pending_timers,
            "pending_children": self.pending_children,
            "pending_nexus_operations": self.pending_nexus_operations,
            "pending_updates": 0 if closed or not updates else sum(updates.values()),
            "pending_external_signals": self.pending_external_signals,
            "pending_external_cancels": self.pending_external_cancels,
            "pending_workflow_task": self.pending_workflow_task(),
            "cancel_requested": self.cancel_requested,
            "parent_workflow_id": self.parent_workflow_id,
            "parent_run_id": self.parent_run_id,
            "cron_schedule": self.cron_schedule,
            "first_run_id": self.first_run_id,
            "continued_from_run_id": self.continued_from_run_id,
            "continued_from_reason": self.continued_from_reason,
            "reset_from_run_id": self.reset_from_run_id,
            "next_run_id": self.next_run_id,
            "next_reason": self.next_reason,
            "wft_scheduled_id": self.wft_scheduled_id,
            "wft_state": self.wft_state,
            "paused": self.paused,
            "updates_json": orjson.dumps(updates, option=orjson.OPT_SORT_KEYS).decode()
            if updates
            else None,
            "tail_id": self.tail_id,
            "tail_after_event_id": self.tail_after_event_id,
            "tail_state": self.tail_state,
            "derive_pending": self.closed_now,
        }

    def pending_workflow_task(self) -> str | None:
        """`pending(run, at_close=True).workflow_task.state`: SCHEDULED, STARTED, TRANSIENT (a
        failed or timed-out task's next attempt, which writes no event) or None."""
        if (
            self.tail_state is not None
            and self.tail_after_event_id == self.last_event_id
            and not self.closed
        ):
            return self.tail_state  # the non-durable tail the application re-attaches (I13)
        state = self.wft_state
        if state in ("SCHEDULED", "STARTED"):
            return state
        if self.closed or self.paused or state is None or state in ("COMPLETED", "RESET"):
            return None
        return "TRANSIENT"


_ROW_FIELDS = tuple(
    name
    for name in RunAcc.__slots__
    if name
    not in (
        "originator",
        "namespace",
        "workflow_id",
        "run_id",
        "closed_now",
        "updates",
        "cancel_requested",
        "paused",
    )
)


def _started(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.start_time = doc.get("eventTime")
    acc.workflow_type = (a.get("workflowType") or {}).get("name")
    acc.task_queue = (a.get("taskQueue") or {}).get("name")
    parent = a.get("parentWorkflowExecution")
    if parent:
        acc.parent_workflow_id = parent.get("workflowId") or None
        acc.parent_run_id = parent.get("runId") or None
    acc.cron_schedule = a.get("cronSchedule") or None
    continued = a.get("continuedExecutionRunId")
    if continued:
        acc.continued_from_run_id = continued
        acc.continued_from_reason = _INITIATORS.get(a.get("initiator", ""), "continue_as_new")
    acc.first_run_id = a.get("firstExecutionRunId") or acc.run_id


def _closed(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    event_type = doc["eventType"]
    acc.status = CLOSE_STATUS[event_type]
    acc.close_time = doc.get("eventTime")
    acc.closed_now = True
    new_run = a.get("newExecutionRunId")
    if new_run:
        acc.next_run_id = new_run
        if event_type == _P + "WORKFLOW_EXECUTION_CONTINUED_AS_NEW":
            acc.next_reason = "continue_as_new"
        elif event_type == _P + "WORKFLOW_EXECUTION_COMPLETED" or acc.cron_schedule:
            acc.next_reason = "cron"
        else:
            acc.next_reason = "retry"


def _paused(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.paused = True
    if not acc.closed:
        acc.status = "PAUSED"


def _unpaused(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.paused = False
    if not acc.closed:
        acc.status = "RUNNING"


def _cancel_requested(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.cancel_requested = True


def _wft_scheduled(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.wft_scheduled_id = acc.last_event_id  # this event's (a light type: `doc` may be empty)
    acc.wft_state = "SCHEDULED"


def _wft_started(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    if acc.wft_scheduled_id == int(a.get("scheduledEventId", 0)):
        acc.wft_state = "STARTED"


def _wft_completed(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    if acc.wft_scheduled_id == int(a.get("scheduledEventId", 0)):
        acc.wft_state = "COMPLETED"


def _wft_timed_out(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    if acc.wft_scheduled_id == int(a.get("scheduledEventId", 0)):
        acc.wft_state = "FAILED"


def _wft_failed(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    reset = a.get("cause") == _RESET_CAUSE and a.get("newRunId", "") == acc.run_id
    if reset and a.get("baseRunId"):
        acc.reset_from_run_id = a["baseRunId"]
    if acc.wft_scheduled_id == int(a.get("scheduledEventId", 0)):
        acc.wft_state = "RESET" if reset else "FAILED"


def _update_open(key: str) -> Callable[[RunAcc, dict[str, Any], dict[str, Any]], None]:
    def handler(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
        if key == "accepted":
            update_id = a.get("protocolInstanceId") or _meta_id(a.get("acceptedRequest"))
        else:
            update_id = _meta_id(a.get("request"))
        updates = acc.updates
        if updates is None:
            updates = acc.updates = {}
        updates.setdefault(str(update_id), True)

    return handler


def _update_completed(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    updates = acc.updates
    if updates is None:
        updates = acc.updates = {}
    updates[str((a.get("meta") or {}).get("updateId", ""))] = False


def _meta_id(request: Any) -> str:
    if not isinstance(request, dict):
        return ""
    return str((request.get("meta") or {}).get("updateId", ""))


_COUNTERS: list[Callable[[RunAcc, dict[str, Any], dict[str, Any]], None]] = []


def _counter(name: str, step: int) -> Callable[[RunAcc, dict[str, Any], dict[str, Any]], None]:
    def handler(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
        setattr(acc, name, getattr(acc, name) + step)

    _COUNTERS.append(handler)
    return handler


def _activity_opened(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.pending_activities += 1


def _activity_closed(acc: RunAcc, doc: dict[str, Any], a: dict[str, Any]) -> None:
    acc.pending_activities -= 1


Handler = Callable[[RunAcc, dict[str, Any], dict[str, Any]], None]

_HANDLERS: dict[str, Handler] = {
    _P + "WORKFLOW_EXECUTION_STARTED": _started,
    **dict.fromkeys(CLOSE_STATUS, _closed),
    _P + "WORKFLOW_EXECUTION_PAUSED": _paused,
    _P + "WORKFLOW_EXECUTION_UNPAUSED": _unpaused,
    _P + "WORKFLOW_EXECUTION_CANCEL_REQUESTED": _cancel_requested,
    _P + "WORKFLOW_TASK_SCHEDULED": _wft_scheduled,
    _P + "WORKFLOW_TASK_STARTED": _wft_started,
    _P + "WORKFLOW_TASK_COMPLETED": _wft_completed,
    _P + "WORKFLOW_TASK_TIMED_OUT": _wft_timed_out,
    _P + "WORKFLOW_TASK_FAILED": _wft_failed,
    _P + "WORKFLOW_EXECUTION_UPDATE_ADMITTED": _update_open("admitted"),
    _P + "WORKFLOW_EXECUTION_UPDATE_ACCEPTED": _update_open("accepted"),
    _P + "WORKFLOW_EXECUTION_UPDATE_COMPLETED": _update_completed,
    _P + "ACTIVITY_TASK_SCHEDULED": _activity_opened,
    **dict.fromkeys(
        (
            _P + "ACTIVITY_TASK_COMPLETED",
            _P + "ACTIVITY_TASK_FAILED",
            _P + "ACTIVITY_TASK_TIMED_OUT",
            _P + "ACTIVITY_TASK_CANCELED",
        ),
        _activity_closed,
    ),
    _P + "TIMER_STARTED": _counter("pending_timers", 1),
    _P + "TIMER_FIRED": _counter("pending_timers", -1),
    _P + "TIMER_CANCELED": _counter("pending_timers", -1),
    _P + "START_CHILD_WORKFLOW_EXECUTION_INITIATED": _counter("pending_children", 1),
    **dict.fromkeys(
        (
            _P + "START_CHILD_WORKFLOW_EXECUTION_FAILED",
            _P + "CHILD_WORKFLOW_EXECUTION_COMPLETED",
            _P + "CHILD_WORKFLOW_EXECUTION_FAILED",
            _P + "CHILD_WORKFLOW_EXECUTION_CANCELED",
            _P + "CHILD_WORKFLOW_EXECUTION_TIMED_OUT",
            _P + "CHILD_WORKFLOW_EXECUTION_TERMINATED",
        ),
        _counter("pending_children", -1),
    ),
    _P + "NEXUS_OPERATION_SCHEDULED": _counter("pending_nexus_operations", 1),
    **dict.fromkeys(
        (
            _P + "NEXUS_OPERATION_COMPLETED",
            _P + "NEXUS_OPERATION_FAILED",
            _P + "NEXUS_OPERATION_CANCELED",
            _P + "NEXUS_OPERATION_TIMED_OUT",
        ),
        _counter("pending_nexus_operations", -1),
    ),
    _P + "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED": _counter("pending_external_signals", 1),
    **dict.fromkeys(
        (
            _P + "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED",
            _P + "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
        ),
        _counter("pending_external_signals", -1),
    ),
    _P + "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED": _counter(
        "pending_external_cancels", 1
    ),
    **dict.fromkeys(
        (
            _P + "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED",
            _P + "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
        ),
        _counter("pending_external_cancels", -1),
    ),
}
_EMPTY: dict[str, Any] = {}

# Event types folded from their id and type alone, that make no audit entry: the reader may
# hand them over without parsing their JSON (see `apply_event`).
LIGHT_TYPES = frozenset(
    _P + kind.name
    for kind in ATTRIBUTES
    if _P + kind.name not in AUDIT_TYPES
    and _HANDLERS.get(_P + kind.name)
    in (
        None,
        _activity_opened,
        _activity_closed,
        _wft_scheduled,
        *_COUNTERS,
    )
)


# The handlers of the light types, by the type's name without its prefix (the SQL store's
# `event_type` column); None for a type the row only counts.
LIGHT_HANDLERS: dict[str, Handler | None] = {
    name[len(_P) :]: _HANDLERS.get(name) for name in LIGHT_TYPES
}


def apply_light(acc: RunAcc, event_id: int, handler: Handler | None) -> None:
    """Fold one event of a `LIGHT_TYPES` type known only by its id and its type's handler
    (`LIGHT_HANDLERS`), without its JSON. Its task id and time are not known: a later event of
    the run must follow in the same batch (it sets them)."""
    acc.last_event_id = acc.history_length = event_id
    acc.last_task_id = 0
    acc.last_event_time = None
    if handler is not None:
        handler(acc, _EMPTY, _EMPTY)


def apply_event(acc: RunAcc, doc: dict[str, Any]) -> None:
    """Fold one stored history event (its canonical JSON) into the run's row. An event of a
    `LIGHT_TYPES` type may come as just `{"eventId", "eventType"}` when a later event of the
    run follows in the same batch (it sets the task id and time); see also `apply_light`."""
    event_id = int(doc["eventId"])
    acc.last_event_id = acc.history_length = event_id
    acc.last_task_id = int(doc.get("taskId", 0))
    acc.last_event_time = doc.get("eventTime")
    event_type = doc.get("eventType", "")
    handler = _HANDLERS.get(event_type)
    if handler is not None:
        attrs = doc.get(_ATTRS.get(event_type, ""))
        handler(acc, doc, attrs if isinstance(attrs, dict) else _EMPTY)


def tail_state(events: list[dict[str, Any]]) -> str | None:
    """What a non-durable tail shows of the next workflow task: STARTED, SCHEDULED or None."""
    types = {event.get("eventType") for event in events if isinstance(event, dict)}
    if _P + "WORKFLOW_TASK_STARTED" in types:
        return "STARTED"
    if _P + "WORKFLOW_TASK_SCHEDULED" in types:
        return "SCHEDULED"
    return None


def apply_tail(acc: RunAcc, tail_id: UUID, after_event_id: int, events_json: str) -> None:
    """A new or replaced non-durable tail of the run (`runhistory.tail.RunTail`)."""
    acc.tail_id = tail_id
    acc.tail_after_event_id = after_event_id
    try:
        events = orjson.loads(events_json)
    except orjson.JSONDecodeError:
        events = []
    acc.tail_state = tail_state(events if isinstance(events, list) else [])


class AuditRecord:
    """Turns audit events into `<prefix>_audit` rows with `audit_log`'s own `_entry`."""

    def __init__(self) -> None:
        self._codec = EventCodec(strict=False)

    def entry(self, acc: RunAcc, doc: dict[str, Any]) -> AuditEntry | None:
        event_type = doc.get("eventType")
        if event_type not in AUDIT_TYPES:
            return None
        if event_type == _P + "WORKFLOW_TASK_FAILED":
            attrs = doc.get("workflowTaskFailedEventAttributes") or {}
            if attrs.get("cause") != _RESET_CAUSE:
                return None
        if event_type == _STARTED:
            doc = _slim_started(doc)
        elif RUN_KEY_FIELD in doc:
            doc = {k: v for k, v in doc.items() if k != RUN_KEY_FIELD}
        return _entry(self._codec.decode(doc, originator_id=acc.originator))


_STARTED = _P + "WORKFLOW_EXECUTION_STARTED"
_STARTED_ATTRS = "workflowExecutionStartedEventAttributes"
# What `audit_log._entry` reads of a started event's attributes (tests/test_catalog.py checks
# every audit row against `audit()` on every recorded history, so a new read shows there).
_STARTED_AUDITED = (
    "identity",
    "parentWorkflowExecution",
    "continuedExecutionRunId",
    "initiator",
    "cronSchedule",
)


def _slim_started(doc: dict[str, Any]) -> dict[str, Any]:
    """A started event with only the attributes its audit entry reads: the rest (input, memo,
    search attributes, headers, ...) makes it the costliest event of most runs to decode."""
    slim = {k: v for k, v in doc.items() if k != RUN_KEY_FIELD and k != _STARTED_ATTRS}
    attrs = doc.get(_STARTED_ATTRS)
    if isinstance(attrs, dict):
        slim[_STARTED_ATTRS] = {k: attrs[k] for k in _STARTED_AUDITED if k in attrs}
    return slim


def audit_record(acc: RunAcc, entry: AuditEntry) -> dict[str, Any]:
    """The `<prefix>_audit` row of one entry."""
    return {
        "originator_id": acc.originator,
        "event_id": entry.event_id,
        "namespace": acc.namespace,
        "workflow_id": acc.workflow_id,
        "run_id": acc.run_id,
        "event_time": entry.time.to_datetime() if entry.time is not None else None,
        "action": entry.action,
        "identity": entry.identity or "",
        "principal": entry.principal or "",
        "reason": entry.reason or "",
        "request_id": entry.request_id or "",
        "detail": entry.detail or "",
    }
