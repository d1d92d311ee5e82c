"""The runs catalog: a SQL read model of every run in a store, kept by a tracked projection.

One row per run (`<prefix>_runs`: namespace, workflow id, run id, type, task queue, status,
start and close time, history length, pending counts, chain links, and, once the run closes,
state transitions, history size and findings), one row per outside action (`<prefix>_audit`),
one per finding (`<prefix>_findings`), and eventsourcing's tracking (`<prefix>_tracking`).
Each event is applied exactly once, in the same transaction as its tracking record; a catch-up
that stops anywhere resumes where it stopped. The view lives in SQLite or PostgreSQL, whatever
store the application uses. See docs/read-model.md.

    from runhistory.app import RunHistory
    from runhistory.projections.catalog import catch_up, list_runs, open_view

    app = RunHistory.open("sqlite:///runs.db")
    catch_up(app)                       # tables `catalog_*` beside the events
    view = open_view(app=app)
    for row in list_runs(view, status="failed"):
        print(row.workflow_id, row.close_time, row.findings)

This subpackage uses SQLAlchemy and the adapters; `runhistory.projections` does not import it.
"""

from runhistory.projections.catalog.derive import derive
from runhistory.projections.catalog.queries import (
    AuditRow,
    FindingRow,
    RunRow,
    list_audit,
    list_findings,
    list_runs,
)
from runhistory.projections.catalog.runner import (
    DEFAULT_BATCH,
    DEFAULT_PREFIX,
    HISTORY_TOPICS,
    TAIL_TOPICS,
    CatalogProjection,
    CatalogRunner,
    catch_up,
    default_view_url,
    follow,
    open_view,
)
from runhistory.projections.catalog.view import CatalogView, PositionMoved

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_PREFIX",
    "HISTORY_TOPICS",
    "TAIL_TOPICS",
    "AuditRow",
    "CatalogProjection",
    "CatalogRunner",
    "CatalogView",
    "FindingRow",
    "PositionMoved",
    "RunRow",
    "catch_up",
    "default_view_url",
    "derive",
    "follow",
    "list_audit",
    "list_findings",
    "list_runs",
    "open_view",
]
