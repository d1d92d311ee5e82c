"""`sync` enforces Temporal's limits like `import`: `limits=` / `runhistory sync --limits SPEC`
reach every import it makes. Without a server: a stand-in client serves recorded histories
(the live tests in test_sync_live.py use a real one)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

pytest.importorskip("temporalio")

from google.protobuf.json_format import ParseDict
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryResponse,
)

from runhistory.adapters.cli_sync import add_sync
from runhistory.adapters.temporal_report import SyncReport
from runhistory.adapters.temporal_sync import sync_async
from runhistory.app import RunHistory
from runhistory.domain.limits import NO_LIMITS, HistoryLimits
from runhistory.domain.run_key import RunKey
from tests.conformance_data import CONFORMANCE

SCENARIOS = ("signals_many_batched", "workflow_terminated")
pytestmark = pytest.mark.skipif(
    not all((CONFORMANCE / s).is_dir() for s in SCENARIOS), reason="shared/conformance not found"
)


def _history(scenario: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((CONFORMANCE / scenario / "history.json").read_bytes())
    return doc


def _key(history: dict[str, Any]) -> RunKey:
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    return RunKey(started["workflowId"], started["originalExecutionRunId"])


class _Service:
    """The two RPCs `sync` makes per run, answered from recorded histories (one page each)."""

    def __init__(self, histories: dict[str, dict[str, Any]]) -> None:
        self.histories = histories

    async def get_workflow_execution_history(
        self, request: Any, **_: Any
    ) -> GetWorkflowExecutionHistoryResponse:
        history = self.histories[request.execution.run_id]
        return ParseDict(
            {"history": history}, GetWorkflowExecutionHistoryResponse(), ignore_unknown_fields=True
        )

    async def describe_workflow_execution(
        self, request: Any, **_: Any
    ) -> DescribeWorkflowExecutionResponse:
        execution = request.execution
        length = len(self.histories[execution.run_id]["events"])
        info = {
            "execution": {"workflowId": execution.workflow_id, "runId": execution.run_id},
            "historyLength": str(length),
        }
        return ParseDict({"workflowExecutionInfo": info}, DescribeWorkflowExecutionResponse())


class _Client:
    namespace = "default"

    def __init__(self, *scenarios: str) -> None:
        histories = [_history(s) for s in scenarios]
        self.keys = [_key(h) for h in histories]
        self.workflow_service = _Service({_key(h).run_id: h for h in histories})

    def list_workflows(self, query: str) -> AsyncIterator[SimpleNamespace]:
        async def listing() -> AsyncIterator[SimpleNamespace]:
            for key in self.keys:
                yield SimpleNamespace(id=key.workflow_id, run_id=key.run_id)

        return listing()


def _sync(app: RunHistory, client: _Client, **kwargs: Any) -> SyncReport:
    return asyncio.run(sync_async(app, client, **kwargs))  # type: ignore[arg-type]


def test_sync_refuses_a_run_past_the_limits_it_is_given_and_stores_the_others() -> None:
    client = _Client(*SCENARIOS)
    terminated, signals = client.keys[1], client.keys[0]
    app = RunHistory.open("memory://")
    # signals_many_batched (33 events) goes on two transactions past a limit of 10;
    # workflow_terminated (6 events) is within it
    report = _sync(app, client, limits=HistoryLimits(max_events=10))
    assert not report.ok and list(report.failures) == [signals]
    message = report.failures[signals].message
    assert "limit.historyCount.error" in message and "event 13" in message
    assert [summary.key for summary in app.runs()] == [terminated]

    report = _sync(app, client, limits=NO_LIMITS)  # the same store, limits off: now stored
    assert report.ok and report.runs_new == 1
    assert app.export(signals.workflow_id) == _history("signals_many_batched")


def test_sync_in_lenient_mode_enforces_no_limits_unless_given() -> None:
    client = _Client("signals_many_batched")
    small = HistoryLimits(max_events=10)
    assert not _sync(RunHistory.open("memory://"), client, strict=False, limits=small).ok
    assert _sync(RunHistory.open("memory://"), client, strict=False).ok


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runhistory")
    add_sync(parser.add_subparsers(dest="command", required=True))
    return parser


def test_the_sync_command_passes_its_limits_to_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_sync(app: RunHistory, **kwargs: Any) -> SyncReport:
        seen.append(kwargs)
        return SyncReport()

    monkeypatch.setattr("runhistory.adapters.temporal_sync.sync", fake_sync)
    parser = _parser()
    for argv, expected in (
        ([], None),  # import_history's default: Temporal's limits, or none with --lenient
        (["--limits", "none"], NO_LIMITS),
        (
            ["--limits", "max_events=100000,max_payload_bytes=none"],
            HistoryLimits(max_events=100_000, max_payload_bytes=None),
        ),
    ):
        args = parser.parse_args(["sync", "--store", "memory://", *argv])
        assert args.run(args) == 0
        assert seen.pop()["limits"] == expected


def test_a_bad_limits_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        _parser().parse_args(["sync", "--limits", "bogus=1"])
    assert usage.value.code == 2
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["sync", "--help"])
    assert "--limits SPEC" in capsys.readouterr().out
