"""The queryable columns: read off history events exactly as the rules in
`runhistory.stores.columns` say (checked against a plain reference implementation on every real,
generated and odd event), filled in for every batch of a run, left empty for every other kind of
stored event, and shown with their attributes and JSON by the `<prefix>_history` view."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest
import sqlalchemy as sa
from eventsourcing.persistence import DataError, OperationalError, ProgrammingError, StoredEvent
from eventsourcing.utils import Environment

from runhistory.stores.columns import column_values, history_columns
from runhistory.stores.sql import Factory, normalise_url
from runhistory.stores.testing import (
    conformance_history_files,
    stored_run,
    synthesized_histories,
)
from tests.historygen import random_history
from tests.test_store_sql_support import SQLStore

KINDS = ["file", "memory", "postgres"]


def _reference(topic: str, state: bytes) -> Any:
    """The columns by the rules, read the plain way: what `column_values` must return."""
    if not topic.startswith("runhistory:") or state[:1] != b"{":
        return None
    try:
        doc = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    try:
        event_id = int(doc.get("eventId", 0))
    except (TypeError, ValueError, OverflowError):
        event_id = 0
    if not -(2**63) <= event_id < 2**63:
        event_id = 0
    event_type = str(doc.get("eventType", "")).removeprefix("EVENT_TYPE_")
    when = None
    text = doc.get("eventTime")
    if isinstance(text, str) and len(text) >= 20:
        head, _, frac = text.rstrip("Zz").partition(".")
        try:
            micros = int((frac + "000000")[:6]) if frac else 0
            t = datetime.fromisoformat(head).replace(microsecond=micros)
            when = (
                f"{t.year:04}-{t.month:02}-{t.day:02} "
                f"{t.hour:02}:{t.minute:02}:{t.second:02}.{t.microsecond:06}"
            )
        except ValueError:
            pass
    words = event_type.split("_")
    named = words[0].lower() + "".join(w.capitalize() for w in words[1:]) + "EventAttributes"
    if named.isascii() and named.isalnum() and isinstance(doc.get(named), dict):
        attributes_key: str | None = named
    else:
        attributes_key = next(
            (
                k
                for k, v in doc.items()
                if k.endswith("EventAttributes")
                and k.isascii()
                and k.isalnum()
                and isinstance(v, dict)
            ),
            None,
        )
    key = doc.get("runKey")
    run_key = None
    if isinstance(key, dict):
        run_key = (
            str(key.get("namespace", "default")),
            str(key.get("workflowId", "")),
            str(key.get("runId", "")),
        )
    return event_id, event_type, when, attributes_key, run_key


def _check(topic: str, state: bytes) -> None:
    """`column_values` and `history_columns` both read what the reference reads."""
    expected = _reference(topic, state)
    assert column_values(topic, state) == expected
    columns = history_columns(topic, state)
    if expected is None:
        assert columns is None
        return
    assert columns is not None
    event_id, event_type, when, attributes_key, run_key = expected
    assert (columns.event_id, columns.event_type, columns.attributes_key) == (
        event_id,
        event_type,
        attributes_key,
    )
    if when is None:
        assert columns.event_time is None
    else:
        assert columns.event_time == datetime.fromisoformat(when + "+00:00")
    doc = orjson.loads(state)
    assert columns.document == doc
    assert columns.attributes == (doc[attributes_key] if attributes_key else None)
    key = columns.run_key
    assert (None if key is None else (key.namespace, key.workflow_id, key.run_id)) == run_key


def _all_stored_events() -> Iterator[StoredEvent]:
    sources: list[Any] = [*conformance_history_files(), *synthesized_histories()]
    sources += [random_history(seed) for seed in range(40)]
    for source in sources:
        yield from stored_run(source)[1]


def test_columns_follow_the_rules_on_every_real_and_generated_event() -> None:
    count = 0
    canonical = 0
    for stored in _all_stored_events():
        _check(stored.topic, stored.state)
        values = column_values(stored.topic, stored.state)
        assert values is not None and values[3] is not None  # every real event has attributes
        canonical += stored.state.startswith(b'{"eventId":"')
        count += 1
    assert count > 2000
    assert canonical == count


def _doc(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "eventId": "7",
        "eventTime": "2026-11-22T01:57:32.665010397Z",
        "eventType": "EVENT_TYPE_TIMER_FIRED",
        "taskId": "9",
        "timerFiredEventAttributes": {"timerId": "t", "startedEventId": "5"},
    }
    doc.update(changes)
    return orjson.dumps({k: v for k, v in doc.items() if v is not None})


ODD_STATES = {
    "no fraction": _doc(eventTime="2026-11-22T01:57:32Z"),
    "short fraction": _doc(eventTime="2026-11-22T01:57:32.5Z"),
    "millis": _doc(eventTime="2026-11-22T01:57:32.123Z"),
    "micros": _doc(eventTime="2026-11-22T01:57:32.123456Z"),
    "ten digits": _doc(eventTime="2026-11-22T01:57:32.1234567891Z"),
    "empty fraction": _doc(eventTime="2026-11-22T01:57:32.Z"),
    "lower-case z": _doc(eventTime="2026-11-22T01:57:32.1z"),
    "offset": _doc(eventTime="2026-11-22T01:57:32.123+01:00"),
    "offset, no fraction": _doc(eventTime="2026-11-22T01:57:32+01:00"),
    "impossible date": _doc(eventTime="2026-13-45T01:57:32.1Z"),
    "leap second": _doc(eventTime="2016-12-31T23:59:60.5Z"),
    "hour 24": _doc(eventTime="2026-11-22T24:00:00.0Z"),
    "year 999": _doc(eventTime="0999-11-22T01:57:32.1Z"),
    "29 February, not a leap year": _doc(eventTime="2026-02-29T01:57:32.665010397Z"),
    "29 February, a leap year": _doc(eventTime="2028-02-29T01:57:32.665010397Z"),
    "31 April": _doc(eventTime="2026-04-31T01:57:32.665010397Z"),
    "31 May": _doc(eventTime="2026-05-31T01:57:32.665010397Z"),
    "year 0": _doc(eventTime="0000-01-05T01:57:32.665010397Z"),
    "month 0": _doc(eventTime="2026-00-05T01:57:32.665010397Z"),
    "day 0": _doc(eventTime="2026-01-00T01:57:32.665010397Z"),
    "space separator": _doc(eventTime="2026-11-22 01:57:32.1Z"),
    "basic format": _doc(eventTime="20261122T015732.123456Z"),
    "unicode digits": _doc(eventTime="2026-11-22T01:57:32.\u0663Z"),
    "unicode digit in the date": _doc(eventTime="2026-11-2\u0662T01:57:32.1Z"),
    "superscript digit": _doc(eventTime="2026-11-22T01:57:32.\u00b2Z"),
    "sign in the fraction": _doc(eventTime="2026-11-22T01:57:32.-5Z"),
    "not a string": _doc(eventTime=12),
    "no time": _doc(eventTime=None),
    "numeric event id": _doc(eventId=7),
    "float event id": _doc(eventId=7.9),
    "boolean event id": _doc(eventId=True),
    "bad event id": _doc(eventId="x7"),
    "signed event id": _doc(eventId="-7"),
    "padded event id": _doc(eventId=" 7 "),
    "underscored event id": _doc(eventId="7_0"),
    "unicode event id": _doc(eventId="\u0667"),
    "long event id": _doc(eventId="1" * 25),
    "huge event id": _doc(eventId="9" * 5000),
    "int64 event id": _doc(eventId=str(2**63 - 1)),
    "event id past int64": _doc(eventId=str(2**63)),
    "negative int64 event id": _doc(eventId=str(-(2**63))),
    "empty event id": _doc(eventId=""),
    "no event type prefix": _doc(eventType="TIMER_FIRED"),
    "no event type": _doc(eventType=None),
    "null event type": _doc().replace(b'"EVENT_TYPE_TIMER_FIRED"', b"null"),
    "numeric event type": _doc(eventType=5),
    "attributes not an object": _doc(timerFiredEventAttributes=[1]),
    "two attribute objects": _doc(aEventAttributes={"a": 1}),
    "another attribute object first": orjson.dumps(
        {
            "eventType": "EVENT_TYPE_TIMER_FIRED",
            "aEventAttributes": {},
            "timerFiredEventAttributes": {},
        }
    ),
    "the named key not an object": orjson.dumps(
        {
            "eventType": "EVENT_TYPE_TIMER_FIRED",
            "timerFiredEventAttributes": 1,
            "bEventAttributes": {},
        }
    ),
    "a type that names no plain key": orjson.dumps(
        {"eventType": "EVENT_TYPE_A.B", "a.bEventAttributes": {}, "cEventAttributes": {}}
    ),
    "an empty type": orjson.dumps({"eventType": "", "EventAttributes": {}}),
    "a lower-case type": _doc(eventType="timer_fired"),
    "a non-object candidate first": orjson.dumps(
        {"eventId": "1", "xEventAttributes": 1, "yEventAttributes": {"a": 1}}
    ),
    "a key that is not a plain name": orjson.dumps(
        {"eventId": "1", "a.bEventAttributes": {}, "c_dEventAttributes": {}}
    ),
    "duplicate event id": _doc()[:-1] + b',"eventId":"8"}',
    "duplicate attributes key": _doc()[:-1] + b',"timerFiredEventAttributes":5}',
    "nested event id": _doc(links=[{"eventRef": {"eventId": "3", "eventType": "X"}}]),
    "run key": _doc(runKey={"workflowId": "w", "runId": "r"}),
    "run key not an object": _doc(runKey="w/r"),
    "run key of numbers": _doc(runKey={"namespace": 1, "workflowId": 2, "runId": None}),
    "truncated": _doc()[:-2],
    "trailing bytes": _doc() + b"{}",
    "not UTF-8": _doc(taskId="\u00e9").replace(b"\xc3\xa9", b"\xe9"),
    "an array": b"[1]",
    "empty object": b"{}",
}


@pytest.mark.parametrize("state", ODD_STATES.values(), ids=ODD_STATES.keys())
def test_columns_follow_the_rules_off_the_canonical_shape(state: bytes) -> None:
    _check("runhistory:TimerFired", state)


def test_columns_follow_the_rules_on_mutated_times_and_ids() -> None:
    """Random edits of the canonical event id and time, near the shape the fast branch reads."""
    rng = random.Random(20261122)
    alphabet = "0123456789-T:.Zz +\u0663x"
    base_time = "2026-11-22T01:57:32.665010397Z"
    for _ in range(4000):
        text = list(base_time)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            i = rng.randrange(len(text) + 1)
            if op < 0.5 and i < len(text):
                text[i] = rng.choice(alphabet)
            elif op < 0.75:
                text.insert(i, rng.choice(alphabet))
            elif text:
                del text[min(i, len(text) - 1)]
        event_id = "".join(rng.choice("0123456789 -x") for _ in range(rng.randint(0, 20)))
        _check("runhistory:TimerFired", _doc(eventTime="".join(text), eventId=event_id))


def test_columns_follow_the_rules_on_every_kind_of_date() -> None:
    """Canonical times on real and unreal dates: the fast branch asks about days past the 28th."""
    rng = random.Random(7)
    for _ in range(3000):
        year, month, day = rng.randint(0, 2400), rng.randint(0, 13), rng.randint(0, 32)
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        text = f"{year:04}-{month:02}-{day:02}T{rng.randint(0, 24):02}:{rng.randint(0, 60):02}"
        text += f":{rng.randint(0, 60):02}.{digits}Z"
        _check("runhistory:TimerFired", _doc(eventTime=text))


@pytest.mark.parametrize(
    ("topic", "state"),
    [
        ("myapp:Deposited", b'{"amount": 5}'),
        ("runhistory:TimerFired", zlib.compress(_doc())),
        ("runhistory:TimerFired", b"{not json"),
        ("eventsourcing.domain:Snapshot", b"{}"),
    ],
)
def test_other_events_have_no_columns(topic: str, state: bytes) -> None:
    assert column_values(topic, state) is None
    assert history_columns(topic, state) is None


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    opened = SQLStore(request.param)
    yield opened
    opened.close()


def _rows(factory: Factory, run_id: Any) -> list[Any]:
    """A run's rows in the history view: its key (from the runs table) and its columns."""
    view = sa.table(
        factory.tables.history_view,
        sa.column("originator_id", sa.Uuid()),
        sa.column("originator_version", sa.BigInteger()),
        sa.column("namespace", sa.Text()),
        sa.column("workflow_id", sa.Text()),
        sa.column("run_id", sa.Text()),
        sa.column("event_id", sa.BigInteger()),
        sa.column("event_type", sa.Text()),
        sa.column("event_time", sa.DateTime(timezone=True)),
    )
    c = view.c
    query = (
        sa.select(c.namespace, c.workflow_id, c.run_id, c.event_id, c.event_type, c.event_time)
        .where(c.originator_id == run_id)
        .order_by(c.originator_version)
    )
    with factory.datastore.engine.connect() as conn:
        return list(conn.execute(query))


