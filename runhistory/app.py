"""`RunHistory`: the eventsourcing application that imports, stores and exports runs.

The composition root: it ties the domain (WorkflowRun), the JSON adapter and mapper, and a
store chosen by URL: `memory://`, `sqlite:///path` (the default, `./runhistory.db`),
`postgresql://user@host/db` or `file:///dir`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application

from runhistory.adapters import temporal_describe  # noqa: F401  (registers its topics)
from runhistory.adapters.codec import EventCodec
from runhistory.adapters.history_json import HistorySource, gc_paused, load_history
from runhistory.adapters.mapper import RUN_KEY_FIELD
from runhistory.domain.errors import HistoryError
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.tail import RunTail, tail_id_of

__all__ = [
    "DEFAULT_STORE",
    "ImportResult",
    "RunConflict",
    "RunHistory",
    "RunNotFound",
    "RunSummary",
]

DEFAULT_STORE = "sqlite:///runhistory.db"
_STARTED_TOPIC = "runhistory:WorkflowExecutionStarted"


class _Batch:
    """Many events handed to `Application.save` as one object. eventsourcing checks each object
    it is given against a runtime Protocol (tens of microseconds each), so 50,000 loose events
    would cost seconds; one batch costs one check."""

    def __init__(self, run_id: UUID, events: Sequence[Any]) -> None:
        self.id = run_id
        self.version = events[-1].originator_version if events else 0
        self._events = list(events)

    def collect_events(self) -> list[Any]:
        events, self._events = self._events, []
        return events


def _replay(run: WorkflowRun | None, events: Iterable[Any]) -> WorkflowRun | None:
    """eventsourcing's projector without its per-event runtime Protocol assertion."""
    for event in events:
        run = event.mutate(run)
    return run


class RunNotFound(LookupError):
    """No stored run matches the workflow id (and run id) asked for."""


