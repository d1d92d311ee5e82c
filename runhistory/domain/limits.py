"""Temporal's own limits on what a history can hold, as strict mode enforces them.

A Temporal server refuses (or cuts short) anything past these limits, so a history that breaks
one was not written by a server running with the defaults: strict `load_history` refuses it with
`LimitExceeded`, naming the event, the field and the limit. The defaults and where the server
checks them (temporalio/temporal at HEAD, `common/dynamicconfig/constants.go`; semantics §4):

- `limit.maxIDLength` = 1000, compared with Go's `len()`, i.e. **UTF-8 bytes**, not characters.
  Enforced here only on the fields the server checks on *every* path that writes them:
  workflow ids and namespaces (`service/frontend/workflow_handler.go` `validateWorkflowID`,
  `validateNamespace`; `service/history/api/create_workflow_util.go`; the child, cancel-external
  and signal-external command checks in `service/history/api/command_attr_validator.go`), task
  queue names (`common/tqid/task_queue_validator.go`), workflow and activity type names, activity
  ids (`chasm/lib/activity/validator.go`), timer ids and marker names (`command_attr_validator.go`)
  and update ids (`workflow_handler.go` `prepareUpdateWorkflowRequest`). Signal names, identities
  and request ids are checked on some requests but not all (a signal sent by
  SignalExternalWorkflowExecution, or a terminate's identity, is never length-checked), so a
  longer one can be in a real history and is not refused.
- `limit.blobSize.error` = 2 MiB, per *field*, as the server measures it
  (`common/util.go` `CheckEventBlobSizeLimit`, called from the frontend handlers and
  `service/history/api/respondworkflowtaskcompleted/workflow_task_completed_handler.go`):
  a `Payloads` field (input, result, details, ...) by its proto3 binary size (`Payloads.Size()`),
  a single `Payload` field by `Payload.Size()`, marker details (map of Payloads) by
  Σ len(key) + Payloads.Size() (`common.GetPayloadsMapSize`), memo and search attributes (maps of
  Payload) by Σ len(key) + len(data) (`payloadsMapSize`). Exactly the limit passes (`> limit`
  fails, as in the server). Headers are not checked (the server only records their size), nor is
  a `Failure` as a whole: its payloads are, as Payloads fields.
- `limit.historyCount.error` = 51,200 events and `limit.historySize.error` = 50 MiB (the sum over
  durable events of their framed proto3 size, the server's `historySizeBytes`). These the server
  checks *before* each transaction of a running workflow (`service/history/workflow/context.go`
  `enforceHistoryCountCheck`, `enforceHistorySizeCheck`): once a transaction has taken the
  history past the limit, the next one is replaced by a forced `WORKFLOW_EXECUTION_TERMINATED`
  ("Workflow history count/size exceeds limit."). Buffered events carry no id when the count is
  checked, and the size check reads the persisted size before the transaction, so the
  transaction that crosses the limit is written whole, and the run's terminating transaction
  follows it (observed: limit 30 → 31 events + TERMINATED, semantics §4, E13); a transaction
  that closes the run may also cross it. So a history may run past the limit by the crossing
  transaction (Rule T: consecutive task ids) plus at most one more, which must end with
  WORKFLOW_EXECUTION_TERMINATED. The transient tail (no task id) is not counted, as the server
  does not persist it.

Change or switch off a limit with `HistoryLimits` (`load_history(..., limits=...)`, the CLI's
`--limits`); `None` for a field switches that limit off and `NO_LIMITS` switches all off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from runhistory.domain import messages as m
from runhistory.domain.enums import EventType
from runhistory.domain.errors import LimitExceeded
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.fieldspec import FieldSpec, Label
from runhistory.domain.limit_walk import Breach, Plan, Sizers, walkers
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.domain.schema import ATTRIBUTES, FIELDS

__all__ = ["NO_LIMITS", "TEMPORAL_LIMITS", "HistoryLimits", "LimitChecker"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """The limits strict mode enforces; `None` switches one off. Defaults: a Temporal server's.

    - `max_id_length`: UTF-8 bytes of an id or name (`limit.maxIDLength`, 1000);
    - `max_payload_bytes`: one payload field (`limit.blobSize.error`, 2 MiB);
    - `max_events`: events in a history (`limit.historyCount.error`, 51,200);
    - `max_history_bytes`: the history's proto3 size (`limit.historySize.error`, 50 MiB).
    """

    max_id_length: int | None = 1000
    max_payload_bytes: int | None = 2 * MiB
    max_events: int | None = 51_200
    max_history_bytes: int | None = 50 * MiB

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{f.name} must be a non-negative int or None, not {value!r}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    @classmethod
    def parse(cls, spec: str) -> HistoryLimits:
        """Read a CLI spelling: `temporal` (the defaults), `none` (no limit), or comma-separated
        overrides of the defaults, e.g. `max_events=100000,max_payload_bytes=none`."""
        text = spec.strip().lower()
        if text in ("temporal", "default", ""):
            return TEMPORAL_LIMITS
        if text in ("none", "off"):
            return NO_LIMITS
        names = {f.name for f in dataclasses.fields(cls)}
        changes: dict[str, int | None] = {}
        for item in text.split(","):
            name, sep, value = (part.strip() for part in item.partition("="))
            name = name.replace("-", "_")
            if not sep or name not in names:
                raise ValueError(
                    f"bad limit {item.strip()!r}: expected NAME=N or NAME=none,"
                    f" NAME one of {', '.join(sorted(names))}"
                )
            try:
                changes[name] = None if value in ("none", "off") else int(value.replace("_", ""))
            except ValueError:
                raise ValueError(f"bad limit {item.strip()!r}: {value!r} is not a number") from None
        return dataclasses.replace(TEMPORAL_LIMITS, **changes)


TEMPORAL_LIMITS = HistoryLimits()
NO_LIMITS = HistoryLimits(None, None, None, None)

# --- ids ------------------------------------------------------------------------------------

# string fields holding an id or name the server length-checks wherever it is written
_ID_FIELDS = frozenset(
    {
        "workflow_id",
        "activity_id",
        "timer_id",
        "marker_name",
        "namespace",
        "parent_workflow_namespace",
        "update_id",
    }
)
# messages whose `name` is an id the server length-checks
_NAMED = frozenset({m.TaskQueue, m.WorkflowType, m.ActivityType})
# a message not to look into: the server does not limit headers
_SKIP = frozenset({m.Header})


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# --- payload sizes, as the server measures them ----------------------------------------------


def _varint_len(value: int) -> int:
    return 10 if value < 0 else max(1, (value.bit_length() + 6) // 7)


def _framed(size: int) -> int:
    """A length-delimited field of `size` bytes with a one-byte tag."""
    return 1 + _varint_len(size) + size


def payload_size(payload: m.Payload) -> int:
    """`Payload.Size()`: metadata map, data, external payload details (proto3)."""
    n = 0
    for key, value in payload.metadata.items():
        n += _framed(_framed(utf8_len(key)) + _framed(len(value)))
    if payload.data:
        n += _framed(len(payload.data))
    for external in payload.external_payloads:
        size = external.size_bytes
        n += _framed(1 + _varint_len(size) if size else 0)
    return n


def payloads_size(payloads: m.Payloads) -> int:
    """`Payloads.Size()`."""
    return sum(_framed(payload_size(p)) for p in payloads.payloads)


def _payload_map_size(fields: Mapping[str, m.Payload]) -> int:
    """The server's `payloadsMapSize` of memo and search-attribute fields."""
    return sum(utf8_len(k) + len(p.data) for k, p in fields.items())


