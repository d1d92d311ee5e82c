"""Keeping the catalog up to date: reading the source application, applying batches, following.

Two ways to run the same fold:

- `catch_up` / `follow` (`CatalogRunner`): reads the application's notifications in batches of
  thousands and applies each batch in one view transaction with the tracking record of its last
  notification. It reads the stored canonical JSON directly, without decoding events into domain
  objects: on the SQL store through one plain SELECT on its events table (the driver's rows, no
  per-row type processing), on any other store through `select_notifications`. This is what
  reaches tens of thousands of events a second.
- `CatalogProjection`: an eventsourcing `Projection` for eventsourcing's `ProjectionRunner`,
  which hands it one decoded domain event at a time; it re-encodes the event and applies it,
  one transaction per event. Same rows, much slower; for hosts that run all their projections
  that way.

Either way, the whole-history columns are filled by `derive` (which `catch_up` and `follow` call
after applying).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import singledispatchmethod
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from runhistory.adapters.codec import EventCodec
from runhistory.adapters.mapper import RUN_KEY_FIELD
from runhistory.domain.event_base import HistoryEvent, HistoryStarted, UnknownEvent
from runhistory.domain.events import EVENT_CLASSES
from runhistory.projections.catalog.derive import derive
from runhistory.projections.catalog.fold import LIGHT_HANDLERS
from runhistory.projections.catalog.view import (
    EVENT,
    LIGHT,
    TAIL,
    UNCHECKED,
    CatalogView,
    Item,
    PositionMoved,
)
from runhistory.stores.sql.datastore import SQLDatastore, create_engine
from runhistory.stores.sql.recorders import SQLApplicationRecorder
from runhistory.stores.sql.tables import make_tables
from runhistory.tail import RunTail

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_PREFIX",
    "HISTORY_TOPICS",
    "TAIL_TOPICS",
    "CatalogProjection",
    "CatalogRunner",
    "Derive",
    "catch_up",
    "default_view_url",
    "follow",
    "open_view",
]

DEFAULT_PREFIX = "catalog"
DEFAULT_BATCH = 5000
Derive = Literal["closed", "all", "none"]


def _history_topics() -> tuple[str, ...]:
    # The topics the mapper writes (get_topic also registers each one, harmlessly if it is).
    classes: list[type[HistoryEvent]] = [*EVENT_CLASSES.values(), UnknownEvent]
    return tuple(sorted({get_topic(cls) for cls in classes}))


HISTORY_TOPICS: tuple[str, ...] = _history_topics()
TAIL_TOPICS: tuple[str, ...] = (get_topic(RunTail.Created), get_topic(RunTail.Replaced))
_HISTORY = frozenset(HISTORY_TOPICS)
_EVENT_TYPE = "EVENT_TYPE_"
_TAIL = frozenset(TAIL_TOPICS)


# --- opening a view ---------------------------------------------------------------------------


def _sql_datastore(app: Any) -> SQLDatastore | None:
    datastore = getattr(getattr(app, "factory", None), "datastore", None)
    return datastore if isinstance(datastore, SQLDatastore) else None


def default_view_url(app: Any) -> str | None:
    """Where the catalog of `app` lives by default: None for the SQL store (the same database,
    beside the events), `sqlite:///<root>/catalog.db` for a files store, and an in-memory
    SQLite database for anything else (`memory://`)."""
    if _sql_datastore(app) is not None:
        return None
    root = getattr(getattr(app, "factory", None), "root", None)
    if isinstance(root, Path):
        return f"sqlite:///{root / 'catalog.db'}"
    return "sqlite:///:memory:"


def open_view(
    url: str | None = None, *, app: Any = None, prefix: str = DEFAULT_PREFIX
) -> CatalogView:
    """The catalog view at `url` (`sqlite:///path`, `postgresql://...`), creating its tables
    if missing. Without a URL: the default place for `app` (see `default_view_url`); on the SQL
    store that is the application's own database and connection pool."""
    if url is None and app is not None:
        datastore = _sql_datastore(app)
        if datastore is not None:
            view = CatalogView(datastore, make_tables(prefix))
            view.create_table()
            return view
        url = default_view_url(app)
    engine = create_engine(url or "sqlite:///:memory:")
    view = CatalogView(SQLDatastore(engine, owns_engine=True), make_tables(prefix))
    view.owns_datastore = True
    try:
        view.create_table()
    except BaseException:
        view.close()
        raise
    return view


# --- reading the source -----------------------------------------------------------------------


