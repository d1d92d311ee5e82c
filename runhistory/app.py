"""`RunHistory`: the eventsourcing application that imports, stores and exports runs.

The composition root: it ties the domain (WorkflowRun), the JSON adapter and mapper, and a
store chosen by URL: `memory://`, `sqlite:///path` (the default, `./runhistory.db`),
`postgresql://user@host/db` or `file:///dir`.

Snapshots (see docs/embedding.md): a run whose stored history grows past a multiple of
`RUNHISTORY_SNAPSHOT_INTERVAL` events (default 1,000; 0 takes none) gets a snapshot of its state
at the new head, so rebuilding it replays only the events since. `IS_SNAPSHOTTING_ENABLED=n`
neither takes nor reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from uuid import UUID

import orjson
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProjectorFunction,
    project_aggregate,
)
from eventsourcing.persistence import EventStore, PersistenceError

from runhistory.adapters import temporal_describe  # noqa: F401  (registers its topics)
from runhistory.adapters.codec import EventCodec
from runhistory.adapters.history_json import HistorySource, default_codec, gc_paused, load_history
from runhistory.adapters.mapper import RUN_KEY_FIELD
from runhistory.append_limits import check_history_limits, field_checker
from runhistory.domain.errors import HistoryError
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.limits import NO_LIMITS, TEMPORAL_LIMITS, HistoryLimits
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.snapshots import CheckedSnapshotStore, history_loader
from runhistory.tail import RunTail, tail_id_of

__all__ = [
    "DEFAULT_SNAPSHOT_INTERVAL",
    "DEFAULT_STORE",
    "ImportResult",
    "RunConflict",
    "RunHistory",
    "RunNotFound",
    "RunSummary",
]

DEFAULT_STORE = "sqlite:///runhistory.db"
DEFAULT_SNAPSHOT_INTERVAL = 1000
SNAPSHOT_INTERVAL = "RUNHISTORY_SNAPSHOT_INTERVAL"
logger = logging.getLogger(__name__)
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
    # On unless IS_SNAPSHOTTING_ENABLED says otherwise. Not `snapshotting_intervals`: that is
    # judged per saved event, against the type of what `save` was given (our `_Batch`), and
    # would snapshot a 50,000-event import 50 times, each after a full replay.
    is_snapshotting_enabled = True

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._codec = EventCodec()
        self.snapshot_interval = _interval(self.env.get(SNAPSHOT_INTERVAL))
        """Take a snapshot when a run's stored history passes a multiple of this (0: never)."""

    def construct_snapshot_store(self) -> EventStore[UUID]:
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return CheckedSnapshotStore(self.mapper, recorder, self.events)

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
        limits: HistoryLimits | None = None,
    ) -> ImportResult:
        """Validate and store one history. Idempotent: a run already stored whole changes
        nothing, a longer version of a stored run appends only the new events, and a history
        that disagrees with the stored run is refused with RunConflict, writing nothing.
        `limits`: Temporal's limits to enforce, as for `load_history` (default: Temporal's
        own in strict mode, none in lenient mode)."""
        run = load_history(
            source, strict=strict, workflow_id=workflow_id, namespace=namespace, limits=limits
        )
        key = run.key
        assert key is not None
        events = cast(Sequence[HistoryEvent], run.collect_events())
        durable = run.durable_length
        new_events, tail = events[:durable], events[durable:]
        stored = self._stored_count_if_same(run.id, new_events, key)
        if stored > len(new_events) and tail:
            raise RunConflict(key, tail[0].originator_version)
        fresh = new_events[stored:]
        self._save_run(run.id, fresh, durable, tail)
        if fresh:
            # the in-memory run is the stored one unless it also holds the non-durable tail
            self._snapshot_if_due(run.id, stored, durable, None if tail else run)
        return ImportResult(key, len(new_events), len(fresh))

    def _snapshot_if_due(
        self, run_id: UUID, before: int, after: int, run: WorkflowRun | None
    ) -> None:
        """Snapshot the run at `after` if its stored history just passed a multiple of the
        interval. This runs after the events' transaction has committed, in its own: a
        snapshot only saves replay time, so failing to write one (a crash, a full disk, a
        concurrent import that wrote the same one) costs speed, never the import."""
        n = self.snapshot_interval
        if self.snapshots is None or n <= 0 or before // n == after // n:
            return
        try:
            if run is not None and run.version == after:
                self.snapshots.put([WorkflowRun.Snapshot.take(run)])
            else:
                self.take_snapshot(run_id, version=after)
        except (PersistenceError, OSError) as e:
            logger.warning("no snapshot of %s at event %d: %s", run_id, after, e)

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

    def take_snapshot(
        self,
        aggregate_id: UUID,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = _replay,
    ) -> None:
        """Snapshot a stored run (eventsourcing's method; by default replaying with our fast
        projector, from the latest usable snapshot). A snapshot already stored at that version
        raises eventsourcing's IntegrityError."""
        with gc_paused():
            super().take_snapshot(aggregate_id, version, projector_func)

    def _save_run(
        self,
        run_id: UUID,
        fresh: Sequence[HistoryEvent],
        durable: int,
        tail: Sequence[HistoryEvent],
    ) -> None:
        """Save a run's `fresh` durable events, which end at event `durable`, and its new
        non-durable `tail`, if any, which replaces the stored one, in one transaction: all or
        nothing. A stored tail that no longer continues the durable events is left as it is,
        and is never shown again (see `_tail_of`)."""
        to_save: list[Any] = [_Batch(run_id, fresh)] if fresh else []
        if tail:
            to_save.extend(self._tail_update(run_id, durable, tail))
        if to_save:
            # Mapping builds a few acyclic objects per event; with the collector running, the
            # run's own events (all of them alive) are traversed again and again.
            with gc_paused():
                self.save(*to_save)

    def _tail_update(self, run_id: UUID, after: int, tail: Sequence[HistoryEvent]) -> list[Any]:
        encode = self._codec.encode
        blob = orjson.dumps([encode(e) for e in tail]).decode()
        current = self._stored_tail(run_id)
        if current is None:
            return [RunTail(run_id, after, blob)]
        if current.after_event_id != after or current.events_json != blob:
            current.replace(after, blob)
        return [current]

    def _tail_of(self, run_id: UUID, after: int) -> list[dict[str, Any]]:
        """The stored tail, if it still continues the stored durable events."""
        tail = self._stored_tail(run_id)
        return tail.events() if tail is not None and tail.after_event_id == after else []

    def _stored_tail(self, run_id: UUID) -> RunTail | None:
        # From its few events, not through the repository: a tail is never snapshotted, and
        # the repository would ask the snapshot store first, one more query per rebuild.
        tail = project_aggregate(None, self.events.get(tail_id_of(run_id)))
        assert tail is None or isinstance(tail, RunTail)
        return tail

    def append(
        self,
        key: RunKey,
        events: Iterable[Mapping[str, Any] | HistoryEvent],
        *,
        strict: bool = True,
        limits: HistoryLimits | None = None,
    ) -> int:
        """Grow a stored run that is still open (a live tail) by validated new events, as
        importing the longer history would: the events continue the run's durable events, so
        they replace a stored non-durable tail (I13; the server rewrites it under the same ids),
        and a trailing non-durable tail of their own is stored beside the run as import stores
        one. Raw Temporal JSON events and domain events are both accepted. Returns how many
        were stored. `strict=False` keeps unknown event types of raw events as opaque events.

        `limits`: Temporal's limits, as for `import_history` (default: Temporal's own in strict
        mode, none in lenient mode). Each new event's ids and payload fields are checked, and
        the history length and size of the whole run, the stored events and the new ones
        together, exactly as importing that longer history would judge them: past a history
        limit only the transaction that crossed it may follow, then one more that terminates
        the run. A breach raises `LimitExceeded`, as a refused event raises its error, and
        nothing is written: a call is all or nothing."""
        if limits is None:
            limits = TEMPORAL_LIMITS if strict else NO_LIMITS
        run = self._rebuild(key)  # without its stored tail, which the new events replace
        stored = run.version
        codec = default_codec(strict)
        fields = field_checker(limits)
        for raw in events:
            event = (
                raw if isinstance(raw, HistoryEvent) else codec.decode(raw, originator_id=run.id)
            )
            run.record(event)
            if fields is not None:  # after record: an illegal event is reported as such first
                fields.check(event)
        pending = cast(list[HistoryEvent], run.collect_events())
        if not pending:
            return 0
        check_history_limits(self.events, run, stored, pending, limits)
        # the stored events stay durable even if they end as a tail looks (written so before)
        durable = max(run.durable_length, stored)
        fresh, tail = pending[: durable - stored], pending[durable - stored :]
        self._save_run(run.id, fresh, durable, tail)
        if fresh:
            self._snapshot_if_due(run.id, stored, durable, None)
        return len(pending)

    def get(self, key: RunKey, version: int | None = None) -> WorkflowRun:
        """Rebuild a run from the store (at `version`, if given), with its stored non-durable
        tail when it is rebuilt whole and the tail continues it. Raises RunNotFound."""
        run = self._rebuild(key, version)
        if version is None:
            for raw in self._tail_of(run.id, run.version):
                run.record(self._codec.decode(raw, originator_id=run.id))
            run.collect_events()  # the tail is shown, never saved into the durable stream
        return run

    def _rebuild(self, key: RunKey, version: int | None = None) -> WorkflowRun:
        """The run's durable events from the store (up to `version`). Raises RunNotFound."""
        try:
            with gc_paused():
                run: object = self.repository.get(
                    key.aggregate_id, version=version, projector_func=_replay
                )
        except AggregateNotFoundError:
            raise RunNotFound(f"no stored run {key}") from None
        assert isinstance(run, WorkflowRun)
        if not run.history_loaded:  # rebuilt from a snapshot: its earlier events on demand
            run.attach_history(history_loader(self.events, run.id))
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


def _interval(setting: str | None) -> int:
    if not setting:
        return DEFAULT_SNAPSHOT_INTERVAL
    try:
        value = int(setting)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(
            f"{SNAPSHOT_INTERVAL} must be a number of events (0: never), not {setting!r}"
        )
    return value
