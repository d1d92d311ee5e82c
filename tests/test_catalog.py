"""The runs catalog: every column agrees with the pure projections of its run, each event is
applied exactly once, and a catch-up interrupted anywhere (or crashed) ends exactly where a fresh
rebuild does, on SQLite, the files store and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.persistence import IntegrityError
from eventsourcing.projection import ProjectionRunner

from runhistory.app import RunHistory
from runhistory.domain.run import WorkflowRun
from runhistory.projections import (
    audit,
    chain_links,
    describe,
    findings,
    history_size_bytes,
    pending,
    state_transitions,
)
from runhistory.projections.catalog import (
    CatalogProjection,
    CatalogView,
    PositionMoved,
    RunRow,
    catch_up,
    default_view_url,
    derive,
    follow,
    list_audit,
    list_findings,
    list_runs,
    open_view,
)
from runhistory.projections.catalog.view import UNCHECKED
from tests.test_catalog_support import (
    checkpoints,
    fill,
    real_histories,
    renumbered,
    view_content,
)
from tests.test_store_sql_support import POSTGRES_URL, postgres_unavailable, unique_prefix


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[RunHistory]:
    app = RunHistory.open(f"sqlite:///{tmp_path / 'runs.db'}")
    yield app
    app.close()


def _import_all(app: RunHistory, docs: list[tuple[str, dict[str, Any]]]) -> None:
    for _, doc in docs:
        app.import_history(doc)


def _time(value: Any) -> Any:
    from runhistory.domain.timeval import Timestamp

    if value is None:
        return None
    return (Timestamp.parse(value) if isinstance(value, str) else value).to_datetime()


def assert_row_matches_run(row: RunRow, run: WorkflowRun) -> None:
    """Every column of a run's row, against the pure projections of the run itself."""
    label = str(row.key)
    described = describe(run)
    info = described["workflowExecutionInfo"]
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_" + row.status, label
    assert info["historyLength"] == str(row.history_length), label
    assert row.last_event_id == row.history_length == run.durable_length, label
    assert row.close_time == _time(info.get("closeTime")), label
    assert row.start_time == _time(run.history[0].event_time), label
    assert row.workflow_type == info.get("type", {}).get("name"), label
    assert row.task_queue == info.get("taskQueue"), label
    last = run.history[run.durable_length - 1]
    assert (row.last_task_id, row.last_event_time) == (last.task_id, _time(last.event_time))

    work = pending(run, at_close=True)
    assert row.pending_activities == len(work.activities), label
    assert row.pending_activities == len(described.get("pendingActivities", [])), label
    assert row.pending_children == len(work.children), label
    assert row.pending_children == len(described.get("pendingChildren", [])), label
    assert row.pending_nexus_operations == len(work.nexus_operations), label
    assert row.pending_nexus_operations == len(described.get("pendingNexusOperations", [])), label
    assert row.pending_timers == len(work.timers), label
    assert row.pending_updates == len(work.updates), label
    assert row.pending_external_signals == len(work.external_signals), label
    assert row.pending_external_cancels == len(work.external_cancels), label
    task = work.workflow_task
    assert row.pending_workflow_task == (task.state if task is not None else None), label
    described_task = described.get("pendingWorkflowTask")
    if row.pending_workflow_task in ("SCHEDULED", "STARTED"):
        assert described_task is not None, label
        assert described_task["state"].endswith(row.pending_workflow_task), label
    else:
        assert described_task is None, label
    if not run.is_closed:
        assert row.pending == len(pending(run)), label
    assert row.cancel_requested == ("cancelRequested" in described["workflowExtendedInfo"])

    links = chain_links(run)
    continued = [link for link in links.previous if link.reason != "reset"]
    resets = [link for link in links.previous if link.reason == "reset"]
    assert (row.continued_from_run_id, row.continued_from_reason) == (
        (continued[0].run_id, continued[0].reason) if continued else (None, None)
    ), label
    assert row.reset_from_run_id == (resets[-1].run_id if resets else None), label
    assert (row.next_run_id, row.next_reason) == (
        (links.next[0].run_id, links.next[0].reason) if links.next else (None, None)
    ), label
    assert row.first_run_id == links.first_run_id, label
    parent = info.get("parentExecution")
    assert row.parent_workflow_id == (parent or {}).get("workflowId"), label

    if row.derived:
        stc = state_transitions(run)
        assert (
            row.state_transitions,
            row.state_transitions_exact,
            row.state_transitions_lower,
            row.state_transitions_upper,
        ) == (stc.value, stc.exact, stc.lower, stc.upper), label
        assert info["stateTransitionCount"] == str(row.state_transitions), label
        assert row.history_size_bytes == history_size_bytes(run), label
        assert info["historySizeBytes"] == str(row.history_size_bytes), label
        assert row.findings == len(findings(run)), label


