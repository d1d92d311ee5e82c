"""Tracking and process recorders: how far a downstream reader got, recorded exactly once.

One row per upstream application (eventsourcing's "single-row tracking"): an upsert that only
moves forward, so recording the same or an earlier position raises `IntegrityError`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from time import monotonic
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import (
    IntegrityError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    TrackingRecorder,
    WaitInterruptedError,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runhistory.stores.sql.datastore import SQLDatastore
from runhistory.stores.sql.recorders import SQLApplicationRecorder, SQLRecorder
from runhistory.stores.sql.tables import Tables

__all__ = ["SQLProcessRecorder", "SQLTrackingRecorder"]


class SQLTrackingRecorder(SQLRecorder, TrackingRecorder):
    """Positions of upstream applications in `<prefix>_tracking`."""

    def __init__(self, datastore: SQLDatastore, tables: Tables, **kwargs: Any) -> None:
        super().__init__(datastore, tables, **kwargs)
        table = tables.tracking
        dialect_insert = sqlite.insert if datastore.is_sqlite else postgresql.insert
        upsert = dialect_insert(table)
        self._upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.application_name],
            set_={"notification_id": upsert.excluded.notification_id},
            where=table.c.notification_id < upsert.excluded.notification_id,
        ).returning(table.c.notification_id)
        self._select_max = sa.select(table.c.notification_id).where(
            table.c.application_name == sa.bindparam("application_name")
        )
        self._recorded = threading.Condition()

    def schema_tables(self) -> list[sa.Table]:
        return [*super().schema_tables(), self.tables.tracking]

    def insert_tracking(self, tracking: Tracking, *, connection: Connection | None = None) -> None:
        with self.datastore.transaction(write=True, connection=connection) as conn:
            self._insert_tracking(conn, tracking)
        self._wake_waiters()

    def _insert_tracking(self, conn: Connection, tracking: Tracking) -> None:
        row = conn.execute(
            self._upsert,
            {
                "application_name": tracking.application_name,
                "notification_id": tracking.notification_id,
            },
        ).first()
        if row is None:
            raise IntegrityError(
                f"tracking {tracking.notification_id} of {tracking.application_name!r} is not "
                "after the position already recorded"
            )

    def _wake_waiters(self) -> None:
        with self._recorded:
            self._recorded.notify_all()

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.datastore.transaction(write=False) as conn:
            value = conn.execute(self._select_max, {"application_name": application_name}).scalar()
        return None if value is None else int(value)

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: threading.Event | None = None,
    ) -> None:
        """Block until `notification_id` of `application_name` is recorded: woken at once by this
        recorder's inserts, and polling (for other processes) at the datastore's poll interval."""
        deadline = monotonic() + timeout
        while not self.has_tracking_id(application_name, notification_id):
            if interrupt is not None and interrupt.is_set():
                raise WaitInterruptedError
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for notification {notification_id} "
                    f"of {application_name!r} to be processed"
                )
            with self._recorded:
                self._recorded.wait(min(remaining, self.datastore.poll_interval))


class SQLProcessRecorder(SQLTrackingRecorder, SQLApplicationRecorder, ProcessRecorder):
    """Events and the tracking record of what caused them, in one transaction."""

    def __init__(self, datastore: SQLDatastore, tables: Tables) -> None:
        super().__init__(datastore, tables)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)
        if kwargs.get("tracking") is not None:
            self._wake_waiters()
        return ids

    def _before_insert(self, conn: Connection, **kwargs: Any) -> None:
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(conn, tracking)

    def _needs_connection(self, kwargs: dict[str, Any]) -> bool:
        overridden = type(self)._before_insert is not SQLProcessRecorder._before_insert
        return overridden or kwargs.get("tracking") is not None