def _payloads_map_size(fields: Mapping[str, m.Payloads]) -> int:
    """`common.GetPayloadsMapSize` of marker details."""
    return sum(utf8_len(k) + payloads_size(p) for k, p in fields.items())


# --- the walk: per message class, which fields to check and which to look into ---------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _build_plan(cls: type, visiting: frozenset[type]) -> Plan:
    checks: list[tuple[str, str, FieldSpec]] = []
    for spec in FIELDS.get(cls, ()):
        name = _camel(spec.name)
        if spec.kind == "string":
            if spec.name in _ID_FIELDS or (cls in _NAMED and spec.name in ("name", "normal_name")):
                checks.append(("id", name, spec))
            continue
        target = spec.target
        if spec.kind != "message" or target is None or target in _SKIP:
            continue
        if target in (m.Payloads, m.Payload, m.Memo, m.SearchAttributes):
            checks.append(("size", name, spec))
        elif target in visiting or _build_plan(target, visiting | {cls}):
            # (a message already being planned is recursive, as Failure.cause: look into it)
            checks.append(("descend", name, spec))
    return tuple(checks)


def _size_of(value: Any, spec: FieldSpec) -> int:
    if spec.label is Label.MAP:
        if spec.target is m.Payloads:
            return _payloads_map_size(value)
        return _payload_map_size(value)
    if isinstance(value, m.Payloads):
        return payloads_size(value)
    if isinstance(value, m.Payload):
        return payload_size(value)
    if isinstance(value, (m.Memo, m.SearchAttributes)):
        fields = value.fields if isinstance(value, m.Memo) else value.indexed_fields
        return _payload_map_size(fields)
    return 0


