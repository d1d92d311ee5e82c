"""Every error runhistory raises about a history has one root, `HistoryError`.

    HistoryError
    ├── MalformedHistory         the input is not a Temporal history (bad JSON, wrong types)
    ├── UnknownEventType         an event type this API version does not know, not ignorable
    ├── IllegalTransition        an event that breaks Temporal's legal order
    │   └── EventOutOfSequence   a gap, duplicate or reordering of event ids (also an
    │                            eventsourcing OriginatorVersionError)
    ├── InvalidHistory           collect-all mode: every problem of one history, by event id
    ├── LimitExceeded            strict mode: past one of Temporal's own limits (ids, payload
    │                            size, history length and size; see runhistory.domain.limits)
    └── RunKeyError              the run's workflow id or run id cannot be determined

Each error carries the offending event id (when there is one) as an attribute and in its message,
and a short stable `code` that tools can match on.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.domain import OriginatorVersionError

__all__ = [
    "EventOutOfSequence",
    "HistoryError",
    "IllegalTransition",
    "InvalidHistory",
    "LimitExceeded",
    "MalformedHistory",
    "RunKeyError",
    "UnknownEventType",
]


class HistoryError(Exception):
    """Root of every error about a history's content."""

    code: str = "history-error"
    event_id: int | None = None
    event_type: str | None = None


class MalformedHistory(HistoryError, ValueError):
    """The input does not have the shape of a Temporal history. `path` locates the bad value,
    e.g. `$.events[41].activityTaskScheduledEventAttributes.startToCloseTimeout`."""

    code = "malformed"

    def __init__(self, reason: str, *, path: str = "$", event_id: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.event_id = event_id
        where = f" (event {event_id})" if event_id is not None else ""
        super().__init__(f"{path}{where}: {reason}")


class UnknownEventType(HistoryError):
    """Strict mode met an event type it does not know and `workerMayIgnore` was not set."""

    code = "unknown-event-type"

    def __init__(self, event_id: int, type_name: str) -> None:
        self.event_id = event_id
        self.event_type = type_name
        super().__init__(
            f"event {event_id}: unknown event type {type_name!r} is not marked workerMayIgnore"
            " (use lenient mode to keep it as an opaque event)"
        )


class IllegalTransition(HistoryError):
    """An event that a Temporal server would never have written at this point of the history."""

    code = "illegal-transition"

    def __init__(
        self,
        *,
        event_id: int,
        event_type: str,
        entity: str,
        key: object,
        state: str,
        allowed: Sequence[str],
        reason: str,
        rule: str = "",
    ) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.entity = entity
        self.key = key
        self.state = state
        self.allowed = tuple(allowed)
        self.reason = reason
        self.rule = rule
        rule_text = f" [{rule}]" if rule else ""
        follows = (
            f"where only {', '.join(self.allowed)} may follow"
            if self.allowed
            else "where nothing may follow"
        )
        name = f"{entity} {key!s}" if key not in ("", None) else entity
        super().__init__(
            f"event {event_id} {event_type}: {reason}{rule_text}; {name} is {state}, {follows}"
        )


class EventOutOfSequence(IllegalTransition, OriginatorVersionError):
    """Event ids must run 1, 2, 3, ... with no gap, duplicate or reordering (I1)."""

    code = "out-of-sequence"


class InvalidHistory(HistoryError):
    """Collect-all mode: every problem found in one pass, ordered by event id."""

    code = "invalid-history"

    def __init__(self, errors: Sequence[HistoryError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.event_id is None, e.event_id or 0))
        first = self.errors[0] if self.errors else None
        self.event_id = first.event_id if first else None
        self.event_type = first.event_type if first else None
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first}{more}")


class RunKeyError(HistoryError):
    """The history does not say which run it is (e.g. an old history without `workflowId`)."""

    code = "run-key"


class LimitExceeded(HistoryError):
    """Strict mode: the history goes past one of a Temporal server's own limits
    (`runhistory.domain.limits`), so no server with those limits wrote it.

    `limit_name` is the server's dynamic-config key (e.g. `limit.maxIDLength`), `field` the JSON
    path of the value (or `history length` / `history size`), `limit` and `actual` the allowed
    and found amounts in `unit` (bytes or events). Pass `limits=` to `load_history` (the CLI's
    `--limits`) to change or switch off a limit."""

    code = "limit-exceeded"

    def __init__(
        self,
        *,
        limit_name: str,
        field: str,
        limit: int,
        actual: int,
        unit: str,
        event_id: int | None,
        event_type: str | None,
        detail: str = "",
    ) -> None:
        self.limit_name = limit_name
        self.field = field
        self.limit = limit
        self.actual = actual
        self.unit = unit
        self.event_id = event_id
        self.event_type = event_type
        self.detail = detail
        where = f"event {event_id} {event_type}: " if event_id is not None else ""
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"{where}{field} is {actual:,} {unit}, over the limit of {limit:,}"
            f" ({limit_name}){more}; see --limits / limits= to change it"
        )
