"""Subscriptions that work on SQLite as well as PostgreSQL.

eventsourcing's pull loop (`ListenNotifySubscription`) waits to be woken, then reads the next
notifications. Here it is woken by this process's inserts at once, by PostgreSQL's NOTIFY from
other processes, and in any case every `poll_interval` seconds: that is how inserts by other
processes reach a SQLite subscriber, which has no way to be told.
"""

from __future__ import annotations

from collections.abc import Sequence
from threading import Thread
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import ListenNotifySubscription

from runhistory.stores.sql.errors import translate_dbapi_error

if TYPE_CHECKING:
    from runhistory.stores.sql.recorders import SQLApplicationRecorder

__all__ = ["SQLSubscription"]


class SQLSubscription(ListenNotifySubscription["SQLApplicationRecorder"]):
    """Notifications after `gt`, then each new one as it commits, until stopped."""

    def __init__(
        self, recorder: SQLApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        # Set before the base class starts the pull thread, which reads them.
        self._poll_interval = recorder.datastore.poll_interval
        self._table = recorder.tables.events.name
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        recorder.datastore.listen(self._table, self._has_been_notified)
        self._listen_thread: Thread | None = None
        if not recorder.datastore.is_sqlite:
            self._listen_thread = Thread(target=self._listen, daemon=True)
            self._listen_thread.start()

    def stop(self) -> None:
        super().stop()
        self._recorder.datastore.unlisten(self._table, self._has_been_notified)

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            if self._listen_thread is not None:
                self._listen_thread.join()

    def _loop_on_pull(self) -> None:
        try:
            self._pull()
            while not self._has_been_stopped:
                self._has_been_notified.wait(timeout=self._poll_interval)
                self._pull()
        except BaseException as e:  # noqa: BLE001 - handed to the iterating thread
            if self._thread_error is None:
                self._thread_error = e
            self.stop()

    def _listen(self) -> None:
        """LISTEN on a connection of its own, taken out of the pool for good."""
        fairy = self._recorder.datastore.engine.raw_connection()
        pg: Any = fairy.driver_connection
        fairy.detach()
        try:
            pg.autocommit = True
            pg.execute(f"LISTEN {self._recorder.channel}")
            while not self._has_been_stopped and self._thread_error is None:
                for _ in pg.notifies(timeout=0.1, stop_after=1):
                    self._has_been_notified.set()
        except Exception as e:  # noqa: BLE001 - handed to the iterating thread
            if self._thread_error is None:
                self._thread_error = translate_dbapi_error(e)
            self.stop()
        finally:
            pg.close()
