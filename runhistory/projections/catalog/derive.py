"""The columns that need a run's whole history: state transitions, size and findings.

They are computed by the pure projections (`state_transitions`, `history_size_bytes`,
`findings`) on the run as the source application rebuilds it, when the run has closed (and,
on request, for open runs at their current length). A closed run's history never changes, so
once derived at its last event these columns are exact for good.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from runhistory.domain.errors import HistoryError
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.projections.catalog.view import CatalogView, Derivation, DerivationDue
from runhistory.projections.checks import findings
from runhistory.projections.size import history_size_bytes
from runhistory.projections.transitions import state_transitions

__all__ = ["derive", "derive_one"]

_log = logging.getLogger(__name__)
UNREADABLE_RULE = "catalog-run-unreadable"


def derive_one(app: Any, due: DerivationDue) -> Derivation:
    """The whole-history columns of one run, read from `app` (a `RunHistory`)."""
    try:
        run = _load(app, due)
    except (LookupError, HistoryError, ValueError) as e:
        _log.warning("catalog: cannot rebuild run %s/%s/%s: %s", due.namespace, due.workflow_id,
                     due.run_id, e)  # fmt: skip
        message = f"the run could not be rebuilt from the store: {type(e).__name__}: {e}"
        return Derivation(
            due, None, None, None, None, None, ((UNREADABLE_RULE, "error", (), message),)
        )
    stc = state_transitions(run)
    found = tuple((f.rule, f.severity, tuple(f.event_ids), f.message) for f in findings(run))
    return Derivation(
        due,
        stc.value,
        stc.exact,
        stc.lower,
        stc.upper,
        history_size_bytes(run),
        found,
    )


def _load(app: Any, due: DerivationDue) -> WorkflowRun:
    if due.closed:  # a closed run has no tail to re-attach: replay its stored events
        run = _replay(app, due.originator_id)
    else:
        key = RunKey(due.workflow_id, due.run_id, due.namespace)
        run = app.get(key)
        if run.durable_length != due.last_event_id:  # the store is ahead of the view
            run = app.get(key, version=due.last_event_id)
    if not isinstance(run, WorkflowRun):
        raise LookupError(f"aggregate {due.originator_id} is not a WorkflowRun")
    return run


def _replay(app: Any, originator_id: UUID) -> Any:
    """The aggregate as the repository rebuilds it (without snapshots): each stored event
    decoded by the application's mapper and applied in order, without the repository's
    per-event protocol checks, which cost more than the decoding."""
    to_domain_event = app.mapper.to_domain_event
    aggregate: Any = None
    for stored in app.recorder.select_events(originator_id):
        aggregate = to_domain_event(stored).mutate(aggregate)
    if aggregate is None:
        raise LookupError(f"no stored events of run {originator_id}")
    return aggregate


def derive(app: Any, view: CatalogView, *, include_open: bool = False, chunk: int = 200) -> int:
    """Compute the whole-history columns of every run that is due (see
    `CatalogView.derivations_due`), `chunk` runs per transaction. Returns the runs written."""
    written = 0
    after = None
    while True:
        due = view.derivations_due(limit=chunk, after=after, include_open=include_open)
        if not due:
            return written
        written += view.write_derived([derive_one(app, d) for d in due])
        after = due[-1].originator_id
