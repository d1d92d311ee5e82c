"""`runhistory describe | audit | findings | import | export`, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runhistory import describe, load_history
from runhistory.adapters.cli import main
from tests.conformance_data import final_histories

HISTORIES = dict(final_histories())
pytestmark = pytest.mark.skipif(not HISTORIES, reason="shared/conformance not found")


def test_describe_json_of_a_file_is_the_projection(capsys: pytest.CaptureFixture[str]) -> None:
    path = HISTORIES["activity_retry_then_success/history.json"]
    assert main(["describe", "--json", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    server = json.loads((path.parent / "describe.json").read_text())
    assert shown["workflowExecutionInfo"]["status"] == server["workflowExecutionInfo"]["status"]
    assert shown == json.loads(json.dumps(describe(load_history(path))))


def test_describe_human_view_shows_status_pending_and_transition_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = HISTORIES["workflow_terminated/history.json"]
    assert main(["describe", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TERMINATED" in out
    assert "transitions" in out
    assert "between" in out or "exact" in out


def test_audit_names_the_terminator(capsys: pytest.CaptureFixture[str]) -> None:
    path = HISTORIES["workflow_terminated/history.json"]
    assert main(["audit", "--json", str(path)]) == 0
    entries = json.loads(capsys.readouterr().out)
    actions = [e["action"] for e in entries]
    assert actions[0] == "started"
    assert "terminated" in actions
    terminated = next(e for e in entries if e["action"] == "terminated")
    doc = json.loads(path.read_text())
    close = doc["events"][-1]["workflowExecutionTerminatedEventAttributes"]
    assert terminated["identity"] == close.get("identity", "")
    assert terminated["reason"] == close.get("reason", "")


def test_findings_flag_workflow_task_failures(capsys: pytest.CaptureFixture[str]) -> None:
    path = HISTORIES["wft_failure_then_fixed/history.json"]
    assert main(["findings", "--json", str(path)]) == 0
    rules = {f["rule"] for f in json.loads(capsys.readouterr().out)}
    assert any("workflow-task" in rule for rule in rules)


def test_import_then_export_and_describe_from_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"file://{tmp_path / 'store'}"
    paths = [
        str(HISTORIES[name]) for name in ("timers/history.json", "child_completed/history.json")
    ]
    assert main(["import", *paths, "--store", store]) == 0
    assert "2 imported" in capsys.readouterr().out
    assert main(["import", *paths, "--store", store]) == 0
    assert "2 already stored" in capsys.readouterr().out
    doc = json.loads(Path(paths[0]).read_text())
    workflow_id = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    out = tmp_path / "out.json"
    assert main(["export", workflow_id, "--store", store, "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == doc
    assert main(["describe", workflow_id, "--store", store, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["workflowExecutionInfo"]["execution"]["workflowId"] == workflow_id


def test_a_failed_file_does_not_stop_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"events": [{"eventId": "2"}]}')
    good = str(HISTORIES["timers/history.json"])
    assert main(["import", str(bad), good, "--store", f"file://{tmp_path / 's'}"]) == 1
    captured = capsys.readouterr()
    assert "1 imported" in captured.out
    assert "bad.json" in captured.err


def test_exporting_an_unknown_run_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "nope", "--store", f"file://{tmp_path / 's'}"]) == 1
    assert "no stored run" in capsys.readouterr().err


def test_import_reads_a_filestore_archive_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archival"
    archive.mkdir()
    names = ("timers/history.json", "child_completed/history.json")
    docs = [json.loads(HISTORIES[name].read_text()) for name in names]
    for i, doc in enumerate(docs):  # the filestore archiver writes a JSON array of batches
        events = doc["events"]
        batches = [{"events": events[:3]}, {"events": events[3:]}]
        (archive / f"{i}_0.history").write_text(json.dumps(batches))
    store = f"file://{tmp_path / 'store'}"
    assert main(["import", str(archive), "--store", store]) == 0
    assert "2 imported" in capsys.readouterr().out
    for doc in docs:
        workflow_id = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
        out = tmp_path / "out.json"
        assert main(["export", workflow_id, "--store", store, "-o", str(out)]) == 0
        assert json.loads(out.read_text()) == doc