class _Reader:
    """Notifications of an application as items for `CatalogView.apply_batch`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.recorder = app.recorder
        self.mapper = app.mapper
        self._codec = EventCodec(strict=False)
        self._fast = self._fast_query()
        # States are canonical JSON unless the application compresses or encrypts them.
        mapper = self.mapper
        self._plain = not (getattr(mapper, "cipher", None) or getattr(mapper, "compressor", None))

    def _fast_query(self) -> tuple[SQLDatastore, str] | None:
        recorder = self.recorder
        if type(recorder) is not SQLApplicationRecorder:
            return None
        datastore = recorder.datastore
        table = recorder.tables.events
        preparer = datastore.engine.dialect.identifier_preparer
        mark = "?" if datastore.is_sqlite else "%s"
        sql = (
            "SELECT notification_id, originator_id, originator_version, topic, state, "
            "event_id, event_type "
            f"FROM {preparer.format_table(table)} WHERE notification_id > {mark} "
            f"ORDER BY notification_id LIMIT {mark}"
        )
        return datastore, sql

    def read(self, after: int | None, limit: int) -> tuple[list[Item], int | None, int]:
        """(items, the last notification id read or None, notifications read)."""
        if self._fast is not None:
            datastore, sql = self._fast
            with datastore.transaction(write=False) as conn:
                # The driver's own cursor: its rows are plain tuples, where SQLAlchemy's result
                # would wrap each of them again (a tenth of the whole catch-up on SQLite).
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.execute(sql, (after or 0, limit))
                    rows: Sequence[Any] = cursor.fetchall()
                finally:
                    cursor.close()
        else:
            rows = [
                (n.id, n.originator_id, n.originator_version, n.topic, n.state, None, None)
                for n in self.recorder.select_notifications(
                    (after or 0) + 1, limit, inclusive_of_start=True
                )
            ]
        if not rows:
            return [], None, 0
        return self._items(rows), int(rows[-1][0]), len(rows)

    def _items(self, rows: Sequence[Any]) -> list[Item]:
        """Items of the rows `(id, originator, version, topic, state, event id, event type)`.
        The SQL store's own `event_id` and `event_type` columns (None elsewhere) let most
        events skip the JSON parse: those whose fold needs only their id and type and that are
        not their run's last in the batch (whose task id and time the row keeps)."""
        items: list[Item] = []
        append = items.append
        loads = orjson.loads
        history = _HISTORY
        light = LIGHT_HANDLERS  # by the SQL store's event_type column (None elsewhere)
        plain = self._plain
        last_of_run = {row[1]: i for i, row in enumerate(rows)}
        last_raw: Any = None
        originator: UUID | None = None
        for i, (_, raw_id, version, topic, state, event_id, event_type) in enumerate(rows):
            if raw_id != last_raw:
                last_raw = raw_id
                originator = _uuid(raw_id)
            assert originator is not None
            if topic in history:
                if not plain:  # compressed or encrypted: the mapper knows how to read it
                    doc = self._decoded_doc(originator, version, topic, bytes(state))
                elif event_type in light and last_of_run[raw_id] != i:
                    append((LIGHT, originator, (event_id, event_type)))
                    continue
                else:
                    doc = loads(bytes(state))
                append((EVENT, originator, doc))
            elif topic in _TAIL:
                stored = StoredEvent(originator, version, topic, bytes(state))
                append(_tail_item(self.mapper.to_domain_event(stored)))
        return items

    def _decoded_doc(self, originator: UUID, version: int, topic: str, state: bytes) -> Any:
        event = self.mapper.to_domain_event(StoredEvent(originator, version, topic, state))
        return _doc_of(self._codec, event)


def _uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    return UUID(hex=str(value))


def _doc_of(codec: EventCodec, event: Any) -> dict[str, Any]:
    """The canonical JSON the mapper stores for a history event (its run key included)."""
    doc = codec.encode(event)
    if isinstance(event, HistoryStarted) and event.run_key is not None:
        key = event.run_key
        doc[RUN_KEY_FIELD] = {
            "namespace": key.namespace,
            "workflowId": key.workflow_id,
            "runId": key.run_id,
        }
    return doc


def _tail_item(event: Any) -> Item:
    run_id = event.run_id if isinstance(event, RunTail.Created) else None
    return (TAIL, event.originator_id, (run_id, int(event.after_event_id), event.events_json))


# --- running ----------------------------------------------------------------------------------


