"""Shared by the catalog tests: real histories (renumbered when more runs are wanted), stores of
each kind holding them, and the whole content of a view, for comparing two views."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa

from runhistory.adapters.history_json import load_history
from runhistory.app import RunHistory
from runhistory.projections.catalog import CatalogView
from tests.conformance_data import checkpoint_histories, final_histories

__all__ = [
    "checkpoints",
    "fill",
    "real_histories",
    "renumbered",
    "view_content",
]

_STARTED = "workflowExecutionStartedEventAttributes"


@cache
def _raw_histories() -> tuple[tuple[str, bytes], ...]:
    return tuple((label, path.read_bytes()) for label, path in final_histories())


def real_histories(*, long: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded final history (fresh copies), the 2,235-event one unless `long` is False."""
    return [
        (label, orjson.loads(raw))
        for label, raw in _raw_histories()
        if long or not label.startswith("long_history")
    ]


def checkpoints() -> list[tuple[str, dict[str, Any]]]:
    """The mid-run histories (some end with a non-durable workflow-task tail), in order."""
    return [(label, doc["history"]) for label, doc in checkpoint_histories()]


def renumbered(doc: dict[str, Any], suffix: str, *, length: int | None = None) -> dict[str, Any]:
    """A copy of a history as another workflow's: the workflow id gets `suffix` (and the
    history is cut to its first `length` events, an open run, when given)."""
    copy: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    if length is not None:
        copy["events"] = copy["events"][:length]
    attrs = copy["events"][0][_STARTED]
    attrs["workflowId"] = f"{attrs['workflowId']}~{suffix}"
    return copy


def fill(app: RunHistory, docs: Iterable[dict[str, Any]], *, namespace: str = "default") -> int:
    """Store many validated histories quickly (one save per 50 runs); returns the events."""
    events = 0
    pending: list[Any] = []
    for i, doc in enumerate(docs, 1):
        run = load_history(doc, namespace=namespace)
        new = run.collect_events()
        events += len(new)
        pending.extend(new)
        if i % 50 == 0:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)
    return events


def view_content(view: CatalogView) -> dict[str, list[dict[str, Any]]]:
    """Every row of the view's catalog tables, in key order, and its tracking rows."""
    tables = view.catalog
    out: dict[str, list[dict[str, Any]]] = {}
    with view.datastore.transaction(write=False) as conn:
        for name, table, order in (
            ("runs", tables.runs, ["originator_id"]),
            ("audit", tables.audit, ["originator_id", "event_id"]),
            ("findings", tables.findings, ["originator_id", "seq"]),
            ("tracking", view.tables.tracking, ["application_name"]),
        ):
            query = sa.select(table).order_by(*(table.c[c] for c in order))
            out[name] = [_plain(dict(row)) for row in conn.execute(query).mappings()]
    return out


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Comparable across SQLite and PostgreSQL: naive UTC times, booleans as bools."""
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if key in {"cancel_requested", "paused", "derive_pending", "state_transitions_exact"}:
            value = None if value is None else bool(value)
        out[key] = value
    return out
