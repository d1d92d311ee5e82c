"""The SQL store's import path: each batch size (PostgreSQL writes small batches with one
`INSERT ... unnest` and larger ones with `COPY`), the notification ids each returns, conflicts,
and the run row that rides along, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import orjson
import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, StoredEvent

from runhistory.stores.sql import Factory, SQLApplicationRecorder
from runhistory.stores.sql.events import COPY_MIN_ROWS
from tests.test_store_sql_support import SQLStore

SIZES = (1, COPY_MIN_ROWS - 1, COPY_MIN_ROWS, COPY_MIN_ROWS + 1, 300)


@pytest.fixture(params=["file", "memory", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    store = SQLStore(request.param)
    yield store
    store.close()


def _recorder(factory: Factory) -> SQLApplicationRecorder:
    recorder = factory.application_recorder()
    assert isinstance(recorder, SQLApplicationRecorder)
    return recorder


def _event(oid: UUID, version: int, run_key: dict[str, str] | None = None) -> StoredEvent:
    doc: dict[str, object] = {
        "eventId": str(version),
        "eventTime": "2025-03-04T05:06:07.123456789Z",
        "eventType": "EVENT_TYPE_ACTIVITY_TASK_FAILED",
        "activityTaskFailedEventAttributes": {"failure": {"message": f"boom {version}"}},
    }
    if run_key is not None:
        doc["runKey"] = run_key
    return StoredEvent(oid, version, "runhistory:ActivityTaskFailed", orjson.dumps(doc))


def _run(size: int, start: int = 1, run_key: dict[str, str] | None = None) -> list[StoredEvent]:
    oid = uuid4()
    return [_event(oid, v, run_key if v == start else None) for v in range(start, start + size)]


def test_every_batch_size_returns_the_ids_it_was_given_in_order(store: SQLStore) -> None:
    recorder = _recorder(store.factory())
    returned: list[int] = []
    for size in SIZES:  # the first batch also meets a sequence that never gave an id
        batch = _run(size)
        ids = recorder.insert_events(batch)
        assert ids is not None and len(ids) == size
        assert ids == list(range(ids[0], ids[0] + size))
        returned.extend(ids)
        stored = recorder.select_notifications(ids[0], limit=size + 1)
        assert [(n.id, n.originator_id, n.originator_version) for n in stored] == [
            (i, e.originator_id, e.originator_version) for i, e in zip(ids, batch, strict=True)
        ]
        assert [n.state for n in stored] == [e.state for e in batch]
    assert returned == sorted(returned)
    assert recorder.max_notification_id() == returned[-1]


@pytest.mark.parametrize("size", [2, COPY_MIN_ROWS, 300])
def test_a_conflicting_batch_of_any_size_writes_nothing(store: SQLStore, size: int) -> None:
    recorder = _recorder(store.factory())
    first = _run(size)
    recorder.insert_events(first)
    before = recorder.max_notification_id()
    oid = first[0].originator_id
    assert isinstance(oid, UUID)
    # New versions, then one that is already stored: the whole batch fails.
    clash = [_event(oid, v) for v in range(size + 1, 2 * size + 1)] + [_event(oid, size)]
    with pytest.raises(IntegrityError):
        recorder.insert_events(clash)
    assert recorder.max_notification_id() == before
    assert len(recorder.select_events(oid)) == size
    # The store is usable afterwards, and ids go on from where they were.
    more = recorder.insert_events([_event(oid, v) for v in range(size + 1, 2 * size + 1)])
    assert more is not None and more[0] > (before or 0)
    assert len(recorder.select_events(oid)) == 2 * size


@pytest.mark.parametrize("size", [1, COPY_MIN_ROWS, 50])
def test_the_run_row_of_any_batch_is_written_exactly(store: SQLStore, size: int) -> None:
    factory = store.factory()
    recorder = _recorder(factory)
    key = {"namespace": "n's \\ ns", "workflowId": "it's a \\' quote \"", "runId": "r\u00e9\n1"}
    batch = _run(size, run_key=key)
    recorder.insert_events(batch)
    assert recorder.insert_events([]) == []
    view = factory.tables.history_view
    query = sa.text(
        f"SELECT namespace, workflow_id, run_id, event_id, event_time FROM {view} "
        "WHERE originator_id = :oid ORDER BY event_id"
    ).bindparams(sa.bindparam("oid", type_=sa.Uuid()))
    with factory.datastore.engine.connect() as conn:
        rows = conn.execute(query, {"oid": batch[0].originator_id}).all()
    # The event time too (PostgreSQL binds it as a datetime, by COPY or in an array).
    assert [(*r[:4], str(r[4])[:26]) for r in rows] == [
        (key["namespace"], key["workflowId"], key["runId"], v, "2025-03-04 05:06:07.123456")
        for v in range(1, size + 1)
    ]
