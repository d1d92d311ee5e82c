"""The columns that need a run's whole history: state transitions, size and findings.

They are computed by the pure projections (`transitions_from`, `history_size_bytes`, the
`DEFAULT_CHECKS` of `findings`) on the run as the source application rebuilds it, when the run
has closed (and, on request, for open runs at their current length). A closed run's history
never changes, so once derived at its last event these columns are exact for good.

What it costs is mostly per run, not per event (the runs of a store are short): a query, the
decoding of each event, and the projections' own set-up. So closed runs are read from the SQL
store in one query per chunk of runs (not one per run), decoded straight from their stored JSON
without the repository's per-event protocol checks, and the projections share one index and
one size computation per run instead of each making its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from runhistory.domain.errors import HistoryError
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.projections._index import index
from runhistory.projections.catalog.view import CatalogView, Derivation, DerivationDue
from runhistory.projections.checks import DEFAULT_CHECKS, Check, findings, history_limits
from runhistory.projections.size import history_size_bytes
from runhistory.projections.transitions import transitions_from
from runhistory.stores.sql.recorders import SQLApplicationRecorder

__all__ = ["derive", "derive_one", "derived_columns"]

_log = logging.getLogger(__name__)
UNREADABLE_RULE = "catalog-run-unreadable"
_IN_CHUNK = 500
_LOAD_ERRORS = (LookupError, HistoryError, ValueError)


def derived_columns(due: DerivationDue, run: WorkflowRun) -> Derivation:
    """The whole-history columns of `run` (the run `due` names, at `due.last_event_id`):
    `state_transitions(run)`, `history_size_bytes(run)` and `findings(run)`, computed with
    one index and one size for the three."""
    stc = transitions_from(index(run))
    size = history_size_bytes(run)
    found = findings(run, _checks_knowing(size))
    return Derivation(
        due,
        stc.value,
        stc.exact,
        stc.lower,
        stc.upper,
        size,
        tuple((f.rule, f.severity, tuple(f.event_ids), f.message) for f in found),
    )


def _checks_knowing(size: int) -> tuple[Check, ...]:
    """`DEFAULT_CHECKS`, with the history size already known to `history_limits`."""
    known = partial(history_limits, size=size)
    return tuple(known if check is history_limits else check for check in DEFAULT_CHECKS)


def _unreadable(due: DerivationDue, error: Exception) -> Derivation:
    _log.warning("catalog: cannot rebuild run %s/%s/%s: %s", due.namespace, due.workflow_id,
                 due.run_id, error)  # fmt: skip
    message = f"the run could not be rebuilt from the store: {type(error).__name__}: {error}"
    return Derivation(due, None, None, None, None, None, ((UNREADABLE_RULE, "error", (), message),))


def derive_one(app: Any, due: DerivationDue) -> Derivation:
    """The whole-history columns of one run, read from `app` (a `RunHistory`)."""
    try:
        run = _load(app, due)
    except _LOAD_ERRORS as e:
        return _unreadable(due, e)
    return derived_columns(due, run)


def _load(app: Any, due: DerivationDue) -> WorkflowRun:
    if due.closed:  # a closed run has no tail to re-attach: replay its stored events
        run = _replay(app, app.recorder.select_events(due.originator_id), due.originator_id)
    else:
        key = RunKey(due.workflow_id, due.run_id, due.namespace)
        run = app.get(key)
        if run.durable_length != due.last_event_id:  # the store is ahead of the view
            run = app.get(key, version=due.last_event_id)
    if not isinstance(run, WorkflowRun):
        raise LookupError(f"aggregate {due.originator_id} is not a WorkflowRun")
    return run


def _replay(app: Any, stored: Iterable[StoredEvent], originator_id: UUID) -> Any:
    """The aggregate as the repository rebuilds it (without snapshots): each stored event
    decoded by the application's mapper and applied in order, without the repository's
    per-event protocol checks, which cost more than the decoding."""
    to_domain_event = app.mapper.to_domain_event
    aggregate: Any = None
    for event in stored:
        aggregate = to_domain_event(event).mutate(aggregate)
    if aggregate is None:
        raise LookupError(f"no stored events of run {originator_id}")
    return aggregate


def _stored_events_of(app: Any, ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]] | None:
    """The stored events of many runs, read in one query per `_IN_CHUNK` runs, in version
    order; None if `app` is not on the SQL store (then each run is read on its own). The query
    goes to the driver as it is (as `_Reader` in `runner` does): the ids are bound in their
    stored form, and the rows come back without per-row type processing."""
    recorder = getattr(app, "recorder", None)
    if type(recorder) is not SQLApplicationRecorder or not ids:
        return None
    datastore = recorder.datastore
    dialect = datastore.engine.dialect
    table = recorder.tables.events
    to_stored = table.c.originator_id.type.bind_processor(dialect) or _same
    mark = "?" if datastore.is_sqlite else "%s"
    select = (
        "SELECT originator_id, originator_version, topic, state "
        f"FROM {dialect.identifier_preparer.format_table(table)} WHERE originator_id IN "
    )
    out: dict[UUID, list[StoredEvent]] = {key: [] for key in ids}
    with datastore.transaction(write=False) as conn:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            stored_ids = {to_stored(key): key for key in chunk}
            marks = ", ".join([mark] * len(chunk))
            sql = f"{select}({marks}) ORDER BY originator_id, originator_version"
            last: Any = None
            events: list[StoredEvent] = []
            key = chunk[0]
            for raw, version, topic, state in conn.exec_driver_sql(sql, tuple(stored_ids)):
                if raw != last:
                    last = raw
                    key = stored_ids[raw]
                    events = out[key]
                events.append(StoredEvent(key, version, topic, bytes(state)))
    return out


def _same(value: Any) -> Any:
    return value


def _derive_chunk(app: Any, due: Sequence[DerivationDue]) -> list[Derivation]:
    stored = _stored_events_of(app, [d.originator_id for d in due if d.closed])
    derived: list[Derivation] = []
    for item in due:
        if stored is None or not item.closed:
            derived.append(derive_one(app, item))
            continue
        try:
            run = _replay(app, stored[item.originator_id], item.originator_id)
            if not isinstance(run, WorkflowRun):
                raise LookupError(f"aggregate {item.originator_id} is not a WorkflowRun")
        except _LOAD_ERRORS as e:
            derived.append(_unreadable(item, e))
            continue
        derived.append(derived_columns(item, run))
    return derived


def derive(app: Any, view: CatalogView, *, include_open: bool = False, chunk: int = 200) -> int:
    """Compute the whole-history columns of every run that is due (see
    `CatalogView.derivations_due`), `chunk` runs per transaction. Returns the runs written."""
    written = 0
    after = None
    while True:
        due = view.derivations_due(limit=chunk, after=after, include_open=include_open)
        if not due:
            return written
        written += view.write_derived(_derive_chunk(app, due))
        after = due[-1].originator_id
