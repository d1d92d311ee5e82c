"""`sync`: pull run histories and the server's describe from a live Temporal server into a store.

Every run a visibility query lists is read page by page (GetWorkflowExecutionHistory) and
imported with `RunHistory.import_history`, which is idempotent: a run stored whole changes
nothing and a longer version of an open run appends only its new events. So a sync that was
interrupted simply runs again, and nothing is ever stored twice. A run already stored closed is
not read again. Beside each run the server's own DescribeWorkflowExecution is kept (see
`temporal_describe`), replaced only when it changed.

With `follow=True`, open runs are then tailed by long poll (`wait_new_event=True` with the page
token, so the server answers as soon as the run writes events, or after its 20 s poll interval)
and new events are appended as they come, until `stop` is set. The listing is repeated every
`relist_interval` seconds, narrowed to runs still running or closed since, to pick up new runs
(a continue-as-new successor among them). One bad run never ends the sync: its error is reported
and the others go on.

Behind the `temporal` extra (temporalio).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError

from runhistory.adapters.temporal_describe import load_server_describe, store_server_describe
from runhistory.adapters.temporal_extra import MissingTemporalExtra
from runhistory.adapters.temporal_feed import FeedGap, RunFeed
from runhistory.adapters.temporal_report import (
    Progress,
    RunError,
    RunOutcome,
    SyncError,
    SyncReport,
)
from runhistory.domain.errors import HistoryError
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.limits import HistoryLimits
from runhistory.domain.run_key import RunKey
from runhistory.domain.transitions import CLOSE_EVENTS

try:
    from google.protobuf.json_format import MessageToDict
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    from runhistory.adapters.temporal_reader import RunReader
except ImportError:
    raise MissingTemporalExtra("runhistory sync") from None

if TYPE_CHECKING:
    from runhistory.app import ImportResult, RunHistory

__all__ = [
    "Progress",
    "RunError",
    "RunOutcome",
    "SyncError",
    "SyncReport",
    "sync",
    "sync_async",
]

CANCEL_GRACE = 0.25
"""Seconds to let the SDK's native core settle its last calls (cancelled long polls, failed
RPCs) before the event loop closes: a process that exits at once after them can hang or abort in
the SDK's threads (temporalio/sdk-python#300)."""
RELIST_LAG = timedelta(seconds=60)
"""How far before the previous listing a re-listing looks for closed runs (visibility lags)."""
_STOP_POLL = 0.1


class _RunFailed(Exception):
    """A run the server described differently from the history it returned."""


_RUN_ERRORS = (HistoryError, RPCError, FeedGap, IntegrityError, _RunFailed)


def sync(
    app: RunHistory,
    *,
    address: str,
    namespace: str = "default",
    query: str | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    strict: bool = True,
    tls: bool = False,
    api_key: str | None = None,
    relist_interval: float | None = 10.0,
    concurrency: int = 4,
    limits: HistoryLimits | None = None,
) -> SyncReport:
    """Store every run `query` lists (all runs of the namespace when None) with its server
    describe; with `follow`, keep tailing open runs until `stop` is set (see the module doc).
    `progress(outcome, report)` is called after each step. Raises SyncError when the sync
    cannot run at all; a run that fails is reported in `SyncReport.errors` instead.
    `strict` and `limits` are `import_history`'s: by default Temporal's own limits in strict
    mode and none in lenient mode; a run past a limit fails with `LimitExceeded`.
    Runs its own event loop: from async code, use `sync_async` with a connected client."""

    async def main() -> SyncReport:
        try:
            client = await Client.connect(address, namespace=namespace, tls=tls, api_key=api_key)
        except RuntimeError as e:  # the SDK's core reports connection failures so
            raise SyncError(f"cannot connect to Temporal at {address}: {e}") from None
        try:
            return await sync_async(
                app, client, query=query, follow=follow, stop=stop, progress=progress,
                strict=strict, relist_interval=relist_interval, concurrency=concurrency,
                limits=limits,
            )  # fmt: skip
        finally:
            await asyncio.sleep(CANCEL_GRACE)  # see CANCEL_GRACE

    return asyncio.run(main())


async def sync_async(
    app: RunHistory,
    client: Client,
    *,
    query: str | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    strict: bool = True,
    relist_interval: float | None = 10.0,
    concurrency: int = 4,
    limits: HistoryLimits | None = None,
) -> SyncReport:
    """`sync` with a client you connected (TLS, API keys, interceptors: your choice), in the
    client's namespace. `relist_interval=None` follows only the runs of the first listing and
    returns once they have all closed (or `stop` is set)."""
    syncer = _Syncer(app, client, stop or threading.Event(), progress, strict, concurrency, limits)
    return await syncer.run(query, follow=follow, relist_interval=relist_interval)


