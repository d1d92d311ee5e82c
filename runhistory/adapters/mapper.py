"""An eventsourcing Mapper that stores history events as canonical Temporal event JSON.

Any store then holds exactly what Temporal wrote (a files store can show it to a person, a SQL
store can index it), and the run's key rides along on its started event as `runKey`, because
Temporal's own event does not carry the namespace (nor, for a reset run, the run id)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Cipher, Compressor, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from runhistory.adapters.codec import EventCodec
from runhistory.domain.errors import MalformedHistory
from runhistory.domain.event_base import HistoryEvent, HistoryStarted, UnknownEvent
from runhistory.domain.run_key import RunKey
from runhistory.stores.columns import (
    HISTORY_TOPIC_PREFIX,
    ColumnValues,
    IndexedStoredEvent,
    document_columns,
    document_head,
    id_column,
    time_column,
)

__all__ = ["RUN_KEY_FIELD", "HistoryMapper"]

RUN_KEY_FIELD = "runKey"


class HistoryMapper(Mapper[UUID]):
    """History events <-> canonical JSON bytes; every other event (snapshots, an embedding
    application's own events) goes through eventsourcing's transcoder as usual.

    With `store_columns` set (the SQL store's factory sets it) a history event stored as plain
    JSON comes out as an `IndexedStoredEvent`, its queryable columns read off the object before
    it is serialised, so the store does not parse the text again."""

    store_columns: bool = False

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        self._codec = EventCodec(strict=False)
        # Per event class, the type and attributes key its events' JSON is read to have: the
        # codec writes the same `eventType` for every event of a class (but `UnknownEvent`).
        self._class_heads: dict[type, tuple[str, str | None]] = {}

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not isinstance(domain_event, HistoryEvent):
            return super().to_stored_event(domain_event)
        doc = self._codec.encode(domain_event)
        if isinstance(domain_event, HistoryStarted) and domain_event.run_key is not None:
            key = domain_event.run_key
            doc[RUN_KEY_FIELD] = {
                "namespace": key.namespace,
                "workflowId": key.workflow_id,
                "runId": key.run_id,
            }
        try:
            state = orjson.dumps(doc)
        except orjson.JSONEncodeError as e:  # e.g. a lone surrogate, which is not text
            raise MalformedHistory(
                f"cannot store the event as JSON: {e}", event_id=domain_event.originator_version
            ) from None
        topic = get_topic(type(domain_event))
        if self.compressor or self.cipher:
            if self.compressor:
                state = self.compressor.compress(state)
            if self.cipher:
                state = self.cipher.encrypt(state)
        elif self.store_columns and topic.startswith(HISTORY_TOPIC_PREFIX):
            return IndexedStoredEvent(
                domain_event.originator_id,
                domain_event.originator_version,
                topic,
                state,
                self._columns(doc, domain_event),
            )
        return StoredEvent(
            domain_event.originator_id, domain_event.originator_version, topic, state
        )

    def _columns(self, doc: dict[str, Any], event: HistoryEvent) -> ColumnValues:
        """`document_columns(doc)`, without reading again what the codec wrote from known
        values: per event class its type and attributes key, `eventId` from the version and
        `eventTime` from the event's Timestamp. Unknown fields (which the codec writes last, so
        they could stand in for any key) and the started event's key are read from `doc`."""
        cls = type(event)
        known = self._class_heads.get(cls)
        if known is None:
            _, event_type, named = document_head(doc)
            if cls is not UnknownEvent:
                self._class_heads[cls] = event_type, named
            return document_columns(doc)
        event_id = id_column(event.originator_version)
        event_type, named = known
        stamp = event.event_time
        when = None if stamp is None else time_column(stamp.seconds, stamp.nanos)
        if (
            (when is None and stamp is not None)
            or event.unknown_fields
            or named is None
            or RUN_KEY_FIELD in doc
            or type(doc.get(named)) is not dict
        ):
            return document_columns(doc, (event_id, event_type, named))
        return event_id, event_type, when, named, None

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        if not (isinstance(cls, type) and issubclass(cls, HistoryEvent)):
            return super().to_domain_event(stored_event)
        state = stored_event.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        doc: dict[str, Any] = orjson.loads(state)
        key = doc.pop(RUN_KEY_FIELD, None)
        originator_id = stored_event.originator_id
        if not isinstance(originator_id, UUID):
            originator_id = UUID(str(originator_id))
        event = self._codec.decode(doc, originator_id=originator_id)
        if key is not None and isinstance(event, HistoryStarted):
            fields = dict(event.__dict__)
            fields["run_key"] = RunKey(key["workflowId"], key["runId"], key["namespace"])
            event = type(event)(**fields)
        return event