def assert_view_matches_store(app: RunHistory, view: CatalogView) -> None:
    rows = list_runs(view)
    assert sorted(r.key.aggregate_id for r in rows) == sorted(
        s.key.aggregate_id for s in app.runs()
    )
    found: dict[tuple[str, str, str], list[Any]] = {}
    for f in list_findings(view):
        found.setdefault((f.namespace, f.workflow_id, f.run_id), []).append(f)
    for row in rows:
        run = app.get(row.key)
        assert_row_matches_run(row, run)
        if row.closed:
            assert row.derived, f"{row.key}: a closed run is derived by catch_up"
        if row.derived:
            expected = [(f.rule, f.severity, tuple(f.event_ids), f.message) for f in findings(run)]
            got = found.get((row.namespace, row.workflow_id, row.run_id), [])
            assert [(f.rule, f.severity, f.event_ids, f.message) for f in got] == expected
            assert [f.seq for f in got] == list(range(1, len(got) + 1))
        entries = audit(run)
        rows_audit = sorted(
            list_audit(
                view, namespace=row.namespace, workflow_id=row.workflow_id, run_id=row.run_id
            ),
            key=lambda a: a.event_id,
        )
        assert [
            (
                a.event_id,
                a.time,
                a.action,
                a.identity,
                a.principal,
                a.reason,
                a.request_id,
                a.detail,
            )
            for a in rows_audit
        ] == [
            (
                e.event_id,
                _time(e.time),
                e.action,
                e.identity,
                e.principal,
                e.reason,
                e.request_id,
                e.detail,
            )
            for e in entries
        ], str(row.key)


def test_every_column_agrees_with_the_projections_of_open_and_closed_runs(
    sqlite_app: RunHistory,
) -> None:
    """Mid-run checkpoints first (open runs, some with a non-durable tail), then the final
    histories (the same runs grow and close, tails are superseded), caught up after each."""
    app = sqlite_app
    _import_all(app, checkpoints())
    for label, doc in checkpoints():  # without their tails: a transient attempt is owed
        durable = [e for e in doc["events"] if e.get("taskId", "0") != "0"]
        if len(durable) < len(doc["events"]):
            app.import_history(renumbered({"events": durable}, label))
    with open_view(app=app) as view:
        catch_up(app, view, batch=97, derive_runs="all")
        rows = list_runs(view)
        assert any(r.pending_workflow_task == "TRANSIENT" for r in rows)
        assert any(r.pending_workflow_task == "STARTED" for r in rows)
        for kind in ("activities", "timers", "updates", "nexus_operations", "children"):
            assert any(getattr(r, "pending_" + kind) for r in rows), kind
        assert any(r.tail_state is not None for r in _raw_rows(view)), "a tail was seen"
        assert_view_matches_store(app, view)
        _import_all(app, real_histories())
        catch_up(app, view, batch=500)
        rows = list_runs(view)
        assert {r.status for r in rows} >= {
            "COMPLETED",
            "FAILED",
            "TIMED_OUT",
            "CANCELED",
            "TERMINATED",
            "CONTINUED_AS_NEW",
        }
        assert any(r.next_run_id for r in rows) and any(r.reset_from_run_id for r in rows)
        assert any(r.continued_from_run_id for r in rows) and any(r.parent_run_id for r in rows)
        assert_view_matches_store(app, view)
        assert view.position(app.name) == app.recorder.max_notification_id()


def _raw_rows(view: CatalogView) -> list[Any]:
    with view.datastore.transaction(write=False) as conn:
        return list(conn.execute(view.catalog.runs.select()))


def _grow(app: RunHistory, step: int) -> None:
    """The store at several moments: checkpoints, then finals, then renumbered copies."""
    if step == 0:
        _import_all(app, checkpoints())
    elif step == 1:
        _import_all(app, real_histories(long=False))
    elif step == 2:
        fill(app, (renumbered(doc, "copy") for _, doc in real_histories()), namespace="other")


