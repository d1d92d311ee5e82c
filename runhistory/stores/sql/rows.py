"""Stored events -> insert rows, with the queryable columns: carried by an `IndexedStoredEvent`
(the mapper read them as it serialised the event), else read by
`runhistory.stores.columns.column_values` (one JSON parse per event)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DataError, StoredEvent

from runhistory.stores.columns import IndexedStoredEvent, RunKeyValues, column_values

__all__ = ["RowBuilder", "RunKey", "to_uuid"]

RunKey = RunKeyValues


def to_uuid(originator_id: UUID | str) -> UUID:
    """The originator id as a UUID: this store's `originator_id` column is a UUID."""
    if isinstance(originator_id, UUID):
        return originator_id
    try:
        return UUID(originator_id)
    except (TypeError, ValueError, AttributeError) as e:
        raise DataError(f"originator id {originator_id!r} is not a UUID") from e


class RowBuilder:
    """Builds insert rows for one dialect: a UUID as hex text (SQLite) or a `UUID`, and the
    event time as UTC text (SQLite) or an aware `datetime` (PostgreSQL's binary COPY). `flat`
    rows come as one list of every row's values in turn (the parameters of a multi-row
    `INSERT`), else as a list of tuples."""

    def __init__(self, *, uuid_as_hex: bool, time_as_datetime: bool, flat: bool = False) -> None:
        self._uuid_as_hex = uuid_as_hex
        self._time_as_datetime = time_as_datetime
        self._flat = flat

    def originator(self, originator_id: UUID | str) -> Any:
        uuid = to_uuid(originator_id)
        return uuid.hex if self._uuid_as_hex else uuid

    def build(self, stored_events: Sequence[StoredEvent]) -> tuple[list[Any], dict[UUID, RunKey]]:
        """The rows, and the runs whose started event (which carries the run's key) is in this
        batch."""
        rows: list[Any] = []
        append = rows.extend if self._flat else rows.append
        started: dict[UUID, RunKey] = {}
        as_hex = self._uuid_as_hex
        as_datetime = self._time_as_datetime
        parse_time = datetime.fromisoformat
        extract = column_values
        last: Any = None  # the previous event's originator id: batches are mostly one run
        oid: Any = None
        uuid: UUID | None = None
        indexed = IndexedStoredEvent
        for stored in stored_events:
            if stored.originator_id is not last:
                last = stored.originator_id
                uuid = to_uuid(last)
                oid = uuid.hex if as_hex else uuid
            if type(stored) is indexed:
                event_id, event_type, when, attrs, run_key = stored.columns
            else:
                columns = extract(stored.topic, stored.state)
                if columns is None:
                    append((oid, stored.originator_version, stored.topic, stored.state,
                            None, None, None, None))  # fmt: skip
                    continue
                event_id, event_type, when, attrs, run_key = columns
            if run_key is not None:
                assert uuid is not None
                started[uuid] = run_key
            time: Any = when
            if as_datetime and when is not None:
                time = parse_time(when + "+00:00")
            append((oid, stored.originator_version, stored.topic, stored.state,
                    event_id, event_type, time, attrs))  # fmt: skip
        return rows, started
