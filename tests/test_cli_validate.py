"""`runhistory validate`, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runhistory.adapters.cli import main
from tests.conformance_data import final_histories

pytestmark = pytest.mark.skipif(not list(final_histories()), reason="shared/conformance not found")


def _history(name: str = "one_activity_eager/history.json") -> dict[str, object]:
    path = dict(final_histories())[name]
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def test_every_recorded_history_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(p) for _, p in final_histories()]
    assert main(["validate", "--json", *paths]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in reports] == paths
    assert all(r["valid"] and r["errors"] == [] for r in reports)
    assert all(r["workflowId"] and r["runId"] and r["events"] > 0 for r in reports)


def test_an_invalid_file_exits_1_and_names_the_first_illegal_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _history()
    events = doc["events"]
    assert isinstance(events, list)
    del events[5]  # event 7 now follows event 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["validate", "--json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["errors"][0]["eventId"] == 7
    assert report["errors"][0]["code"] == "out-of-sequence"


def test_human_output_names_file_event_type_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _history()
    events = doc["events"]
    assert isinstance(events, list)
    events.append(dict(events[1], eventId=str(len(events) + 1)))  # a task after the close
    bad = tmp_path / "after-close.json"
    bad.write_text(json.dumps(doc))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert str(bad) in out
    assert f"event {len(events)} WORKFLOW_TASK_SCHEDULED" in out
    assert "I2" in out


def test_collect_all_reports_every_problem_in_event_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _history()
    events = doc["events"]
    assert isinstance(events, list)
    events[2]["workflowTaskStartedEventAttributes"]["scheduledEventId"] = "1"
    events[9]["workflowTaskCompletedEventAttributes"]["startedEventId"] = "3"
    bad = tmp_path / "two.json"
    bad.write_text(json.dumps(doc))
    assert main(["validate", "--json", "--collect-all", str(bad)]) == 1
    errors = json.loads(capsys.readouterr().out)["errors"]
    ids = [e["eventId"] for e in errors]
    assert ids == sorted(ids)
    assert ids[0] == 3
    assert 10 in ids


def test_an_unreadable_path_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", "/nonexistent/history.json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"][0]["code"] == "unreadable"


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
