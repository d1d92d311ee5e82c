"""`CatalogView`: the read model, an eventsourcing `TrackingRecorder` on SQLAlchemy Core.

It is the SQL store's `SQLTrackingRecorder` (its datastore, units of work and `<prefix>_tracking`
table) plus the catalog's tables. Every change made by applying events is written in one
transaction together with the tracking record of the last notification it covers, so each event
is applied exactly once, and a catch-up that stops (or crashes) anywhere resumes from the last
committed batch. The whole-history columns are written separately (`write_derived`), guarded by
the run's `last_event_id`: they are a pure function of the run's history up to that event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, Tracking
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runhistory.projections.catalog.fold import (
    AUDIT_TYPES,
    LIGHT_HANDLERS,
    OPEN_STATUSES,
    AuditRecord,
    RunAcc,
    apply_event,
    apply_light,
    apply_tail,
    audit_record,
)
from runhistory.projections.catalog.tables import (
    APPLIED_COLUMNS,
    CatalogTables,
    make_catalog_tables,
)
from runhistory.stores.sql.datastore import SQLDatastore
from runhistory.stores.sql.tables import Tables
from runhistory.stores.sql.tracking import SQLTrackingRecorder

__all__ = [
    "EVENT",
    "LIGHT",
    "TAIL",
    "UNCHECKED",
    "CatalogView",
    "Derivation",
    "DerivationDue",
    "Item",
    "PositionMoved",
]

EVENT: Final = 0  # (EVENT, run originator id, canonical event JSON as a dict)
TAIL: Final = 1  # (TAIL, tail originator id, (run originator id or None, after id, events JSON))
# (LIGHT, run originator id, (event id, type name without prefix)): an event of a LIGHT_TYPES
# type, not its run's last in the batch, handed over without its JSON (see `apply_light`).
LIGHT: Final = 2
Item = tuple[int, UUID, Any]

_STARTED = "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
_IN_CHUNK = 500
_CACHE_LIMIT = 100_000


class _Unchecked:
    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Final = _Unchecked()
"""`apply_batch(expected=UNCHECKED)`: one event at a time (eventsourcing's ProjectionRunner):
the position is not compared, only required to move forward."""


class PositionMoved(Exception):
    """Another process applied events to this view since this one last looked."""

    def __init__(self, current: int | None) -> None:
        super().__init__(f"the view's position moved to {current}")
        self.current = current


@dataclass(frozen=True, slots=True)
class DerivationDue:
    """A run whose whole-history columns are to be (re)computed at `last_event_id`."""

    originator_id: UUID
    namespace: str
    workflow_id: str
    run_id: str
    last_event_id: int
    status: str

    @property
    def closed(self) -> bool:
        return self.status not in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class Derivation:
    """The whole-history columns of one run at `last_event_id`, and its findings as
    `(rule, severity, event ids, message)`."""

    due: DerivationDue
    state_transitions: int | None
    state_transitions_exact: bool | None
    state_transitions_lower: int | None
    state_transitions_upper: int | None
    history_size_bytes: int | None
    findings: tuple[tuple[str, str, tuple[int, ...], str], ...]


_SEVERITY_ORDER = {"info": 1, "warning": 2, "error": 3}


class CatalogView(SQLTrackingRecorder):
    """The runs catalog of one or more applications, in `<prefix>_runs`, `<prefix>_audit`,
    `<prefix>_findings` and `<prefix>_tracking`. Construct it like any of the SQL store's
    recorders (`Factory.tracking_recorder(CatalogView)` does), or with `open_view`."""

    def __init__(self, datastore: SQLDatastore, tables: Tables, **kwargs: Any) -> None:
        super().__init__(datastore, tables, **kwargs)
        self.catalog: CatalogTables = make_catalog_tables(tables.prefix)
        self.owns_datastore = False
        runs = self.catalog.runs
        dialect_insert = sqlite.insert if datastore.is_sqlite else postgresql.insert
        upsert = dialect_insert(runs)
        excluded = upsert.excluded
        changes: dict[str, Any] = {
            name: excluded[name]
            for name in APPLIED_COLUMNS
            if name not in ("namespace", "workflow_id", "run_id")
        }
        changes["derive_pending"] = sa.or_(runs.c.derive_pending, excluded.derive_pending)
        self._upsert_runs = upsert.on_conflict_do_update(
            index_elements=[runs.c.originator_id], set_=changes
        )
        self._insert_audit = sa.insert(self.catalog.audit)
        self._select_position = sa.select(tables.tracking.c.notification_id).where(
            tables.tracking.c.application_name == sa.bindparam("application_name")
        )
        self._audit = AuditRecord()
        self._cache: dict[UUID, RunAcc] = {}
        self._tails: dict[UUID, UUID] = {}
        self._cache_lock = threading.Lock()

    # --- schema ---------------------------------------------------------------------------

    def schema_tables(self) -> list[sa.Table]:
        c = self.catalog
        return [*super().schema_tables(), c.runs, c.audit, c.findings]

    def create_table(self) -> None:
        """Create the tracking table and the catalog's tables if they are missing."""
        with self.datastore.transaction(write=True) as conn:
            if not self.datastore.is_sqlite:
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(4242, hashtext(:name))"),
                    {"name": self.tables.prefix},
                )
            self.tables.metadata.create_all(conn, tables=[self.tables.tracking], checkfirst=True)
            self.catalog.metadata.create_all(conn, checkfirst=True)

    def drop_tables(self) -> None:
        """Drop the catalog's tables and its tracking table (rebuild by catching up again)."""
        with self.datastore.transaction(write=True) as conn:
            self.catalog.metadata.drop_all(conn, checkfirst=True)
            self.tables.metadata.drop_all(conn, tables=[self.tables.tracking], checkfirst=True)
        self.forget()

    def close(self) -> None:
        """Release the database, if this view opened it."""
        if self.owns_datastore:
            self.datastore.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- applying events ------------------------------------------------------------------

    def forget(self) -> None:
        """Drop the rows this view keeps in memory between batches."""
        with self._cache_lock:
            self._cache.clear()
            self._tails.clear()

    def position(self, application_name: str) -> int | None:
        """The last notification of `application_name` applied (None: nothing yet)."""
        return self.max_tracking_id(application_name)

    def apply_batch(
        self,
        application_name: str,
        items: Sequence[Item],
        last_notification_id: int,
        *,
        expected: int | _Unchecked | None,
    ) -> int:
        """Apply `items` (the readable events among notifications up to and including
        `last_notification_id`) in one transaction with `Tracking(application_name,
        last_notification_id)`. `expected` is the position the items follow; if the view has
        moved on (another process applied them), nothing is written and PositionMoved says
        where it is. Returns the number of history and tail events applied."""
        with self._cache_lock:
            if expected is UNCHECKED:
                self._cache.clear()
                self._tails.clear()
            try:
                with self.datastore.transaction(write=True) as conn:
                    current = self._lock_position(conn, application_name)
                    if expected is UNCHECKED:
                        if current is not None and last_notification_id <= current:
                            raise IntegrityError(
                                f"tracking {last_notification_id} of {application_name!r} is "
                                f"not after the position already recorded ({current})"
                            )
                    elif current != expected:
                        raise PositionMoved(current)
                    applied, touched, audit_rows = self._fold(conn, items)
                    if touched:  # in key order, as write_derived locks them: no deadlock
                        touched.sort(key=_originator)
                        conn.execute(self._upsert_runs, [acc.to_row() for acc in touched])
                    if audit_rows:
                        conn.execute(self._insert_audit, audit_rows)
                    self._insert_tracking(conn, Tracking(application_name, last_notification_id))
            except BaseException:
                self._cache.clear()
                self._tails.clear()
                raise
            for acc in touched:
                acc.closed_now = False
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
                self._tails.clear()
        self._wake_waiters()
        return applied

    def _lock_position(self, conn: Connection, application_name: str) -> int | None:
        """The position, read under this view's write lock: SQLite's BEGIN IMMEDIATE already
        holds the database's; PostgreSQL takes an advisory lock for the view and application."""
        if not self.datastore.is_sqlite:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(4243, hashtext(:key))"),
                {"key": f"{self.tables.prefix}:{application_name}"},
            )
        value = conn.execute(self._select_position, {"application_name": application_name})
        found = value.scalar()
        return None if found is None else int(found)

    def _fold(
        self, conn: Connection, items: Sequence[Item]
    ) -> tuple[int, list[RunAcc], list[dict[str, Any]]]:
        cache = self._cache
        tails = self._tails
        self._load(conn, items)
        touched: dict[UUID, RunAcc] = {}
        audit_rows: list[dict[str, Any]] = []
        audit_entry = self._audit.entry
        applied = 0
        last: UUID | None = None  # consecutive events are mostly one run's: look it up once
        acc: RunAcc | None = None
        light_handlers = LIGHT_HANDLERS
        for kind, originator, payload in items:
            if kind != TAIL:
                if originator is not last or acc is None:
                    acc = cache.get(originator)
                    if acc is None:
                        if kind == LIGHT or payload.get("eventType") != _STARTED:
                            last = None
                            continue  # a run whose start this view never saw: nothing to add to
                        acc = cache[originator] = _new_run(originator, payload)
                    touched[originator] = acc
                    last = originator
                if kind == LIGHT:
                    event_id, event_type = payload
                    apply_light(acc, event_id, light_handlers[event_type])
                    applied += 1
                    continue
                apply_event(acc, payload)
                applied += 1
                if payload.get("eventType") in AUDIT_TYPES:
                    entry = audit_entry(acc, payload)
                    if entry is not None:
                        audit_rows.append(audit_record(acc, entry))
            else:
                run_id, after, events_json = payload
                run_originator = run_id if run_id is not None else tails.get(originator)
                acc = cache.get(run_originator) if run_originator is not None else None
                if acc is None:
                    continue
                apply_tail(acc, originator, after, events_json)
                last = None
                tails[originator] = acc.originator
                touched[acc.originator] = acc
                applied += 1
        return applied, list(touched.values()), audit_rows

    def _load(self, conn: Connection, items: Iterable[Item]) -> None:
        """Bring the rows the items touch into the cache."""
        cache = self._cache
        wanted: set[UUID] = set()
        tails_wanted: set[UUID] = set()
        last: UUID | None = None
        for kind, originator, payload in items:
            if kind != TAIL:
                if originator is not last:
                    last = originator
                    if originator not in cache:
                        wanted.add(originator)
            elif payload[0] is not None:
                if payload[0] not in cache:
                    wanted.add(payload[0])
            elif originator not in self._tails:
                tails_wanted.add(originator)
        runs = self.catalog.runs
        for column, keys in ((runs.c.originator_id, wanted), (runs.c.tail_id, tails_wanted)):
            ordered = list(keys)
            for start in range(0, len(ordered), _IN_CHUNK):
                query = sa.select(runs).where(column.in_(ordered[start : start + _IN_CHUNK]))
                for row in conn.execute(query).mappings():
                    acc = RunAcc.from_row(row)
                    cache[acc.originator] = acc
                    if acc.tail_id is not None:
                        self._tails[acc.tail_id] = acc.originator

    # --- whole-history columns ------------------------------------------------------------

    def derivations_due(
        self, *, limit: int, after: UUID | None = None, include_open: bool = False
    ) -> list[DerivationDue]:
        """Runs whose whole-history columns are due, in originator order after `after`: those
        that closed since they were last derived, and (`include_open`) open runs that grew."""
        runs = self.catalog.runs
        c = runs.c
        closed_due = c.derive_pending
        condition: Any = closed_due
        if include_open:
            open_due = sa.and_(
                c.status.in_(OPEN_STATUSES),
                sa.or_(c.derived_event_id.is_(None), c.derived_event_id != c.last_event_id),
            )
            condition = sa.or_(closed_due, open_due)
        query = sa.select(
            c.originator_id, c.namespace, c.workflow_id, c.run_id, c.last_event_id, c.status
        ).where(condition)
        if after is not None:
            query = query.where(c.originator_id > after)
        query = query.order_by(c.originator_id).limit(limit)
        with self.datastore.transaction(write=False) as conn:
            return [DerivationDue(*row) for row in conn.execute(query)]

    def write_derived(self, derived: Sequence[Derivation]) -> int:
        """Write whole-history columns and findings in one transaction; a run whose row moved
        past the derivation's `last_event_id` meanwhile is left due. Returns the runs written."""
        if not derived:
            return 0
        runs = self.catalog.runs
        findings = self.catalog.findings
        c = runs.c
        with self.datastore.transaction(write=True) as conn:
            # Which rows are still at the derived event (locked against a concurrent catch-up
            # on PostgreSQL; SQLite's BEGIN IMMEDIATE holds the whole database already).
            current: dict[UUID, int] = {}
            ids = sorted(item.due.originator_id for item in derived)
            for start in range(0, len(ids), _IN_CHUNK):
                query = (
                    sa.select(c.originator_id, c.last_event_id)
                    .where(c.originator_id.in_(ids[start : start + _IN_CHUNK]))
                    .order_by(c.originator_id)
                    .with_for_update()
                )
                current.update((row[0], int(row[1])) for row in conn.execute(query))
            fresh = [d for d in derived if current.get(d.due.originator_id) == d.due.last_event_id]
            if not fresh:
                return 0
            conn.execute(
                sa.update(runs).where(c.originator_id == sa.bindparam("key")),
                [_derived_values(item) for item in fresh],
            )
            keys = [item.due.originator_id for item in fresh]
            for start in range(0, len(keys), _IN_CHUNK):
                conn.execute(
                    sa.delete(findings).where(
                        findings.c.originator_id.in_(keys[start : start + _IN_CHUNK])
                    )
                )
            rows = [
                {
                    "originator_id": item.due.originator_id,
                    "seq": seq,
                    "namespace": item.due.namespace,
                    "workflow_id": item.due.workflow_id,
                    "run_id": item.due.run_id,
                    "rule": rule,
                    "severity": severity,
                    "event_ids": ",".join(str(i) for i in event_ids),
                    "first_event_id": event_ids[0] if event_ids else None,
                    "message": message,
                }
                for item in fresh
                for seq, (rule, severity, event_ids, message) in enumerate(item.findings, 1)
            ]
            if rows:
                conn.execute(sa.insert(findings), rows)
        return len(fresh)


def _derived_values(item: Derivation) -> dict[str, Any]:
    severities = [severity for _, severity, _, _ in item.findings]
    return {
        "key": item.due.originator_id,
        "derive_pending": False,
        "derived_event_id": item.due.last_event_id,
        "state_transitions": item.state_transitions,
        "state_transitions_exact": item.state_transitions_exact,
        "state_transitions_lower": item.state_transitions_lower,
        "state_transitions_upper": item.state_transitions_upper,
        "history_size_bytes": item.history_size_bytes,
        "findings": len(item.findings),
        "worst_severity": max(severities, key=lambda s: _SEVERITY_ORDER.get(s, 0), default=None),
    }


def _originator(acc: RunAcc) -> UUID:
    return acc.originator


def _new_run(originator: UUID, started: dict[str, Any]) -> RunAcc:
    key = started.get("runKey")
    if isinstance(key, dict):
        return RunAcc(
            originator,
            str(key.get("namespace", "default")),
            str(key.get("workflowId", "")),
            str(key.get("runId", "")),
        )
    attrs = started.get("workflowExecutionStartedEventAttributes") or {}
    return RunAcc(
        originator,
        "default",
        str(attrs.get("workflowId", "")),
        str(attrs.get("originalExecutionRunId", "")),
    )
