"""The whole-history columns (state transitions, history size, findings) as the catalog derives
them equal the pure projections of the same run, for every recorded history; the shortcuts the
derivation takes (one index and one size per run, closed runs read in bulk) change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runhistory.adapters.history_json import load_history
from runhistory.app import RunHistory
from runhistory.domain.run import WorkflowRun
from runhistory.projections import findings, history_size_bytes, state_transitions
from runhistory.projections._fold import activities, fold
from runhistory.projections.catalog import catch_up, list_findings, list_runs, open_view
from runhistory.projections.catalog.derive import UNREADABLE_RULE, derived_columns
from runhistory.projections.catalog.view import DerivationDue
from runhistory.projections.checks import SIZE_ERROR, history_limits
from runhistory.stores.sql.recorders import SQLApplicationRecorder
from tests.test_catalog_support import checkpoints, real_histories

_SEVERITY = {"info": 1, "warning": 2, "error": 3}


def _every_history() -> list[tuple[str, dict[str, Any]]]:
    return [*real_histories(), *checkpoints()]


def _expected(run: WorkflowRun) -> tuple[Any, ...]:
    stc = state_transitions(run)
    found = tuple((f.rule, f.severity, tuple(f.event_ids), f.message) for f in findings(run))
    return (stc.value, stc.exact, stc.lower, stc.upper, history_size_bytes(run), found)


def _due(run: WorkflowRun) -> DerivationDue:
    key = run.key
    assert key is not None
    return DerivationDue(
        run.id, key.namespace, key.workflow_id, key.run_id, run.durable_length, run.status
    )


@pytest.mark.parametrize(("label", "doc"), _every_history(), ids=lambda v: str(v)[:60])
def test_derived_columns_equal_the_pure_projections(label: str, doc: dict[str, Any]) -> None:
    run = load_history(doc)
    got = derived_columns(_due(run), run)
    assert (
        got.state_transitions,
        got.state_transitions_exact,
        got.state_transitions_lower,
        got.state_transitions_upper,
        got.history_size_bytes,
        got.findings,
    ) == _expected(run), label


@pytest.mark.parametrize(("label", "doc"), _every_history(), ids=lambda v: str(v)[:60])
def test_the_activity_checks_pair_activities_as_fold_does(label: str, doc: dict[str, Any]) -> None:
    run = load_history(doc)
    assert activities(run) == fold(run).activities, label
    assert list(history_limits(run, size=history_size_bytes(run))) == list(history_limits(run))


def test_history_limits_uses_the_size_it_is_given() -> None:
    _, doc = real_histories(long=False)[0]
    run = load_history(doc)
    assert not [f for f in history_limits(run) if f.rule == "history-size-limit"]
    given = [f.rule for f in history_limits(run, size=SIZE_ERROR)]
    assert "history-size-limit" in given


@pytest.fixture(params=["sqlite", "files"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunHistory]:
    """The SQL store (closed runs read in bulk) and the files store (one run at a time)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}" if request.param == "sqlite" else None
    app = RunHistory.open(url or f"file://{tmp_path / 'store'}")
    yield app
    app.close()


def test_every_closed_run_row_equals_its_pure_projections(store: RunHistory) -> None:
    """Every recorded final history, stored, caught up: each row's whole-history columns and
    its findings rows are the pure projections' own, column by column."""
    for _, doc in real_histories():
        store.import_history(doc)
    with open_view(app=store) as view:
        catch_up(store, view, batch=250)
        rows = list_runs(view)
        assert rows and all(row.derived for row in rows if row.closed)
        stored_findings: dict[Any, list[Any]] = {}
        for f in list_findings(view):
            stored_findings.setdefault((f.namespace, f.workflow_id, f.run_id), []).append(f)
        for row in rows:
            run = store.get(row.key)
            value, exact, lower, upper, size, found = _expected(run)
            assert (
                row.state_transitions,
                row.state_transitions_exact,
                row.state_transitions_lower,
                row.state_transitions_upper,
                row.history_size_bytes,
                row.findings,
            ) == (value, exact, lower, upper, size, len(found)), str(row.key)
            worst = max((f[1] for f in found), key=_SEVERITY.__getitem__, default=None)
            assert row.worst_severity == worst, str(row.key)
            got = stored_findings.get((row.namespace, row.workflow_id, row.run_id), [])
            assert [(f.rule, f.severity, f.event_ids, f.message) for f in got] == list(found)


def test_a_run_that_cannot_be_read_is_reported_and_the_others_are_derived(
    tmp_path: Path,
) -> None:
    """A closed run whose stored JSON is broken gets the unreadable finding; the other runs of
    the same bulk read are derived as usual."""
    app = RunHistory.open(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        for _, doc in real_histories(long=False)[:6]:
            app.import_history(doc)
        with open_view(app=app) as view:
            catch_up(app, view, derive_runs="none")
            closed = [row for row in list_runs(view) if row.closed]
            assert len(closed) >= 2
            broken = closed[0]
            recorder = app.recorder
            assert isinstance(recorder, SQLApplicationRecorder)
            events = recorder.tables.events
            with recorder.datastore.transaction(write=True) as conn:
                conn.execute(
                    sa.update(events)
                    .where(events.c.originator_id == broken.key.aggregate_id)
                    .where(events.c.originator_version == broken.last_event_id)
                    .values(state=b"{not json")
                )
            catch_up(app, view)
            rows = {row.key.aggregate_id: row for row in list_runs(view)}
            assert rows[broken.key.aggregate_id].findings == 1
            assert [f.rule for f in list_findings(view, workflow_id=broken.workflow_id)] == [
                UNREADABLE_RULE
            ]
            assert rows[broken.key.aggregate_id].state_transitions is None
            for row in closed[1:]:
                assert rows[row.key.aggregate_id].state_transitions is not None
    finally:
        app.close()