# --- the checker ------------------------------------------------------------------------------


class LimitChecker:
    """Checks one history against `limits`: `check` each event as it is read (ids and payloads),
    then `finish` with the whole run (history length and size). For `max_history_bytes` the
    adapter passes `history_bytes` (the server's `historySizeBytes` of a run, exact at least
    when near the limit it is given) and `event_size`
    (one event's proto3 size), from `runhistory.projections.size`: the domain does not size
    events itself. Without them the size limit is not checked."""

    def __init__(
        self,
        limits: HistoryLimits,
        history_bytes: Callable[[WorkflowRun, int], int] | None = None,
        event_size: Callable[[HistoryEvent], int] | None = None,
    ) -> None:
        self.limits = limits
        self._history_bytes = history_bytes
        self._event_size = event_size
        self._walk = limits.max_id_length is not None or limits.max_payload_bytes is not None
        self._walkers = _walkers_for(limits.max_id_length, limits.max_payload_bytes)
        self._max_events = limits.max_events
        self._durable = 0
        self._last_task_id = 0
        self._later_txns = 0
        self._crossing_event: tuple[int, str] = (0, "")
        self.stopped = False

    def check_key(self, key: RunKey) -> None:
        """The run's own workflow id and namespace (given, or read from the started event)."""
        limit = self.limits.max_id_length
        if limit is None:
            return
        for name, value in (("workflowId", key.workflow_id), ("namespace", key.namespace)):
            if utf8_len(value) > limit:
                raise LimitExceeded(
                    limit_name="limit.maxIDLength",
                    field=name,
                    limit=limit,
                    actual=utf8_len(value),
                    unit="bytes",
                    event_id=1,
                    event_type=EventType.WORKFLOW_EXECUTION_STARTED.name,
                )

    def check(self, event: HistoryEvent) -> None:
        """One event's ids and payload fields, and the event count so far: a history that goes
        on past the count limit by more than `finish` could accept is refused as soon as that
        is certain, so a streamed history of a million events is never read whole (`stopped`
        then tells the reader to read no further, even when collecting every error)."""
        if self._walk:
            self._check_fields(event)
        if self._max_events is not None and event.task_id:
            self._count_event(event, self._max_events)

    def _count_event(self, event: HistoryEvent, limit: int) -> None:
        self._durable += 1
        new_txn = event.task_id != self._last_task_id + 1  # Rule T: consecutive task ids
        self._last_task_id = event.task_id
        if self._durable <= limit:
            return
        if self._durable == limit + 1:
            self._crossing_event = (event.event_id, event.type_name)
            return
        self._later_txns += new_txn
        if self._later_txns < 2:
            return
        self.stopped = True
        first_id, first_type = self._crossing_event
        raise LimitExceeded(
            limit_name="limit.historyCount.error",
            field="history length",
            limit=limit,
            actual=self._durable,
            unit="events",
            event_id=event.event_id,
            event_type=event.type_name,
            detail=(
                f"passed at event {first_id} {first_type}, and a second transaction follows the"
                " one that crossed it: a server terminates a run in the transaction after the"
                " one that takes it past the limit; reading stopped here"
            ),
        )

    def finish(self, run: WorkflowRun) -> None:
        """The whole history's length and size. Past a limit, only the transaction that crossed
        it and one more that ends with WORKFLOW_EXECUTION_TERMINATED may follow."""
        if self.stopped:
            return  # refused while reading
        durable = [e for e in run.history if e.task_id != 0]  # the tail is not persisted
        crossed = self._crossing(run, durable)
        if crossed is None:
            return
        index, breach = crossed
        end = index + 1  # the end of the crossing transaction (Rule T: consecutive task ids)
        while end < len(durable) and durable[end].task_id == durable[end - 1].task_id + 1:
            end += 1
        if end == len(durable):
            return
        after = end + 1  # the end of the one transaction that may follow it
        while after < len(durable) and durable[after].task_id == durable[after - 1].task_id + 1:
            after += 1
        if after < len(durable):
            why = "a second transaction follows the one that crossed it"
            raise self._past(breach, durable[after], why)
        if durable[-1].event_type is not EventType.WORKFLOW_EXECUTION_TERMINATED:
            why = "the transaction after it does not terminate the run"
            raise self._past(breach, durable[end], why)

    def _crossing(
        self, run: WorkflowRun, durable: Sequence[HistoryEvent]
    ) -> tuple[int, LimitExceeded] | None:
        """(index, breach) of the first durable event past the count or size limit, if any."""
        limits = self.limits
        found: list[tuple[int, LimitExceeded]] = []
        if limits.max_events is not None and len(durable) > limits.max_events:
            event = durable[limits.max_events]
            found.append(
                (
                    limits.max_events,
                    LimitExceeded(
                        limit_name="limit.historyCount.error",
                        field="history length",
                        limit=limits.max_events,
                        actual=len(durable),
                        unit="events",
                        event_id=event.event_id,
                        event_type=event.type_name,
                    ),
                )
            )
        limit = limits.max_history_bytes
        size = self._event_size
        if limit is not None and self._history_bytes is not None and size is not None:
            total = self._history_bytes(run, limit)
            if total > limit:  # rare: find the event that crossed it
                low, running = 0, 0
                for low, event in enumerate(durable):  # noqa: B007 (used after the loop)
                    one = size(event)
                    running += one + 1 + _varint_len(one)
                    if running > limit:
                        break
                event = durable[low]
                found.append(
                    (
                        low,
                        LimitExceeded(
                            limit_name="limit.historySize.error",
                            field="history size",
                            limit=limit,
                            actual=total,
                            unit="bytes",
                            event_id=event.event_id,
                            event_type=event.type_name,
                        ),
                    )
                )
        return min(found, key=lambda pair: pair[0]) if found else None

    @staticmethod
    def _past(breach: LimitExceeded, event: HistoryEvent, why: str) -> LimitExceeded:
        return LimitExceeded(
            limit_name=breach.limit_name,
            field=breach.field,
            limit=breach.limit,
            actual=breach.actual,
            unit=breach.unit,
            event_id=event.event_id,
            event_type=event.type_name,
            detail=(
                f"passed at event {breach.event_id}, and {why}: a server terminates a run in"
                " the transaction after the one that takes it past the limit"
            ),
        )

    def _check_fields(self, event: HistoryEvent) -> None:
        walk = self._walkers
        attributes = event.attributes
        top = "userMetadata"
        try:
            if attributes is not None:
                top = ""
                walk[attributes.__class__](attributes)
                top = "userMetadata"
            if event.user_metadata is not None:
                walk[event.user_metadata.__class__](event.user_metadata)
        except Breach as breach:
            if not top:
                name = ATTRIBUTES[event.event_type][0] if event.event_type in ATTRIBUTES else ""
                top = _camel(name) or "attributes"
            id_limit = breach.what == "id"
            limit = self.limits.max_id_length if id_limit else self.limits.max_payload_bytes
            assert limit is not None
            raise LimitExceeded(
                limit_name="limit.maxIDLength" if id_limit else "limit.blobSize.error",
                field=".".join([top, *reversed(breach.path)]).replace(".[", "["),
                limit=limit,
                actual=breach.actual,
                unit="bytes",
                event_id=event.event_id,
                event_type=event.type_name,
            ) from None


@cache
def _plans() -> dict[type, Plan]:
    """Every message class's checks (an empty plan: nothing in it to check)."""
    return {cls: _build_plan(cls, frozenset()) for cls in FIELDS}


@cache
def _walkers_for(id_limit: int | None, payload_limit: int | None) -> dict[type, Any]:
    sizes = Sizers(utf8_len, payload_size, payloads_size, _size_of)
    return walkers(_plans(), id_limit, payload_limit, sizes)
