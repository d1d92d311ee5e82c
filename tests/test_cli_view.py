"""`runhistory show | timeline`, run in-process."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from runhistory import load_history
from runhistory.adapters import cli_view
from runhistory.adapters.cli import build_parser
from runhistory.adapters.cli_view import add_view_commands
from tests.conformance_data import final_histories

HISTORIES = dict(final_histories())
pytestmark = pytest.mark.skipif(not HISTORIES, reason="shared/conformance not found")
TIMERS = HISTORIES.get("timers/history.json", Path("missing"))


def main(argv: list[str]) -> int:
    """The real parser, with the view commands added if cli.py does not wire them yet."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "show" not in commands.choices:
        add_view_commands(commands)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "label",
    [
        "update_accepted_completed/history.json",
        "activity_non_retryable_failure/history.json",
        "child_canceled/history.json",
        "nexus_canceled/history.json",
    ],
)
def test_show_json_is_one_object_per_event(label: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = HISTORIES[label]
    assert main(["show", str(path), "--json"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    run = load_history(path)
    assert [r["eventId"] for r in rows] == [e.event_id for e in run.history]
    assert [r["eventType"] for r in rows] == [e.type_name for e in run.history]
    assert rows[0]["offset"] == 0 and rows[0]["took"] is None


def test_show_json_durations_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    path = HISTORIES["activity_non_retryable_failure/history.json"]
    assert main(["show", str(path), "--json"]) == 0
    rows = {r["eventType"]: r for r in _json_lines(capsys.readouterr().out)}
    scheduled, failed = rows["ACTIVITY_TASK_SCHEDULED"], rows["ACTIVITY_TASK_FAILED"]
    assert scheduled["fields"]["activity"] == "1"
    assert scheduled["fields"]["type"] == "fail_nonretryable"
    assert failed["fields"]["failure"] == "permanent failure"
    assert failed["took"] == failed["offset"] - scheduled["offset"]  # schedule-to-close
    close = rows["WORKFLOW_EXECUTION_FAILED"]
    assert close["took"] == close["offset"]


@pytest.mark.parametrize("label", sorted(HISTORIES))
def test_show_text_names_every_event_type(label: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = HISTORIES[label]
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    for event in load_history(path).history:
        assert event.type_name in out


def test_show_text_with_rich(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rich")
    from rich.console import Console

    path = HISTORIES["activity_non_retryable_failure/history.json"]
    rows = cli_view.event_rows(load_history(path).history)
    console = Console(width=200, force_terminal=False)
    cli_view._print_rich(rows, True, console)
    out = capsys.readouterr().out
    assert "ACTIVITY_TASK_FAILED" in out and "permanent failure" in out


def test_timeline_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.html"
    assert main(["timeline", str(TIMERS), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert main(["timeline", str(TIMERS)]) == 0  # no -o: stdout
    assert capsys.readouterr().out == page


def test_a_stored_run_by_workflow_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"file://{tmp_path / 'store'}"
    assert main(["import", str(TIMERS), "--store", store]) == 0
    capsys.readouterr()
    run = load_history(TIMERS)
    assert run.key is not None
    assert main(["show", run.key.workflow_id, "--store", store, "--json"]) == 0
    assert len(_json_lines(capsys.readouterr().out)) == len(run.history)
    out = tmp_path / "t.html"
    argv = ["timeline", run.key.workflow_id, run.key.run_id, "--store", store, "-o", str(out)]
    assert main(argv) == 0
    assert run.key.workflow_id in out.read_text()


def test_follow_prints_new_events_until_the_run_closes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runhistory.app import RunHistory

    store = f"file://{tmp_path / 'store'}"
    doc = json.loads(TIMERS.read_text())
    RunHistory.open(store).import_history({"events": doc["events"][:10]})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:  # the run grows to its end between two reads
            RunHistory.open(store).import_history(doc)

    monkeypatch.setattr(cli_view, "_sleep", sleep)
    workflow_id = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    assert main(["show", workflow_id, "--store", store, "--follow", "--json"]) == 0
    ids = [r["eventId"] for r in _json_lines(capsys.readouterr().out)]
    assert ids == list(range(1, len(doc["events"]) + 1))
    assert sleeps == [1, 1]


def test_follow_stops_quietly_on_ctrl_c(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runhistory.app import RunHistory

    store = f"file://{tmp_path / 'store'}"
    doc = json.loads(TIMERS.read_text())
    RunHistory.open(store).import_history({"events": doc["events"][:10]})

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_view, "_sleep", interrupt)
    workflow_id = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    assert main(["show", workflow_id, "--store", store, "--follow"]) == 0
    out = capsys.readouterr().out
    assert "TIMER_STARTED" in out or "WORKFLOW_TASK_COMPLETED" in out


def test_follow_needs_a_stored_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(TIMERS), "--follow"]) == 2
    assert "--follow" in capsys.readouterr().err


def test_an_invalid_history_is_one_line_on_stderr_naming_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"events": [{"eventId": "2"}]}')
    for command in ("show", "timeline"):
        assert main([command, str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and "bad.json" in err
        assert len(err.strip().splitlines()) == 1
