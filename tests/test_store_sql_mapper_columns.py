"""Columns handed over by the mapper: the SQL store's factory asks `HistoryMapper` for each history
event's columns (`IndexedStoredEvent`), so an insert does not parse the JSON again. What it hands
over must be exactly what the store would read off the stored text, and the rows must not depend
on which way the columns came."""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from eventsourcing.cipher import AESCipher
from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder, StoredEvent, Transcoder
from eventsourcing.utils import Environment
from hypothesis import given
from hypothesis import strategies as st

from runhistory import RunHistory, load_history
from runhistory.adapters.mapper import HistoryMapper
from runhistory.domain.timeval import Timestamp
from runhistory.stores.columns import (
    IndexedStoredEvent,
    column_values,
    document_columns,
    time_column,
)
from runhistory.stores.testing import conformance_history_files, synthesized_histories
from tests.historygen import random_history
from tests.test_store_sql_support import SQLStore


def _domain_runs() -> Iterator[Sequence[Any]]:
    sources: list[Any] = [*conformance_history_files(), *synthesized_histories()]
    sources += [random_history(seed) for seed in range(40)]
    for source in sources:
        yield load_history(source, namespace="ns-é").collect_events()


@functools.cache
def _one_of_each_type() -> tuple[Any, ...]:
    """One event of each class that the real and generated histories hold."""
    seen: dict[type, Any] = {}
    for events in _domain_runs():
        for event in events:
            seen.setdefault(type(event), event)
    return tuple(seen.values())


def _mapper(transcoder: Transcoder | None = None, **kwargs: Any) -> HistoryMapper:
    mapper = HistoryMapper(transcoder=transcoder or JSONTranscoder(), **kwargs)
    mapper.store_columns = True
    return mapper


def test_the_mapper_hands_over_what_the_store_would_read_off_the_text() -> None:
    plain = HistoryMapper(transcoder=JSONTranscoder())
    indexed = _mapper()
    count = 0
    for events in _domain_runs():
        for event in events:
            stored = indexed.to_stored_event(event)
            assert type(stored) is IndexedStoredEvent
            assert stored.columns == column_values(stored.topic, stored.state)
            same = plain.to_stored_event(event)
            assert type(same) is StoredEvent
            assert (stored.originator_id, stored.originator_version, stored.topic) == (
                same.originator_id,
                same.originator_version,
                same.topic,
            )
            assert stored.state == same.state
            count += 1
    assert count > 2000


_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_nanos = st.integers(0, 999_999_999)
_edge_nanos = st.sampled_from([0, 1, 999, 1000, 999_999, 1_000_000, 999_999_999])


@given(
    st.one_of(
        st.integers(_MIN_SECONDS, _MAX_SECONDS),
        st.sampled_from([_MIN_SECONDS, _MAX_SECONDS, 0, -1, 951_782_400, 4_107_456_000]),
    ),
    st.one_of(_nanos, _edge_nanos),
)
def test_the_time_column_of_a_timestamp_is_the_one_read_off_its_text(
    seconds: int, nanos: int
) -> None:
    text = str(Timestamp(seconds, nanos))
    read = document_columns({"eventId": "1", "eventTime": text, "eventType": "X"})[2]
    assert time_column(seconds, nanos) == read
    assert time_column(seconds, nanos) == time_column(seconds, nanos)  # and again, cached


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (_MIN_SECONDS - 1, 0),
        (_MAX_SECONDS + 1, 0),
        (0, -1),
        (0, 1_000_000_000),
    ],
)
def test_a_time_with_no_canonical_text_has_no_time_column(seconds: int, nanos: int) -> None:
    assert time_column(seconds, nanos) is None


def _with(event: Any, **fields: Any) -> Any:
    values = dict(event.__dict__)
    values.update(fields)
    return type(event)(**values)


@given(st.integers(_MIN_SECONDS, _MAX_SECONDS), st.one_of(_nanos, _edge_nanos))
def test_the_mapper_reads_any_event_time_as_the_store_would(seconds: int, nanos: int) -> None:
    mapper = _mapper()
    for event in _one_of_each_type():
        stored = mapper.to_stored_event(_with(event, event_time=Timestamp(seconds, nanos)))
        assert isinstance(stored, IndexedStoredEvent)
        assert stored.columns == column_values(stored.topic, stored.state)


@pytest.mark.parametrize(
    "unknown",
    [
        {"eventTime": "2001-02-03T04:05:06.5Z"},
        {"eventTime": "not a time"},
        {"runKey": {"namespace": "n", "workflowId": "w", "runId": "r"}},
        {"somethingNew": 1},
    ],
)
def test_unknown_fields_that_shadow_a_column_are_read_as_the_store_would(
    unknown: dict[str, Any],
) -> None:
    mapper = _mapper()
    for event in _one_of_each_type():
        for _ in range(2):  # the first event of a class is read in full, later ones are not
            stored = mapper.to_stored_event(_with(event, unknown_fields=unknown))
            assert isinstance(stored, IndexedStoredEvent)
            assert stored.columns == column_values(stored.topic, stored.state)


def test_an_event_without_a_time_has_no_time_column() -> None:
    mapper = _mapper()
    for event in _one_of_each_type():
        for _ in range(2):
            stored = mapper.to_stored_event(_with(event, event_time=None))
            assert isinstance(stored, IndexedStoredEvent)
            assert stored.columns[2] is None
            assert stored.columns == column_values(stored.topic, stored.state)