def test_every_batch_of_a_run_gets_its_key_from_the_runs_table(store: SQLStore) -> None:
    history = synthesized_histories()[3]
    run_id, events = stored_run(history, namespace="ns-é")
    fresh = store.factory()
    fresh.application_recorder().insert_events(events[:5])
    fresh.application_recorder().insert_events(events[5:])  # a new recorder: nothing cached
    rows = _rows(fresh, run_id)
    workflow_id = history["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    assert {row[:3] for row in rows} == {("ns-é", workflow_id, "run-4")}
    assert [row.event_id for row in rows] == list(range(1, len(events) + 1))
    assert rows[0].event_type == "WORKFLOW_EXECUTION_STARTED"
    text = history["events"][0]["eventTime"]  # nanoseconds, truncated to microseconds
    assert rows[0].event_time.replace(tzinfo=UTC) == datetime.fromisoformat(text[:26] + "+00:00")
    with fresh.datastore.engine.connect() as conn:
        runs = list(conn.execute(sa.select(fresh.tables.runs)))
    assert runs == [(run_id, "ns-é", workflow_id, "run-4")]


def test_a_run_stored_without_its_started_event_has_no_key(store: SQLStore) -> None:
    run_id, events = stored_run(synthesized_histories()[1])
    factory = store.factory()
    factory.application_recorder().insert_events(events[1:])  # versions need not start at 1
    rows = _rows(factory, run_id)
    assert [row.event_id for row in rows] == list(range(2, len(events) + 1))
    assert {row[:3] for row in rows} == {(None, None, None)}


def test_other_events_are_stored_with_empty_columns(store: SQLStore) -> None:
    factory = store.factory()
    originator = uuid4()
    factory.application_recorder().insert_events(
        [StoredEvent(originator, 1, "myapp:Opened", b"{}")]
    )
    events = factory.tables.events
    query = sa.select(
        events.c.event_id, events.c.event_type, events.c.event_time, events.c.attributes_key
    ).where(events.c.originator_id == originator)
    with factory.datastore.engine.connect() as conn:
        assert list(conn.execute(query)) == [(None,) * 4]
    assert _rows(factory, originator) == []  # and not in the history view


def _history_rows(factory: Factory, where: str, **params: Any) -> list[Any]:
    view = factory.tables.history_view
    query = sa.text(
        f"SELECT event_id, event_type, attributes_key, attributes, event FROM {view} "
        f"WHERE {where} ORDER BY notification_id"
    )
    with factory.datastore.engine.connect() as conn:
        return list(conn.execute(query, params))


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value  # SQLite: text; PG: jsonb


def test_the_history_view_shows_each_events_attributes_and_json(store: SQLStore) -> None:
    history = synthesized_histories()[2]
    _, events = stored_run(history)
    factory = store.factory()
    recorder = factory.application_recorder()
    recorder.insert_events(events[:3])
    recorder.insert_events(events[3:])
    other = [
        StoredEvent(uuid4(), 1, "myapp:Opened", b"{}"),
        StoredEvent(uuid4(), 1, "runhistory:TimerFired", zlib.compress(_doc())),
        StoredEvent(uuid4(), 1, "runhistory:TimerFired", b"{not json"),
        StoredEvent(uuid4(), 1, "runhistory:TimerFired", b"\xff{"),
    ]
    recorder.insert_events(other)
    workflow_id = history["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    rows = _history_rows(factory, "workflow_id = :wid", wid=workflow_id)
    assert len(rows) == len(events)
    for row, stored in zip(rows, events, strict=True):
        doc = orjson.loads(stored.state)
        key = next(k for k in doc if k.endswith("EventAttributes"))
        assert row.event_id == stored.originator_version
        assert row.event_type == doc["eventType"].removeprefix("EVENT_TYPE_")
        assert row.attributes_key == key
        assert _json(row.attributes) == doc[key]
        assert _json(row.event) == doc
    # Only history events are in the view, and the other rows never reach its JSON functions,
    # whatever a query asks of them.
    everything = _history_rows(factory, "1 = 1")
    assert len(everything) == len(events)
    if store.kind == "postgres":
        probe = "attributes ->> 'nothing' IS NULL AND event ->> 'eventId' IS NOT NULL"
    else:
        probe = "json_extract(attributes, '$.nothing') IS NULL AND json(event) IS NOT NULL"
    assert len(_history_rows(factory, probe)) == len(events)


def _index_names(factory: Factory) -> set[str]:
    with factory.datastore.engine.connect() as conn:
        indexes = sa.inspect(conn).get_indexes(factory.tables.events.name)
    # PostgreSQL also lists the unique constraint's index.
    return {str(index["name"]) for index in indexes if not index.get("unique")}


def test_audit_indexes_are_made_only_when_asked_for(store: SQLStore) -> None:
    plain = store.factory()
    plain.application_recorder()
    events = plain.tables.events.name
    assert _index_names(plain) == set()
    audited = store.factory(RUNHISTORY_SQL_AUDIT_INDEXES="yes")  # tables made already, if a file
    audited.application_recorder().insert_events(stored_run(synthesized_histories()[0])[1])
    assert _index_names(audited) == {f"{events}_event_type_idx", f"{events}_event_time_idx"}


def test_a_missing_or_outdated_history_view_is_made_again(store: SQLStore) -> None:
    if store.kind == "memory":
        pytest.skip("each factory has its own in-memory database")
    factory = store.factory()
    factory.application_recorder().insert_events(stored_run(synthesized_histories()[0])[1])
    view = factory.tables.history_view
    with factory.datastore.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP VIEW {view}")
        if store.kind == "file":  # a view an older version made: replaced
            conn.exec_driver_sql(f"CREATE VIEW {view} AS SELECT 1 AS event_id")
    store.factory().application_recorder()
    assert len(_history_rows(factory, "1 = 1")) > 0


def test_an_originator_id_that_is_not_a_uuid_is_a_data_error(store: SQLStore) -> None:
    recorder = store.factory().application_recorder()
    with pytest.raises(DataError):
        recorder.insert_events([StoredEvent("not-a-uuid", 1, "t", b"")])


def test_tables_are_named_after_the_application_unless_a_prefix_is_set(store: SQLStore) -> None:
    env = {k: v for k, v in store.env.items() if k != "RUNHISTORY_SQL_TABLE_PREFIX"}
    factory = Factory(Environment(store.prefix.upper(), env))
    store.factories.append(factory)
    assert factory.tables.events.name == f"{store.prefix}_events"
    factory.application_recorder()
    factory.aggregate_recorder("snapshots")
    factory.tracking_recorder()
    with factory.datastore.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert {f"{store.prefix}_{t}" for t in ("events", "runs", "tracking", "snapshots")} <= names


def test_creating_tables_twice_is_harmless_and_can_be_turned_off(store: SQLStore) -> None:
    store.factory().process_recorder()
    store.factory().process_recorder()
    off = store.factory(RUNHISTORY_SQL_CREATE_TABLES="no", RUNHISTORY_SQL_TABLE_PREFIX="absent")
    off.application_recorder()
    with off.datastore.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("absent_events")


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgres_urls_get_the_psycopg_driver(url: str, driver: str) -> None:
    assert normalise_url(url).drivername == driver


def test_driver_errors_become_eventsourcing_errors(store: SQLStore) -> None:
    factory = store.factory(RUNHISTORY_SQL_CREATE_TABLES="no", RUNHISTORY_SQL_TABLE_PREFIX="gone")
    recorder = factory.application_recorder()
    # A missing table: sqlite3 calls that an OperationalError, PostgreSQL a ProgrammingError.
    expected = ProgrammingError if store.kind == "postgres" else OperationalError
    with pytest.raises(expected):
        recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"")])
    with pytest.raises(expected):
        recorder.select_notifications(None, 10)


def test_an_unreachable_database_is_an_operational_error() -> None:
    factory = Factory({"RUNHISTORY_SQL_URL": "postgresql://nobody@127.0.0.1:1/none"})
    with pytest.raises(OperationalError):
        factory.application_recorder()
    factory.close()
