"""PostgreSQL connection loss in the middle of an import: a clear error, nothing half-written,
and a retry completes.

The importing connections carry a unique `application_name`, so a second connection can find
and `pg_terminate_backend` exactly them (and no other user of the server) while a transaction of
theirs is open. What reaches the caller is eventsourcing's `OperationalError` or
`InterfaceError` (both `PersistenceError`, PEP 249 names): the SQL store translates SQLAlchemy's
and psycopg's errors and keeps the driver's error as `__cause__`, so callers catch one family of
errors whatever the driver. Then every run is absent or complete (eventsourcing writes a run's
events in one transaction), and importing everything again with the *same* application completes
(the pool drops the dead connection and opens another).

`test_server_restart_mid_import` restarts the whole server (`pg_ctlcluster ... restart`), which
disrupts every other user of it: it runs only under `RUNHISTORY_LONG=1`. Every test skips, saying
so, only when no PostgreSQL server answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError

from runhistory.app import RunHistory
from runhistory.stores.sql import create_engine
from tests.reliability.support import LONG, check_store, open_store, renamed, small_histories
from tests.test_store_sql_support import POSTGRES_URL

RUNS = 400
BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


def _with_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


class _Importer(threading.Thread):
    """Imports the documents one by one until done or an error; keeps what happened."""

    def __init__(self, app: RunHistory, docs: list[Any]) -> None:
        super().__init__(daemon=True)
        self.app, self.docs = app, docs
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for doc in self.docs:
                self.app.import_history(doc)
                self.done += 1
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self.error = e


def _busy_backends(admin: sa.Engine, name: str) -> list[int]:
    """Pids of our importer's backends that are inside a statement or a transaction."""
    with admin.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
                " AND state IN ('active', 'idle in transaction')"
            ),
            {"name": name},
        )
        return [row[0] for row in rows]


def _terminate_when_busy(admin: sa.Engine, name: str, importer: _Importer, after: int) -> int:
    """Once `after` runs are done, terminate our backends whenever one is inside a statement or
    a transaction, until the importer stops; return how many were terminated.

    A kill that lands just after a transaction ended finds the connection back in the pool,
    where the pool's pre-ping replaces it unseen: that is a harmless loss, and the loop goes on
    until a kill lands inside a transaction, which the caller must see as an error."""
    kills = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and importer.is_alive():
        if importer.done >= after:
            pids = _busy_backends(admin, name)
            with admin.connect() as conn:
                for pid in pids:
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    kills += 1
                conn.commit()
        time.sleep(0.002)
    return kills


def _assert_clear_error(error: BaseException | None) -> None:
    assert error is not None, "the import went on as if nothing happened"
    # eventsourcing's own classes, not the driver's or SQLAlchemy's
    assert isinstance(error, (OperationalError, InterfaceError)), repr(error)
    assert type(error).__module__ == "eventsourcing.persistence", type(error)
    assert isinstance(error, PersistenceError) and str(error)


def _docs(label: str, count: int) -> list[Any]:
    histories = small_histories()
    return [renamed(histories[i % len(histories)][1], f"{label}-{i:05d}") for i in range(count)]


def _run_loss(disrupt: Callable[[sa.Engine, str, _Importer], int], docs: list[Any]) -> None:
    with open_store("postgres") as store:
        name = f"rh-loss-{uuid.uuid4().hex[:12]}"
        url = _with_name(store.url, name)
        app = RunHistory.open(url, **store.env)
        admin = create_engine(POSTGRES_URL)
        try:
            importer = _Importer(app, docs)
            importer.start()
            disrupted = disrupt(admin, name, importer)
            importer.join(300)
            assert not importer.is_alive()
            assert disrupted, "the import finished before it could be disrupted"
            _assert_clear_error(importer.error)
            first_line = str(importer.error).splitlines()[0]
            print(
                f"{disrupted} disruption(s); the error came after {importer.done} runs:"
                f" {type(importer.error).__name__}: {first_line}"
            )
            fresh = RunHistory.open(store.url, **store.env)
            complete, absent = check_store(fresh, docs)  # every run absent or complete
            assert complete >= importer.done and complete + absent == len(docs)
            fresh.close()
            # retry on the same application: the pool replaces the dead connection (the first
            # attempt may still meet one more dead pooled connection, hence two tries)
            for attempt in range(2):
                try:
                    for doc in docs:
                        app.import_history(doc)
                    break
                except PersistenceError as e:
                    if attempt:
                        raise
                    print(f"the first retry met a dead connection: {e!r}")
            assert check_store(app, docs) == (len(docs), 0)
        finally:
            app.close()
            admin.dispose()


def test_terminated_backend_mid_import_of_many_runs() -> None:
    _run_loss(lambda admin, name, imp: _terminate_when_busy(admin, name, imp, 50), _docs("m", RUNS))


def test_terminated_backend_mid_import_of_a_long_history() -> None:
    import orjson

    bench = BENCH / "long-history-50k.json.gz"
    if not bench.exists():
        pytest.skip(f"{bench} is not here")
    import gzip

    long_doc = orjson.loads(gzip.decompress(bench.read_bytes()))
    docs = [*_docs("l", 3), long_doc]
    # the first three runs are quick; the 50k-event run's save is one long transaction
    _run_loss(lambda admin, name, imp: _terminate_when_busy(admin, name, imp, 3), docs)


def _pg_restart_command() -> list[str] | None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]


def _restart_when_busy(admin: sa.Engine, name: str, importer: _Importer) -> int:
    command = _pg_restart_command()
    assert command is not None
    while importer.done < 50 and importer.is_alive():
        time.sleep(0.01)
    while importer.is_alive() and not _busy_backends(admin, name):
        time.sleep(0.001)
    admin.dispose()  # the restart ends the admin connections too
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    admin.dispose()
    return 1


@pytest.mark.skipif(not LONG, reason="restarts the PostgreSQL server: RUNHISTORY_LONG=1 only")
def test_server_restart_mid_import() -> None:
    if _pg_restart_command() is None:
        pytest.skip("no pg_ctlcluster here to restart the server")
    _run_loss(_restart_when_busy, _docs("r", RUNS))