def test_the_run_key_rides_in_the_started_events_columns() -> None:
    events = load_history(synthesized_histories()[2], namespace="ns-é").collect_events()
    mapper = _mapper()
    first, second = (mapper.to_stored_event(e) for e in events[:2])
    assert isinstance(first, IndexedStoredEvent) and isinstance(second, IndexedStoredEvent)
    assert first.columns[4] is not None and first.columns[4][0] == "ns-é"
    assert second.columns[4] is None


class _Compressor:
    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)


def test_a_compressed_or_encrypted_state_carries_no_columns() -> None:
    event = load_history(synthesized_histories()[0]).collect_events()[0]
    cipher = AESCipher(Environment(env={"CIPHER_KEY": AESCipher.create_key(16)}))
    for kwargs in ({"compressor": _Compressor()}, {"cipher": cipher}):
        stored = _mapper(**kwargs).to_stored_event(event)
        assert type(stored) is StoredEvent
        assert column_values(stored.topic, stored.state) is None


def test_only_the_sql_stores_factory_asks_for_the_columns(tmp_path: Any) -> None:
    mapper_topic = {"MAPPER_TOPIC": "runhistory.adapters.mapper:HistoryMapper"}
    sql = InfrastructureFactory.construct(
        env={
            **mapper_topic,
            "PERSISTENCE_MODULE": "runhistory.stores.sql",
            "RUNHISTORY_SQL_URL": f"sqlite:///{tmp_path / 'x.db'}",
        }
    )
    popo = InfrastructureFactory.construct(
        env={**mapper_topic, "PERSISTENCE_MODULE": "eventsourcing.popo"}
    )
    try:
        asked: Any = sql.mapper()
        assert isinstance(asked, HistoryMapper) and asked.store_columns
        left: Any = popo.mapper()
        assert isinstance(left, HistoryMapper) and not left.store_columns
        assert not HistoryMapper.store_columns  # the class default is untouched
    finally:
        sql.close()
        popo.close()


@pytest.fixture(params=["file", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[SQLStore]:
    opened = SQLStore(request.param)
    yield opened
    opened.close()


def _table_rows(store: SQLStore, prefix: str) -> tuple[list[Any], list[Any]]:
    """Every event row but its notification id, and every run row, in a fixed order."""
    factory = store.factory(RUNHISTORY_SQL_TABLE_PREFIX=prefix)
    tables = factory.tables
    events = tables.events
    columns = [c for c in events.c if c.name != "notification_id"]
    with factory.datastore.engine.connect() as conn:
        rows = list(conn.execute(sa.select(*columns).order_by(events.c.notification_id)))
        runs = sorted(conn.execute(sa.select(tables.runs)))
    return rows, runs


def test_the_rows_do_not_depend_on_how_the_columns_came(store: SQLStore) -> None:
    plain = HistoryMapper(transcoder=JSONTranscoder())
    indexed = _mapper()
    carried_prefix, parsed_prefix = store.prefix + "_c", store.prefix + "_p"
    carried = store.factory(RUNHISTORY_SQL_TABLE_PREFIX=carried_prefix).application_recorder()
    parsed = store.factory(RUNHISTORY_SQL_TABLE_PREFIX=parsed_prefix).application_recorder()
    for seed, events in enumerate(_domain_runs()):
        if seed % 7:  # a sample keeps this quick; the mapper test above sees every event
            continue
        carried.insert_events([indexed.to_stored_event(e) for e in events])
        parsed.insert_events([plain.to_stored_event(e) for e in events])
    expected = _table_rows(store, parsed_prefix)
    assert expected[0] and expected[1]
    assert _table_rows(store, carried_prefix) == expected  # both prefixes go with the store's


def test_an_import_stores_the_columns_of_each_events_text(store: SQLStore) -> None:
    app = RunHistory(env={**store.env, "PERSISTENCE_MODULE": "runhistory.stores.sql"})
    try:
        for source in synthesized_histories()[:3]:
            app.import_history(source, namespace="ns-é")
        factory = store.factory()
        events = factory.tables.events
        query = sa.select(
            events.c.topic,
            events.c.state,
            events.c.event_id,
            events.c.event_type,
            events.c.attributes_key,
        )
        with factory.datastore.engine.connect() as conn:
            rows = list(conn.execute(query))
    finally:
        app.close()
    assert len(rows) > 20
    for topic, state, event_id, event_type, attributes_key in rows:
        values = column_values(topic, bytes(state))
        assert values is not None
        assert (event_id, event_type, attributes_key) == (values[0], values[1], values[3])


def test_an_indexed_stored_event_is_a_frozen_stored_event_with_its_columns() -> None:
    columns = (3, "TIMER_FIRED", "2026-01-02 03:04:05.000006", "timerFiredEventAttributes", None)
    oid = uuid4()
    stored = IndexedStoredEvent(oid, 3, "runhistory:TimerFired", b"{}", columns)
    assert isinstance(stored, StoredEvent)
    assert (stored.originator_id, stored.originator_version, stored.topic, stored.state) == (
        oid,
        3,
        "runhistory:TimerFired",
        b"{}",
    )
    assert stored.columns == columns
    assert stored == IndexedStoredEvent(oid, 3, "runhistory:TimerFired", b"{}", columns)
    assert stored != dataclasses.replace(stored, originator_version=4)
    # Its own __init__ sets every field: one that eventsourcing adds to StoredEvent fails here.
    names = [f.name for f in dataclasses.fields(stored)]
    assert names == [f.name for f in dataclasses.fields(StoredEvent)] + ["columns"]
    assert all(hasattr(stored, name) for name in names)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.topic = "other"  # type: ignore[misc]