class RunConflict(HistoryError):
    """The stored run and the imported history disagree on an event both have."""

    code = "conflict"

    def __init__(self, key: RunKey, event_id: int) -> None:
        self.key = key
        self.event_id = event_id
        super().__init__(
            f"run {key}: event {event_id} differs from the stored one; nothing was written"
        )


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did: `appended` new events (0 when the run was already stored whole)."""

    key: RunKey
    events: int
    appended: int

    @property
    def created(self) -> bool:
        return self.appended == self.events


@dataclass(frozen=True, slots=True)
class RunSummary:
    key: RunKey
    workflow_type: str
    start_time: str
    notification_id: int


def store_env(url: str) -> dict[str, str]:
    """The eventsourcing environment that selects the store a URL names."""
    if url.startswith("memory://"):
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if url.startswith("file://"):
        return {
            "PERSISTENCE_MODULE": "runhistory.stores.files",
            "RUNHISTORY_FILES_PATH": url[len("file://") :] or ".",
        }
    if url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        return {"PERSISTENCE_MODULE": "runhistory.stores.sql", "RUNHISTORY_SQL_URL": url}
    raise ValueError(
        f"unsupported store URL {url!r}: use memory://, sqlite:///path, postgresql://... or file:///dir"
    )


class RunHistory(Application[UUID]):
    """Temporal run histories in an event store; each run is one WorkflowRun aggregate."""

    name = "runhistory"
    env: ClassVar[dict[str, str]] = {"MAPPER_TOPIC": "runhistory.adapters.mapper:HistoryMapper"}

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._codec = EventCodec()

    @classmethod
    def open(cls, url: str | None = None, **env: str) -> RunHistory:
        """Open the store a URL names (default: $RUNHISTORY_STORE, else ./runhistory.db)."""
        url = url or os.environ.get("RUNHISTORY_STORE") or DEFAULT_STORE
        return cls(env={**store_env(url), **env})

    def import_history(
        self,
        source: HistorySource,
        *,
        namespace: str = "default",
        strict: bool = True,
        workflow_id: str | None = None,
    ) -> ImportResult:
        """Validate and store one history. Idempotent: a run already stored whole changes
        nothing, a longer version of a stored run appends only the new events, and a history
        that disagrees with the stored run is refused with RunConflict, writing nothing."""
        run = load_history(source, strict=strict, workflow_id=workflow_id, namespace=namespace)
        key = run.key
        assert key is not None
        events = cast(Sequence[HistoryEvent], run.collect_events())
        durable = run.durable_length
        new_events, tail = events[:durable], events[durable:]
        stored = self._stored_count_if_same(run.id, new_events, key)
        if stored > len(new_events) and tail:
            raise RunConflict(key, tail[0].originator_version)
        fresh = new_events[stored:]
        to_save: list[Any] = [_Batch(run.id, fresh)] if fresh else []
        if tail:
            to_save.extend(self._tail_update(run.id, durable, tail))
        if to_save:
            self.save(*to_save)
        return ImportResult(key, len(new_events), len(fresh))

    def _stored_count_if_same(
        self, run_id: UUID, events: Sequence[HistoryEvent], key: RunKey
    ) -> int:
        """How many events of the run are stored, after checking each equals the new one.
        Compares stored bytes with the mapper's encoding: cheaper than decoding them."""
        stored = self.recorder.select_events(run_id)
        if self.mapper.cipher is not None:  # encryption is not deterministic: compare events
            decoded = self._stored_events(run_id)
            for old, new in zip(decoded, events, strict=False):
                if old != new:
                    raise RunConflict(key, new.originator_version)
            return len(decoded)
        for old_state, new in zip(stored, events, strict=False):
            if old_state.state != self.mapper.to_stored_event(new).state:
                raise RunConflict(key, new.originator_version)
        return len(stored)

    def _tail_update(self, run_id: UUID, after: int, tail: Sequence[HistoryEvent]) -> list[Any]:
        encode = self._codec.encode
        blob = orjson.dumps([encode(e) for e in tail]).decode()
        try:
            current: object = self.repository.get(tail_id_of(run_id))
        except AggregateNotFoundError:
            return [RunTail(run_id, after, blob)]
        assert isinstance(current, RunTail)
        if current.after_event_id != after or current.events_json != blob:
            current.replace(after, blob)
        return [current]

    def _tail_of(self, run_id: UUID, after: int) -> list[dict[str, Any]]:
        """The stored tail, if it still continues the stored durable events."""
        try:
            tail: object = self.repository.get(tail_id_of(run_id))
        except AggregateNotFoundError:
            return []
        assert isinstance(tail, RunTail)
        return tail.events() if tail.after_event_id == after else []

    def append(self, key: RunKey, events: Iterable[Mapping[str, Any] | HistoryEvent]) -> int:
        """Grow a stored run that is still open (a live tail) by validated new events.
        Raw Temporal JSON events and domain events are both accepted. Returns the count."""
        run = self.get(key)
        codec = EventCodec()
        for raw in events:
            event = (
                raw if isinstance(raw, HistoryEvent) else codec.decode(raw, originator_id=run.id)
            )
            run.record(event)
        pending = run.collect_events()
        if pending:
            self.save(_Batch(run.id, pending))
        return len(pending)

    def get(self, key: RunKey, version: int | None = None) -> WorkflowRun:
        """Rebuild a run from the store (at `version`, if given). Raises RunNotFound."""
        try:
            with gc_paused():
                run: object = self.repository.get(
                    key.aggregate_id, version=version, projector_func=_replay
                )
        except AggregateNotFoundError:
            raise RunNotFound(f"no stored run {key}") from None
        assert isinstance(run, WorkflowRun)
        if version is None:
            for raw in self._tail_of(run.id, run.version):
                run.record(self._codec.decode(raw, originator_id=run.id))
            run.collect_events()  # the tail is shown, never saved into the durable stream
        return run

    def export(
        self, workflow_id: str, run_id: str | None = None, namespace: str = "default"
    ) -> dict[str, Any]:
        """The stored history as canonical Temporal JSON, byte for byte as imported.
        Without `run_id`, the latest run (by start time) of the workflow."""
        key = self.resolve(workflow_id, run_id, namespace)
        stored = self.recorder.select_events(key.aggregate_id)
        if not stored:
            raise RunNotFound(f"no stored run {key}")
        events = []
        for item in stored:
            doc = orjson.loads(item.state)
            doc.pop(RUN_KEY_FIELD, None)
            events.append(doc)
        events.extend(self._tail_of(key.aggregate_id, len(events)))
        return {"events": events}

    def runs(self) -> list[RunSummary]:
        """Every stored run, in the order they were first stored."""
        summaries = []
        start = 1
        while True:
            batch = self.recorder.select_notifications(start, 1000, topics=[_STARTED_TOPIC])
            for item in batch:
                doc = orjson.loads(item.state)
                key = doc.get(RUN_KEY_FIELD) or {}
                attrs = doc.get("workflowExecutionStartedEventAttributes", {})
                summaries.append(
                    RunSummary(
                        RunKey(
                            key.get("workflowId", ""),
                            key.get("runId", ""),
                            key.get("namespace", "default"),
                        ),
                        str((attrs.get("workflowType") or {}).get("name", "")),
                        str(doc.get("eventTime", "")),
                        item.id,
                    )
                )
            if len(batch) < 1000:
                return summaries
            start = batch[-1].id + 1

    def resolve(
        self, workflow_id: str, run_id: str | None = None, namespace: str = "default"
    ) -> RunKey:
        """The key of a stored run; without `run_id`, the workflow's latest run by start time."""
        if run_id:
            return RunKey(workflow_id, run_id, namespace)
        candidates = [
            s
            for s in self.runs()
            if s.key.workflow_id == workflow_id and s.key.namespace == namespace
        ]
        if not candidates:
            raise RunNotFound(
                f"no stored run of workflow {workflow_id!r} in namespace {namespace!r}"
            )
        return max(candidates, key=lambda s: (s.start_time, s.notification_id)).key

    def _stored_events(self, originator_id: UUID) -> Sequence[HistoryEvent]:
        events = self.events.get(originator_id)
        return [e for e in events if isinstance(e, HistoryEvent)]