def test_an_interrupted_and_crashed_catch_up_ends_exactly_as_a_fresh_rebuild(
    sqlite_app: RunHistory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = sqlite_app
    url = f"sqlite:///{tmp_path / 'view.db'}"
    processed = 0
    crashes = 0
    for step in range(3):
        _grow(app, step)
        for chunk in range(4):  # a new runner (and view object) for every chunk, as after a crash
            with open_view(url) as view:
                if chunk == 2:  # crash in the middle of a batch: after the rows, before tracking
                    crashes += _crash_once(app, view, monkeypatch)
                processed += catch_up(
                    app, view, batch=13 + 7 * chunk, limit=150, derive_runs="none"
                )
                if chunk == 1:
                    derive(app, view)
    with open_view(url) as view:
        processed += catch_up(app, view, batch=50)
        assert catch_up(app, view) == 0  # nothing applied twice
        interrupted = view_content(view)
        assert view.position(app.name) == app.recorder.max_notification_id()
    assert crashes == 3
    assert processed == app.recorder.max_notification_id()

    with open_view(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        assert catch_up(app, fresh) == processed
        assert view_content(fresh) == interrupted
        assert_view_matches_store(app, fresh)


def _crash_once(app: RunHistory, view: CatalogView, monkeypatch: pytest.MonkeyPatch) -> int:
    original = CatalogView._insert_tracking

    def crash(self: CatalogView, conn: Any, tracking: Any) -> None:
        raise KeyboardInterrupt("the process dies before its tracking record is written")

    monkeypatch.setattr(CatalogView, "_insert_tracking", crash)
    before = view.position(app.name)
    try:
        with pytest.raises(KeyboardInterrupt):
            catch_up(app, view, batch=40, derive_runs="none")
    finally:
        monkeypatch.setattr(CatalogView, "_insert_tracking", original)
    assert view.position(app.name) == before  # the batch was rolled back whole
    return 1


def test_each_notification_is_applied_once(sqlite_app: RunHistory, tmp_path: Path) -> None:
    app = sqlite_app
    _import_all(app, real_histories(long=False)[:10])
    with open_view(f"sqlite:///{tmp_path / 'view.db'}") as view:
        catch_up(app, view, batch=25)
        position = view.position(app.name)
        assert position == app.recorder.max_notification_id()
        before = view_content(view)
        with pytest.raises(PositionMoved) as moved:  # a runner that had not seen the last batch
            view.apply_batch(app.name, [], position or 0, expected=(position or 0) - 25)
        assert moved.value.current == position
        with pytest.raises(IntegrityError):  # one event at a time: only ever forward
            view.apply_batch(app.name, [], position or 0, expected=UNCHECKED)
        assert view_content(view) == before
        # Two runners catching up the same view at once: each batch is applied by one of them.
        _import_all(app, real_histories(long=False)[10:])
        views = [open_view(f"sqlite:///{tmp_path / 'view.db'}") for _ in range(2)]
        threads = [
            threading.Thread(target=catch_up, args=(app, v), kwargs={"batch": 11}) for v in views
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for v in views:
            v.close()
        together = view_content(view)
    with open_view(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        catch_up(app, fresh)
        assert view_content(fresh) == together


def test_a_files_store_keeps_its_catalog_beside_it(sqlite_app: RunHistory, tmp_path: Path) -> None:
    files = RunHistory.open(f"file://{tmp_path / 'store'}")
    try:
        for app in (files, sqlite_app):
            _import_all(app, checkpoints())
            _import_all(app, real_histories())
        assert default_view_url(files) == f"sqlite:///{tmp_path / 'store' / 'catalog.db'}"
        assert catch_up(files, batch=300) == files.recorder.max_notification_id()
        assert (tmp_path / "store" / "catalog.db").exists()
        with open_view(app=files) as view:
            assert_view_matches_store(files, view)
            on_files = view_content(view)
        with open_view(app=sqlite_app) as view:
            catch_up(sqlite_app, view)
            on_sqlite = view_content(view)
        assert on_files == on_sqlite
    finally:
        files.close()


def test_an_encrypted_store_is_read_through_its_mapper(sqlite_app: RunHistory) -> None:
    key = AESCipher.create_key(16)
    secret = RunHistory.open(
        "memory://", CIPHER_TOPIC="eventsourcing.cipher:AESCipher", CIPHER_KEY=key
    )
    docs = real_histories(long=False)[:12]
    for app in (secret, sqlite_app):
        _import_all(app, docs)
    assert default_view_url(secret) == "sqlite:///:memory:"
    with open_view(app=secret) as view, open_view(app=sqlite_app) as plain:
        catch_up(secret, view)
        catch_up(sqlite_app, plain)
        assert view_content(view) == view_content(plain)
    secret.close()


@pytest.fixture
def postgres() -> Iterator[dict[str, str]]:
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    prefix = unique_prefix("cat")
    env = {"app": prefix + "_app", "view": prefix + "_view"}
    yield env
    import sqlalchemy as sa

    from runhistory.stores.sql import create_engine

    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith(prefix):
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def test_postgresql_as_the_store_and_as_the_view(
    postgres: dict[str, str], sqlite_app: RunHistory
) -> None:
    app = RunHistory.open(POSTGRES_URL, RUNHISTORY_SQL_TABLE_PREFIX=postgres["app"])
    try:
        for source in (app, sqlite_app):
            _import_all(source, checkpoints())
            _import_all(source, real_histories(long=False))
        assert default_view_url(app) is None  # the same database as the events
        with open_view(app=app, prefix=postgres["view"]) as view:
            catch_up(app, view, batch=64, limit=200, derive_runs="none")
            catch_up(app, view, batch=64)
            assert_view_matches_store(app, view)
            on_postgres = view_content(view)
        with open_view(app=sqlite_app) as view:
            catch_up(sqlite_app, view)
            on_sqlite = view_content(view)
        assert on_postgres == on_sqlite
        # A SQLite store's catalog kept in PostgreSQL.
        with open_view(POSTGRES_URL, prefix=postgres["view"] + "_x") as view:
            catch_up(sqlite_app, view, batch=100)
            assert view_content(view) == on_sqlite
            view.drop_tables()
    finally:
        app.close()


def test_eventsourcing_projection_runner_keeps_the_same_catalog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {"PERSISTENCE_MODULE": "runhistory.stores.sql", "RUNHISTORY_SQL_URL": url}
    docs = real_histories(long=False)[:8]
    with ProjectionRunner(
        application_class=RunHistory,
        projection_class=CatalogProjection,
        view_class=CatalogView,
        env=env,
    ) as runner:
        app = runner.app
        _import_all(app, checkpoints()[:6])
        _import_all(app, docs)
        runner.wait(app.recorder.max_notification_id(), timeout=30)
        view = runner.projection.view
        assert view.tables.prefix == "catalog"
        assert derive(app, view) > 0
        by_runner = view_content(view)
        with open_view(url, prefix="rebuilt") as fresh:
            catch_up(app, fresh)
            assert view_content(fresh) == by_runner
            assert_view_matches_store(app, view)


def test_follow_keeps_up_with_imports_until_stopped(sqlite_app: RunHistory) -> None:
    app = sqlite_app
    docs = real_histories(long=False)
    _import_all(app, docs[:5])
    stop = threading.Event()
    with open_view(app=app) as view:
        counted: list[int] = []
        thread = threading.Thread(
            target=lambda: counted.append(follow(app, view, stop, batch=20, poll_interval=0.05))
        )
        thread.start()
        try:
            for _, doc in docs[5:20]:
                app.import_history(doc)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if view.position(app.name) == app.recorder.max_notification_id() and all(
                    r.derived for r in list_runs(view, status="closed")
                ):
                    break
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not thread.is_alive()
        assert counted == [app.recorder.max_notification_id()]
        assert len(list_runs(view)) == 20
        assert_view_matches_store(app, view)


def test_queries_filter_runs_audit_and_findings(sqlite_app: RunHistory) -> None:
    app = sqlite_app
    docs = real_histories(long=False)
    _import_all(app, docs)
    fill(app, (renumbered(doc, "b") for _, doc in docs[:5]), namespace="b")
    with open_view(app=app) as view:
        catch_up(app, view)
        everything = list_runs(view)
        assert len(everything) == len(docs) + 5
        starts = [r.start_time for r in everything if r.start_time is not None]
        assert len(starts) == len(everything) and starts == sorted(starts)
        failed = list_runs(view, status="failed")
        assert failed and {r.status for r in failed} == {"FAILED"}
        assert list_runs(view, status="WORKFLOW_EXECUTION_STATUS_FAILED") == failed
        assert {r.status for r in list_runs(view, status="open")} <= {"RUNNING", "PAUSED"}
        assert len(list_runs(view, status="open")) + len(list_runs(view, status="closed")) == len(
            everything
        )
        assert {r.namespace for r in list_runs(view, namespace="b")} == {"b"}
        kind = everything[0].workflow_type
        assert {r.workflow_type for r in list_runs(view, workflow_type=kind)} == {kind}
        with pytest.raises(ValueError, match="unknown status"):
            list_runs(view, status="sleeping")
        signaled = list_audit(view, action="signaled")
        assert signaled and {a.action for a in signaled} == {"signaled"}
        assert len(list_audit(view, limit=3)) == 3
        errors = list_findings(view, severity="error")
        assert errors and {f.severity for f in errors} == {"error"}
        rule = errors[0].rule
        assert {f.rule for f in list_findings(view, rule=rule)} == {rule}


def test_the_pure_projections_do_not_import_the_catalog() -> None:
    probe = (
        "import sys, runhistory.projections;"
        "print(any(m.startswith('runhistory.projections.catalog') or m == 'sqlalchemy'"
        " for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