class CatalogRunner:
    """Applies an application's notifications to a view, `batch` per transaction."""

    def __init__(self, app: Any, view: CatalogView, *, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.app = app
        self.view = view
        self.batch = batch
        self.name: str = app.name
        self._reader = _Reader(app)

    def run(self, *, limit: int | None = None) -> int:
        """Apply what the application holds beyond the view's position (at most `limit`
        notifications). Returns the notifications processed."""
        view = self.view
        position = view.position(self.name)
        processed = 0
        while limit is None or processed < limit:
            size = self.batch if limit is None else min(self.batch, limit - processed)
            items, last, count = self._reader.read(position, size)
            if last is None:
                break
            try:
                view.apply_batch(self.name, items, last, expected=position)
            except PositionMoved as moved:  # another process got there first: go on from there
                position = moved.current
                continue
            position = last
            processed += count
        return processed


def catch_up(
    app: Any,
    view: CatalogView | str | None = None,
    *,
    batch: int = DEFAULT_BATCH,
    limit: int | None = None,
    derive_runs: Derive = "closed",
    prefix: str = DEFAULT_PREFIX,
) -> int:
    """Bring the catalog of `app` (a `RunHistory`) up to date; returns the notifications
    processed. `view` is a `CatalogView`, a database URL, or None for the default place
    (`default_view_url`). `limit` stops after that many notifications (the rest is applied
    next time). `derive_runs`: "closed" fills the whole-history columns of runs that closed,
    "all" also of open runs (at their current length), "none" leaves them for later."""
    opened = view if isinstance(view, CatalogView) else open_view(view, app=app, prefix=prefix)
    try:
        processed = CatalogRunner(app, opened, batch=batch).run(limit=limit)
        if derive_runs != "none":
            derive(app, opened, include_open=derive_runs == "all")
        return processed
    finally:
        if opened is not view:
            opened.close()


def follow(
    app: Any,
    view: CatalogView,
    stop_event: threading.Event,
    *,
    batch: int = DEFAULT_BATCH,
    derive_runs: Derive = "closed",
    poll_interval: float = 1.0,
) -> int:
    """Keep the view up to date until `stop_event` is set: catch up, then wait for the
    application's subscription to report new notifications (or `poll_interval` to pass), and
    catch up again. Returns the notifications processed."""
    wake = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []
    subscription = app.recorder.subscribe(gt=app.recorder.max_notification_id())

    def listen() -> None:
        try:
            for _ in subscription:
                wake.set()
        except BaseException as e:  # noqa: BLE001 - re-raised by follow
            errors.append(e)
            wake.set()

    def stopper() -> None:
        while not done.is_set():
            if stop_event.wait(timeout=0.1):
                wake.set()
                return

    listener = threading.Thread(target=listen, name="catalog-follow-listen", daemon=True)
    waiter = threading.Thread(target=stopper, name="catalog-follow-stop", daemon=True)
    runner = CatalogRunner(app, view, batch=batch)
    processed = 0
    with subscription:
        listener.start()
        waiter.start()
        try:
            while not stop_event.is_set():
                wake.clear()
                processed += runner.run()
                if derive_runs != "none":
                    derive(app, view, include_open=derive_runs == "all")
                if errors:
                    raise errors[0]
                wake.wait(timeout=poll_interval)
        finally:
            done.set()
            subscription.stop()
            listener.join(timeout=10)
            waiter.join(timeout=10)
    return processed


# --- eventsourcing's ProjectionRunner ---------------------------------------------------------


class CatalogProjection(Projection[CatalogView]):
    """The catalog as an eventsourcing `Projection`: run it with
    `ProjectionRunner(application_class=RunHistory, projection_class=CatalogProjection,
    view_class=CatalogView, env=...)`. One event per transaction; call `derive(app, view)`
    for the whole-history columns."""

    name = "catalog"
    topics = (*HISTORY_TOPICS, *TAIL_TOPICS)

    def __init__(self, view: CatalogView) -> None:
        super().__init__(view)
        self._codec = EventCodec(strict=False)

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        item: Item | None = None
        if isinstance(domain_event, HistoryEvent):
            item = (EVENT, domain_event.originator_id, _doc_of(self._codec, domain_event))
        elif isinstance(domain_event, (RunTail.Created, RunTail.Replaced)):
            item = _tail_item(domain_event)
        self.view.apply_batch(
            tracking.application_name,
            [item] if item is not None else [],
            tracking.notification_id,
            expected=UNCHECKED,
        )
