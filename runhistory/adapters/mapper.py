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
from runhistory.domain.event_base import HistoryEvent, HistoryStarted
from runhistory.domain.run_key import RunKey

__all__ = ["RUN_KEY_FIELD", "HistoryMapper"]

RUN_KEY_FIELD = "runKey"


class HistoryMapper(Mapper[UUID]):
    """History events <-> canonical JSON bytes; every other event (snapshots, an embedding
    application's own events) goes through eventsourcing's transcoder as usual."""

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        self._codec = EventCodec(strict=False)

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
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=state,
        )

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