class _Syncer:
    def __init__(
        self,
        app: RunHistory,
        client: Client,
        stop: threading.Event,
        progress: Progress | None,
        strict: bool,
        concurrency: int,
        limits: HistoryLimits | None = None,
    ) -> None:
        self.app = app
        self.client = client
        self.namespace = client.namespace
        self.reader = RunReader(client)
        self.stop = stop
        self.progress = progress
        self.strict = strict
        self.limits = limits
        self.report = SyncReport()
        self._slots = asyncio.Semaphore(max(concurrency, 1))
        self._listed: set[RunKey] = set()
        self._handled: set[RunKey] = set()
        self._created: set[RunKey] = set()
        self._updated: set[RunKey] = set()
        self._tails: dict[RunKey, asyncio.Task[None]] = {}
        self._stopped = asyncio.Event()
        self._fatal: BaseException | None = None
        self._follow = False

    async def run(
        self, query: str | None, *, follow: bool, relist_interval: float | None
    ) -> SyncReport:
        self._follow = follow
        watcher = asyncio.create_task(self._watch_stop())
        try:
            listed_at = datetime.now(UTC)
            await self._sync_listing(query or "")
            if follow:
                await self._follow_runs(query or "", listed_at, relist_interval)
        finally:
            watcher.cancel()
            await self._end_tails()
        if self._fatal is not None:
            raise self._fatal
        return self.report

    # --- listing and the first read of each run -------------------------------------------

    async def _sync_listing(self, query: str) -> None:
        pending: set[asyncio.Task[None]] = set()
        try:
            async for execution in self.client.list_workflows(query):
                if self._stopped.is_set():
                    break
                key = RunKey(execution.id, execution.run_id, self.namespace)
                if key in self._handled:
                    continue
                self._handled.add(key)
                self._listed.add(key)
                self.report.runs_seen = len(self._listed)
                await self._slots.acquire()
                task = asyncio.create_task(self._sync_run(key))
                pending.add(task)
                task.add_done_callback(pending.discard)
        except RPCError as e:
            usage = e.status == RPCStatusCode.INVALID_ARGUMENT
            raise SyncError(f"listing workflows failed: {_rpc_message(e)}", usage=usage) from None
        finally:
            if pending:
                await asyncio.gather(*pending)  # each catches its own errors

    async def _sync_run(self, key: RunKey) -> None:
        try:
            outcome, feed = await self._first_read(key)
            self._record(outcome)
        except _RUN_ERRORS as e:
            self._fail(key, e)
            return
        except Exception as e:  # noqa: BLE001 - not the run's fault (the store?): end the sync
            self._abort(e)
            return
        finally:
            self._slots.release()
        if self._follow and feed is not None and not feed.closed and feed.token:
            self._start_tail(feed)

    async def _first_read(self, key: RunKey) -> tuple[RunOutcome, RunFeed | None]:
        stored = self._stored_closed_length(key)
        if stored is not None:  # nothing left to read; a closed describe does not change either
            known = load_server_describe(self.app, key)
            changed = (known is None or not known.closed) and store_server_describe(
                self.app, key, await self.reader.describe(key)
            )
            return RunOutcome(key, "unchanged", stored, 0, changed, False), None
        describe = await self.reader.describe(key)
        feed = RunFeed(key)
        await self.reader.catch_up(feed, _history_length(describe))
        result = self._import(feed)
        if _history_length(describe) != len(feed.durable):
            describe = await self.reader.describe(key)  # keep describe and history of one moment
        changed = store_server_describe(self.app, key, describe)
        return self._outcome(key, result, changed, feed), feed

    def _stored_closed_length(self, key: RunKey) -> int | None:
        """The stored length of a run stored whole and closed (nothing left to read), else None."""
        last = self.app.recorder.select_events(key.aggregate_id, desc=True, limit=1)
        if not last:
            return None
        event = self.app.mapper.to_domain_event(last[0])
        if isinstance(event, HistoryEvent) and event.event_type in CLOSE_EVENTS:
            return event.originator_version
        return None

    def _import(self, feed: RunFeed) -> ImportResult:
        history = feed.history()
        key = feed.key
        try:
            result = self.app.import_history(
                history, namespace=key.namespace, strict=self.strict,
                workflow_id=key.workflow_id, limits=self.limits,
            )  # fmt: skip
        except IntegrityError:  # another writer stored some of these events first: once more
            result = self.app.import_history(
                history, namespace=key.namespace, strict=self.strict,
                workflow_id=key.workflow_id, limits=self.limits,
            )  # fmt: skip
        if result.key != key:
            raise _RunFailed(f"the history names run {result.key}, the server listed {key}")
        return result

    def _outcome(
        self, key: RunKey, result: ImportResult, describe: bool, feed: RunFeed
    ) -> RunOutcome:
        if result.created and key not in self._created:
            status = "new"
        elif result.appended:
            status = "updated"
        else:
            status = "unchanged"
        return RunOutcome(key, status, result.events, result.appended, describe, not feed.closed)

    # --- following ------------------------------------------------------------------------

    async def _follow_runs(
        self, query: str, listed_at: datetime, relist_interval: float | None
    ) -> None:
        while not self._stopped.is_set():
            if relist_interval is None and not self._tails:
                return
            wait = relist_interval if relist_interval is not None else 0.5
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=wait)
            if relist_interval is None or self._stopped.is_set():
                continue
            since, listed_at = listed_at - RELIST_LAG, datetime.now(UTC)
            try:
                await self._sync_listing(_recent(query, since))
            except SyncError as e:  # the server is away (try at the next tick), or the query
                if e.usage:  # cannot be narrowed (ORDER BY?): list it whole
                    with contextlib.suppress(SyncError):
                        await self._sync_listing(query)

    def _start_tail(self, feed: RunFeed) -> None:
        task = asyncio.create_task(self._tail(feed))
        self._tails[feed.key] = task
        self.report.following = len(self._tails)
        task.add_done_callback(lambda t: self._tail_done(feed.key, t))

    def _tail_done(self, key: RunKey, task: asyncio.Task[None]) -> None:
        self._tails.pop(key, None)
        self.report.following = len(self._tails)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self._abort(error)

    def _abort(self, error: BaseException) -> None:
        """A failure that is not one run's (the store's, a progress callback's): stop cleanly
        and raise it from `sync`."""
        if self._fatal is None:
            self._fatal = error
        self._stopped.set()

    async def _tail(self, feed: RunFeed) -> None:
        """Long-poll one open run until it closes; append what each answer brings."""
        backoff = 1.0
        while True:
            try:
                response = await self.reader.page(feed)
                changed = feed.absorb(MessageToDict(e) for e in response.history.events)
            except FeedGap as e:
                if not feed.token:  # even the first page does not continue what is held
                    self._fail(feed.key, e)
                    return
                feed.token = b""  # read again from the first page; the feed skips what it has
                continue
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND or (
                    e.status == RPCStatusCode.INVALID_ARGUMENT and not feed.token
                ):
                    self._fail(feed.key, e)
                    return
                if e.status == RPCStatusCode.INVALID_ARGUMENT:  # a token the server disowns
                    feed.token = b""
                    continue
                await asyncio.sleep(backoff)  # the server is away: keep the token, try again
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            feed.token = response.next_page_token
            if changed:
                try:
                    result = self._import(feed)
                    described = await self.reader.describe(feed.key)
                    stored = store_server_describe(self.app, feed.key, described)
                except _RUN_ERRORS as e:
                    self._fail(feed.key, e)
                    return
                self._record(self._outcome(feed.key, result, stored, feed))
            if not feed.token:
                return

    async def _end_tails(self) -> None:
        tails = list(self._tails.values())
        for task in tails:
            task.cancel()
        if tails:
            await asyncio.gather(*tails, return_exceptions=True)
            await asyncio.sleep(CANCEL_GRACE)

    async def _watch_stop(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(_STOP_POLL)
        self._stopped.set()

    # --- bookkeeping ----------------------------------------------------------------------

    def _record(self, outcome: RunOutcome) -> None:
        report = self.report
        key = outcome.key
        report.failures.pop(key, None)
        if outcome.status == "new":
            self._created.add(key)
            report.runs_new = len(self._created)
        elif outcome.status == "updated" and key not in self._created:
            self._updated.add(key)
            report.runs_updated = len(self._updated)
        report.events_appended += outcome.appended
        report.describes_stored += outcome.describe_stored
        if self.progress is not None:
            self.progress(outcome, report)

    def _fail(self, key: RunKey, error: BaseException) -> None:
        message = _rpc_message(error) if isinstance(error, RPCError) else str(error)
        self.report.failures[key] = RunError(key, message)
        if self._follow:
            self._handled.discard(key)  # the next re-listing tries it again
        if self.progress is not None:
            self.progress(RunOutcome(key, "failed", error=message), self.report)


def _history_length(describe: dict[str, Any]) -> int:
    return int(describe.get("workflowExecutionInfo", {}).get("historyLength") or 0)


def _rpc_message(error: RPCError) -> str:
    return f"{error.status.name}: {error.message}"


def _recent(query: str, since: datetime) -> str:
    """`query` narrowed to runs still running or closed since `since`."""
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = f"(ExecutionStatus = 'Running' OR CloseTime >= '{stamp}')"
    return f"({query}) AND {recent}" if query.strip() else recent
